"""The settings of a Stable-Baselines3 agent (PPO or SAC).

Cheap to import (no torch or SB3): the CLI and the presets build on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Algo = Literal["ppo", "sac"]


ALGOS: tuple[Algo, ...] = ("ppo", "sac")


@dataclass(frozen=True)
class AgentConfig:
    """Hyper-parameters of the SB3 agent; the defaults suit classic control."""

    algo: Algo = "ppo"
    """``"ppo"`` (discrete or Box actions) or ``"sac"`` (Box actions only)."""
    n_envs: int = 4
    """Parallel training environments."""
    learning_rate: float = 3e-4
    """Adam step size of the policy and value networks."""
    gamma: float = 0.99
    """Discount factor."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value (or Q) networks."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """Torch device; small MLPs run fastest on the CPU."""
    cnn: Literal["nature", "compact"] = "nature"
    """Image observations only: SB3's ``NatureCNN``, or the cheap
    :class:`~prefgym.agents.sb3._pixel_features.CompactCNN` for the arcade games on a CPU."""

    n_steps: int = 256
    """PPO: steps per env between two updates (a rollout is ``n_steps * n_envs`` steps)."""
    batch_size: int = 64
    """PPO: minibatch size; must divide ``n_steps * n_envs``."""
    n_epochs: int = 10
    """PPO: passes over each rollout."""
    gae_lambda: float = 0.95
    """PPO: the GAE bias-variance trade-off."""
    clip_range: float = 0.2
    """PPO: clipping of the probability ratio."""
    ent_coef: float = 0.0
    """PPO: entropy bonus."""
    vf_coef: float = 0.5
    """PPO: weight of the value loss."""
    max_grad_norm: float = 0.5
    """PPO: gradient clipping norm."""
    use_sde: bool = False
    """Box actions only: generalised state-dependent exploration (gSDE, Raffin et al. 2022):
    the exploration noise is a function of the state, drawn afresh every ``sde_sample_freq``
    steps, rather than independent Gaussian noise each step."""
    sde_sample_freq: int = -1
    """With ``use_sde``: steps between two draws of the noise matrix; -1 draws once a rollout."""
    reward_scale: float = 1.0
    """Factor on the learned reward (normalised to std 1 per step) the agent is paid. PPO clips
    the gradient of its policy and value losses together, so on a task whose true reward is
    sparse a dense reward of std 1 makes value losses whose gradient takes up the clipped norm
    and leaves the policy little of it."""

    buffer_size: int = 100_000
    """SAC: replay buffer capacity in transitions (over all envs)."""
    learning_starts: int = 1_000
    """SAC: uniformly random steps before the first update."""
    sac_batch_size: int = 256
    """SAC: minibatch size."""
    tau: float = 0.005
    """SAC: Polyak averaging rate of the target networks."""
    train_freq: int = 1
    """SAC: steps per env between two rounds of updates."""
    gradient_steps: int = 1
    """SAC: gradient steps per round of updates."""
    sac_ent_coef: float | Literal["auto"] = "auto"
    """SAC: entropy coefficient, or ``"auto"`` to tune it towards a target entropy."""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        positive_ints = {
            "n_envs": self.n_envs,
            "n_steps": self.n_steps,
            "n_epochs": self.n_epochs,
            "buffer_size": self.buffer_size,
            "sac_batch_size": self.sac_batch_size,
            "train_freq": self.train_freq,
            "gradient_steps": self.gradient_steps,
        }
        for name, value in positive_ints.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name, fraction in (("gamma", self.gamma), ("gae_lambda", self.gae_lambda)):
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {fraction}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.clip_range <= 0:
            raise ValueError(f"clip_range must be > 0, got {self.clip_range}")
        if not (math.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"reward_scale must be a finite number > 0, got {self.reward_scale}")
        if self.sde_sample_freq < -1 or self.sde_sample_freq == 0:
            raise ValueError(
                f"sde_sample_freq must be -1 (once a rollout) or >= 1, got {self.sde_sample_freq}"
            )
        if self.cnn not in ("nature", "compact"):
            raise ValueError(f"cnn must be 'nature' or 'compact', got {self.cnn!r}")
        if not self.net_arch or any(width < 1 for width in self.net_arch):
            raise ValueError(f"net_arch must be non-empty positive widths, got {self.net_arch}")
        if self.sac_ent_coef != "auto" and (
            isinstance(self.sac_ent_coef, str) or self.sac_ent_coef < 0
        ):
            raise ValueError(f"sac_ent_coef must be 'auto' or >= 0, got {self.sac_ent_coef!r}")
        rollout = self.n_steps * self.n_envs
        if self.algo == "ppo" and (self.batch_size < 2 or rollout % self.batch_size):
            raise ValueError(
                f"batch_size must be >= 2 and divide n_steps * n_envs = {rollout}, got "
                f"{self.batch_size}; pick a divisor such as {_divisor_near(rollout, 64)}"
            )


def _divisor_near(n: int, target: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - target))
