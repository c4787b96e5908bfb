"""The maths of token-level PPO for language models, as pure functions.

Follows Ziegler et al. 2019 ("Fine-Tuning Language Models from Human Preferences") and
"The N Implementation Details of RLHF with PPO" (Huang et al. 2023): a per-token KL penalty
to a frozen reference with the score added at the last real token, whitened GAE advantages,
clipped policy and value losses, and the adaptive KL controller.

Every per-token tensor is ``(B, R)`` (batch, response length) with a ``(B, R)`` float mask
that is 1 on real response tokens (up to and including the eos) and 0 on padding after it.

:data:`ScoreFn` is the type of the function that the text trainers (PPO, GRPO) score their
sampled responses with.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ScoreFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(prompt_ids (B, P), prompt_mask (B, P), response_ids (B, R)) -> scores (B,)``.

Scores whole text responses (a learned reward model or a true score) and is called without
grad; the control loop's per-step reward function (in :mod:`prefgym.segments`) is another.
"""


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1.

    Args:
        x: any shape.
        mask: same shape as ``x``, 0 or 1.
        dim: reduce over this dimension only; all of them when ``None``.

    Returns:
        A scalar, or ``x`` reduced over ``dim``.
    """
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_var(x: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of ``x`` over the entries where ``mask`` is 1.

    Args:
        x: any shape.
        mask: same shape as ``x``, 0 or 1.
        unbiased: apply Bessel's correction (needs at least two unmasked entries).

    Returns:
        A scalar.
    """
    centred = x - masked_mean(x, mask)
    var = masked_mean(centred**2, mask)
    if unbiased:
        count = mask.sum()
        if count < 2:
            raise ValueError(f"an unbiased variance needs >= 2 unmasked entries, got {count:g}")
        var = var * count / (count - 1)
    return var


def whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` to unit variance (and zero mean) over the unmasked entries.

    Args:
        x: any shape.
        mask: same shape as ``x``, 0 or 1.
        shift_mean: subtract the mean; when ``False`` the mean is kept (as for rewards).
        eps: added to the variance.

    Returns:
        Same shape as ``x``; masked entries are transformed too but mean nothing. With a
        single unmasked entry the variance is taken as 0.
    """
    mean = masked_mean(x, mask)
    var = masked_var(x, mask) if mask.sum() >= 2 else torch.zeros_like(mean)
    whitened = (x - mean) * torch.rsqrt(var + eps)
    return whitened if shift_mean else whitened + mean


def last_token_index(mask: Tensor) -> Tensor:
    """Index of the last real token of each response.

    Args:
        mask: ``(B, R)`` prefix mask (ones then zeros), at least one 1 per row.

    Returns:
        ``(B,)`` long: the eos position, or ``R - 1`` for a response that never ended.
    """
    return (mask.sum(-1).long() - 1).clamp(min=0)


def kl_penalised_rewards(
    logprobs: Tensor, ref_logprobs: Tensor, scores: Tensor, mask: Tensor, kl_coef: float
) -> tuple[Tensor, Tensor]:
    """Per-token rewards: ``-kl_coef * KL`` on every token, the score on the last real one.

    The KL of each token is the k1 estimator ``logprobs - ref_logprobs`` of the sampled token.

    Args:
        logprobs: ``(B, R)`` log-probs of the sampled tokens under the policy.
        ref_logprobs: ``(B, R)`` the same under the frozen reference.
        scores: ``(B,)`` one score per response.
        mask: ``(B, R)`` prefix mask of the real tokens.
        kl_coef: the penalty's weight ``beta``.

    Returns:
        ``rewards`` ``(B, R)`` and ``kl`` ``(B, R)``, both 0 on padding.
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards.dtype)
    return rewards, kl


def gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the response tokens.

    A response ends at its last real token: the value after it is 0.

    Args:
        rewards: ``(B, R)`` per-token rewards.
        values: ``(B, R)`` value estimates ``V(s_t)`` before each token.
        mask: ``(B, R)`` prefix mask of the real tokens.
        gamma: discount.
        lam: GAE's lambda.

    Returns:
        ``advantages`` and ``returns = advantages + values``, both ``(B, R)`` and 0 on padding.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
        next_value = values[:, t]
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def policy_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, clip_range: float
) -> tuple[Tensor, Tensor, Tensor]:
    """PPO's clipped surrogate loss, averaged over the real tokens.

    Args:
        logprobs: ``(B, R)`` under the policy being trained (with grad).
        old_logprobs: ``(B, R)`` under the policy that sampled the tokens.
        advantages: ``(B, R)``.
        mask: ``(B, R)`` 1 on real tokens.
        clip_range: the ratio is clipped to ``[1 - clip_range, 1 + clip_range]``.

    Returns:
        ``loss`` (scalar), ``clip_fraction`` (share of tokens where clipping was active) and
        ``approx_kl`` (the k3 estimate of KL(old || new)); the last two without grad.
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
    return loss, clip_fraction, approx_kl


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip_range: float
) -> tuple[Tensor, Tensor]:
    """Clipped value loss: ``0.5 * max`` of the clipped and unclipped squared errors.

    Args:
        values: ``(B, R)`` current predictions (with grad).
        old_values: ``(B, R)`` predictions at rollout time.
        returns: ``(B, R)`` targets.
        mask: ``(B, R)`` 1 on real tokens.
        clip_range: the prediction may move at most this far from ``old_values``.

    Returns:
        ``loss`` (scalar) and ``clip_fraction`` (share of tokens where the clipped error won).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(error, clipped_error), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped_error > error).float(), mask)
    return loss, clip_fraction


class FixedKLController:
    """A KL coefficient that never changes."""

    def __init__(self, init_coef: float) -> None:
        """Hold ``init_coef``.

        Args:
            init_coef: the KL penalty's weight ``beta`` (>= 0).
        """
        if init_coef < 0:
            raise ValueError(f"init_coef must be >= 0, got {init_coef}")
        self.value = float(init_coef)

    def update(self, current_kl: float, n_samples: int) -> None:
        """Do nothing (the interface of :class:`AdaptiveKLController`).

        Args:
            current_kl: the mean per-sequence KL of the last batch.
            n_samples: responses in the last batch.
        """


class AdaptiveKLController:
    """Ziegler et al.'s proportional controller steering the KL towards a target.

    ``beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_samples / horizon)``: the
    horizon counts samples, so a small batch moves ``beta`` proportionally less.
    """

    def __init__(self, init_coef: float, target: float, horizon: int) -> None:
        """Start at ``init_coef``.

        Args:
            init_coef: the starting ``beta`` (> 0).
            target: the wanted per-sequence KL, in nats (> 0).
            horizon: samples over which the controller corrects an error (> 0).
        """
        if init_coef <= 0:
            raise ValueError(f"init_coef must be > 0 for an adaptive controller, got {init_coef}")
        if target <= 0:
            raise ValueError(f"target must be > 0 nats, got {target}")
        if horizon <= 0:
            raise ValueError(f"horizon must be > 0 samples, got {horizon}")
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_samples: int) -> None:
        """Move ``beta`` up when the KL is above target and down when below.

        Args:
            current_kl: the mean per-sequence KL (summed over tokens) of the last batch.
            n_samples: responses in the last batch.
        """
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_samples / self.horizon
