"""The settings of :class:`~prefgym.agents.text._token_ppo.TokenPPO`, one documented field each.

Defaults follow TRL's ``PPOConfig`` and Ziegler et al. 2019 where they agree: a fixed KL
coefficient of 0.05 (or Ziegler's adaptive controller with a 6-nat target over 10,000
samples), ``gamma = 1``, ``lam = 0.95``, clip ranges of 0.2, ``vf_coef = 0.1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TokenPPOConfig"]


@dataclass(frozen=True)
class TokenPPOConfig:
    """How :class:`TokenPPO` samples, shapes rewards and updates a language model."""

    batch_size: int = 64
    """Prompts (hence responses) per PPO iteration."""
    minibatch_size: int = 16
    """Responses per gradient step; must divide ``batch_size``."""
    ppo_epochs: int = 4
    """Passes over each batch of responses."""
    lr: float = 1e-5
    """Adam step size of the policy and the value model."""
    adam_eps: float = 1e-5
    """Adam's epsilon (1e-5 as in OpenAI's lm-human-preferences)."""
    max_new_tokens: int = 16
    """Most tokens per response."""
    temperature: float = 1.0
    """Sampling temperature; every forward divides the logits by it."""
    kl: Literal["adaptive", "fixed"] = "fixed"
    """``"fixed"`` keeps ``kl_coef``; ``"adaptive"`` steers the KL to ``kl_target``."""
    kl_coef: float = 0.05
    """Weight ``beta`` of the per-token KL penalty (its start value when adaptive)."""
    kl_target: float = 6.0
    """Adaptive only: wanted KL to the reference per response, in nats."""
    kl_horizon: int = 10_000
    """Adaptive only: samples over which the controller corrects an error."""
    gamma: float = 1.0
    """Discount over response tokens."""
    lam: float = 0.95
    """GAE's lambda."""
    clip_range: float = 0.2
    """PPO's clipping of the probability ratio."""
    clip_range_value: float = 0.2
    """How far a value prediction may move from its rollout-time value."""
    vf_coef: float = 0.1
    """Weight of the value loss."""
    whiten_rewards: bool = False
    """Scale the per-token rewards to unit variance (mean kept) before GAE."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clipping of each step."""
    value_model: Literal["separate", "shared"] = "separate"
    """``"separate"``: a copy of the policy's trunk with a scalar head; ``"shared"``: a
    scalar head on the policy's own trunk (one forward, less memory, coupled losses)."""
    missing_eos_penalty: float | None = None
    """Subtracted from the score of a response that never produced the eos; None: no penalty."""
    fused_gelu: bool = True
    """Swap GPT-2's ``gelu_new`` modules in the policy, reference and value model for
    :class:`~prefgym.lm._gpt2_fast.TanhGELU` (:func:`~prefgym.lm._gpt2_fast.fuse_gelu`):
    the same function to float rounding, several times cheaper."""
    ptx_coef: float = 0.0
    """PPO-ptx (InstructGPT): weight of a language-model loss on ``ptx_batch``; 0 turns it off."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "minibatch_size", "ppo_epochs", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.minibatch_size:
            raise ValueError(
                f"minibatch_size must divide batch_size {self.batch_size}, got "
                f"{self.minibatch_size}; e.g. minibatch_size={_divisor(self.batch_size)}"
            )
        for name in (
            "lr",
            "adam_eps",
            "temperature",
            "clip_range",
            "clip_range_value",
            "max_grad_norm",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("vf_coef", "ptx_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.kl not in ("adaptive", "fixed"):
            raise ValueError(f"kl must be 'adaptive' or 'fixed', got {self.kl!r}")
        if self.kl_coef < 0 or (self.kl == "adaptive" and self.kl_coef == 0):
            raise ValueError(
                f"kl_coef must be >= 0 (> 0 when kl='adaptive'), got {self.kl_coef}; 0.05 is usual"
            )
        if self.kl_target <= 0 or self.kl_horizon < 1:
            raise ValueError(
                f"need kl_target > 0 and kl_horizon >= 1, got {self.kl_target}, {self.kl_horizon}"
            )
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"need 0 < gamma <= 1 and 0 <= lam <= 1, got {self.gamma}, {self.lam}")
        if self.value_model not in ("separate", "shared"):
            raise ValueError(
                f"value_model must be 'separate' or 'shared', got {self.value_model!r}"
            )
        if self.missing_eos_penalty is not None and self.missing_eos_penalty < 0:
            raise ValueError(
                f"missing_eos_penalty is subtracted from scores and must be >= 0 or None, "
                f"got {self.missing_eos_penalty}"
            )


def _divisor(n: int) -> int:
    """The largest divisor of ``n`` that is at most ``n // 4`` (or 1)."""
    return max([d for d in range(1, max(n // 4, 1) + 1) if n % d == 0])
