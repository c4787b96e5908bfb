"""The settings of the text trainers (token-level PPO, GRPO, DPO), one documented field each.

These are the only defaults: a text run and a trainer built by hand start from the
same values. The shape of each update follows TRL and Ziegler et al. 2019 where
they agree (``gamma = 1``, ``lam = 0.95``, clip ranges of 0.2, ``vf_coef = 0.1``,
a k3 KL for GRPO); the step sizes and KL weights are the text game's, whose
policies are small networks trained from scratch: TRL's defaults (learning rates
of 1e-6 to 1e-5) are made for fine-tuning models of a billion parameters, and
move a small policy almost nowhere in a run's hundred updates.

Cheap to import (no torch): the CLI builds its flags from these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DPOConfig", "GRPOConfig", "TokenPPOConfig"]


@dataclass(frozen=True)
class TokenPPOConfig:
    """How :class:`TokenPPO` samples, shapes rewards and updates a language model."""

    batch_size: int = 64
    """Prompts (hence responses) per PPO iteration."""
    minibatch_size: int = 16
    """Responses per gradient step; must divide ``batch_size``."""
    ppo_epochs: int = 4
    """Passes over each batch of responses."""
    lr: float = 5e-5
    """Adam step size of the policy and the value model."""
    adam_eps: float = 1e-5
    """Adam's epsilon (1e-5 as in OpenAI's lm-human-preferences)."""
    max_new_tokens: int = 16
    """Most tokens per response."""
    temperature: float = 1.0
    """Sampling temperature; every forward divides the logits by it."""
    kl: Literal["adaptive", "fixed"] = "fixed"
    """``"fixed"`` keeps ``kl_coef``; ``"adaptive"`` steers the KL to ``kl_target``."""
    kl_coef: float = 0.1
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
    :class:`~prefgym.lm.TanhGELU` (:func:`~prefgym.lm.fuse_gelu`):
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


@dataclass(frozen=True)
class GRPOConfig:
    """How :class:`GRPOTrainer` samples, scores and updates."""

    group_size: int = 8
    """Responses sampled per prompt (``G``)."""
    prompts_per_step: int = 16
    """Prompts drawn per step by :meth:`GRPOTrainer.fit`."""
    max_new_tokens: int = 16
    """Most tokens per response; responses without eos are cut here."""
    temperature: float = 1.0
    """Sampling temperature; log-probabilities are taken at the same temperature."""
    lr: float = 2e-4
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    kl_coef: float = 0.04
    """Weight of the per-token k3 KL to the reference; 0 drops the reference entirely."""
    clip_range: float = 0.2
    """PPO clipping: ratios outside ``[1 - clip_range, 1 + clip_range]`` give no gradient."""
    num_iterations: int = 1
    """Passes (``mu``) over each batch of responses; above 1 the ratio departs from 1."""
    minibatch_size: int | None = None
    """Responses per gradient step within a pass; None takes all ``B * G`` at once."""
    loss_normalisation: Literal["sequence", "token"] = "sequence"
    """``"sequence"``: mean over each response's tokens, then over responses (GRPO);
    ``"token"``: mean over all tokens of the minibatch, so long responses weigh more (DAPO)."""
    scale_advantages: bool = True
    """Divide advantages by the group's standard deviation; False is Dr. GRPO's mean-only."""
    advantage_eps: float = 1e-4
    """Added to the group's standard deviation before dividing."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient's global norm to this; None leaves it unclipped."""

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 for a group baseline, got {self.group_size}; try 8"
            )
        for name in ("prompts_per_step", "max_new_tokens", "num_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.minibatch_size is not None and self.minibatch_size < 1:
            raise ValueError(f"minibatch_size must be >= 1 or None, got {self.minibatch_size}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0 (0 turns the KL off), got {self.kl_coef}")
        if not 0 < self.clip_range < 1:
            raise ValueError(f"clip_range must be in (0, 1), got {self.clip_range}; try 0.2")
        if self.loss_normalisation not in ("sequence", "token"):
            raise ValueError(
                f"loss_normalisation must be 'sequence' or 'token', got {self.loss_normalisation!r}"
            )
        if self.advantage_eps <= 0:
            raise ValueError(f"advantage_eps must be > 0, got {self.advantage_eps}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")


@dataclass(frozen=True)
class DPOConfig:
    """How :class:`DPOTrainer` fits a policy to preferences."""

    beta: float = 0.1
    """Implicit KL strength: the reward is ``beta`` times the log-ratio to the reference."""
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    """``"sigmoid"`` (DPO) or ``"ipo"`` (IPO, on summed log-ratios)."""
    label_smoothing: float = 0.0
    """Sigmoid only: assumed probability that a label is flipped (conservative DPO)."""
    lr: float = 3e-4
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    batch_size: int = 32
    """Pairs per gradient step."""
    epochs: int = 1
    """Passes over the dataset in :meth:`DPOTrainer.fit`."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient's global norm to this; None leaves it unclipped."""
    ref_batch_size: int = 32
    """Pairs per forward pass when precomputing the reference's log-probabilities."""

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}; DPO papers use 0.1 to 0.5")
        if self.loss_type not in ("sigmoid", "ipo"):
            raise ValueError(f"loss_type must be 'sigmoid' or 'ipo', got {self.loss_type!r}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.loss_type == "ipo" and self.label_smoothing:
            raise ValueError(
                f"label_smoothing={self.label_smoothing} only applies to loss_type='sigmoid'"
            )
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        for name in ("batch_size", "epochs", "ref_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
