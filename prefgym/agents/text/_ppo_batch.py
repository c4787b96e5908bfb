"""What one token-level PPO iteration carries from stage to stage, and the statistics it reports.

:class:`~prefgym.agents.text._token_ppo.TokenPPO` samples a rollout, scores it,
turns scores into per-token rewards and advantages, and updates on minibatches
of the batch; these records hold each stage's tensors so ``step`` reads as the
algorithm's numbered steps.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from prefgym.agents.text._losses import masked_mean


class Rollout(NamedTuple):
    """Stage 1 of a step: the sampled responses, with what the sampler saw."""

    prompt_ids: Tensor  # (B, P) long, less the columns that are padding in every row
    prompt_mask: Tensor  # (B, P), 1 on real prompt tokens
    responses: Tensor  # (B, R) long, pad_id after the first eos
    targets: Tensor  # (B, R) long, the responses with 0 for padding (pad_id may exceed vocab)
    real: Tensor  # (B, R) float, 1 on real response tokens (up to and including the eos)
    logprobs: Tensor  # (B, R) float, the sampler's ("old") log-probs, 0 on padding
    entropy: Tensor  # (B, R) float, entropy of the sampling distribution at each step


class Scoring(NamedTuple):
    """Stage 2 of a step: what the reward function, the reference and the value model say."""

    scores: Tensor  # (B,) float32, reward_fn's scores
    penalised: Tensor  # (B,) float32, the scores less any missing-eos penalty
    ended: Tensor  # (B,) bool, the response holds an eos
    ref_logprobs: Tensor  # (B, R) float, the frozen reference's log-probs
    values: Tensor  # (B, R) float, the value model's estimates, 0 on padding


class PPOBatch(NamedTuple):
    """What the PPO update reads: prompts ``(B, P)``, then per-token tensors ``(B, R)``.

    The first six fields are :class:`Rollout`'s; ``logprobs`` and ``values`` are the old ones.
    """

    prompt_ids: Tensor
    prompt_mask: Tensor
    responses: Tensor
    targets: Tensor
    real: Tensor
    logprobs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor

    @classmethod
    def of(cls, rollout: Rollout, values: Tensor, advantages: Tensor, returns: Tensor) -> PPOBatch:
        """Bundle a rollout with its ``(B, R)`` old values, advantages and returns."""
        return cls(*rollout[:6], values, advantages, returns)

    def minibatch(self, index: Tensor, width: int, start: int) -> PPOBatch:
        """The rows ``index`` ``(b,)``, cut to prompt columns ``start:`` and response ``:width``.

        The columns cut away are padding in every row of the minibatch, so the forward pass
        over the cut batch gives the same log-probs and values on the real tokens.
        """
        return PPOBatch(
            self.prompt_ids[index, start:],
            self.prompt_mask[index, start:],
            *(tensor[index, :width] for tensor in self[2:]),
        )


def ppo_statistics(
    rollout: Rollout,
    scoring: Scoring,
    kl_per_response: Tensor,
    kl_coef: float,
    updates: tuple[dict[str, list[Tensor]], int],
    clock: tuple[float, float, float, float],
) -> dict[str, float]:
    """The statistics of one :meth:`TokenPPO.step` (its docstring lists them).

    Args:
        rollout: the step's samples.
        scoring: the step's scores, reference log-probs and values.
        kl_per_response: ``(B,)`` KL to the reference, summed over each response's tokens.
        kl_coef: the beta that penalised this batch.
        updates: each minibatch step's scalars, by name, and the number of steps.
        clock: ``time.perf_counter()`` at the start, after sampling, scoring and optimising.
    """
    logged, n_updates = updates
    started, sampled, scored, optimised = clock
    real = rollout.real
    tokens = float(real.sum())
    stats = {name: float(torch.stack(series).mean()) for name, series in logged.items()}
    stats.update(
        score=float(scoring.scores.mean()),
        reward=float((scoring.penalised - kl_coef * kl_per_response).mean()),
        kl=float(kl_per_response.mean()),
        kl_coef=kl_coef,
        entropy=float(masked_mean(rollout.entropy, real)),
        value=float(masked_mean(scoring.values, real)),
        response_length=float(real.sum(-1).mean()),
        fraction_ended=float(scoring.ended.float().mean()),
        tokens_generated=tokens,
        tokens_per_second=tokens / max(sampled - started, 1e-9),
        optimizer_steps=float(n_updates),
        seconds_sampling=sampled - started,
        seconds_scoring=scored - sampled,
        seconds_optimisation=optimised - scored,
    )
    return stats
