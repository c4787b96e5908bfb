"""The records TokenPPO passes between its stages: bundling, minibatches and statistics."""

from __future__ import annotations

import math

import pytest
import torch

from prefgym.agents.text._ppo_batch import PPOBatch, Rollout, Scoring, ppo_statistics
from prefgym.lm import response_logprobs, response_mask
from tests.tiny_models import tiny_gpt2

EOS, PAD = 0, 1


def numbered_rollout(batch: int = 4, prompt: int = 5, response: int = 6) -> Rollout:
    """A rollout whose every entry is distinct, so a wrong row, column or field shows."""

    def table(offset: int, columns: int) -> torch.Tensor:
        return offset + torch.arange(batch * columns).reshape(batch, columns)

    return Rollout(
        prompt_ids=table(0, prompt),
        prompt_mask=table(100, prompt),
        responses=table(200, response),
        targets=table(300, response),
        real=table(400, response).float(),
        logprobs=table(500, response).float(),
        entropy=table(600, response).float(),
    )


def test_of_bundles_the_rollout_with_the_old_values_advantages_and_returns() -> None:
    rollout = numbered_rollout()
    values, advantages, returns = (torch.full((4, 6), float(v)) for v in (7, 8, 9))
    batch = PPOBatch.of(rollout, values, advantages, returns)
    for name in ("prompt_ids", "prompt_mask", "responses", "targets", "real", "logprobs"):
        assert getattr(batch, name) is getattr(rollout, name), name
    assert batch.values is values and batch.advantages is advantages
    assert batch.returns is returns
    assert len(batch) == 9  # the entropy is a statistic, not part of the update


def test_minibatch_takes_the_rows_in_order_and_cuts_both_sides() -> None:
    rollout = numbered_rollout()
    full = PPOBatch.of(rollout, *(numbered_rollout().logprobs + k for k in (100, 200, 300)))
    index = torch.tensor([3, 1])
    part = full.minibatch(index, width=4, start=2)
    assert torch.equal(part.prompt_ids, full.prompt_ids[[3, 1]][:, 2:])
    assert torch.equal(part.prompt_mask, full.prompt_mask[[3, 1]][:, 2:])
    assert part.prompt_ids.tolist() == [[17, 18, 19], [7, 8, 9]]
    for name in PPOBatch._fields[2:]:
        expected = getattr(full, name)[[3, 1]][:, :4]
        assert torch.equal(getattr(part, name), expected), name
    assert part.responses.tolist() == [[218, 219, 220, 221], [206, 207, 208, 209]]
    assert isinstance(part, PPOBatch)


def test_cutting_columns_that_are_padding_keeps_the_log_probs_of_real_tokens() -> None:
    """What ``minibatch`` is for: rows whose prompts share two leading pads and whose
    responses end by the third token give the same log-probs once cut."""
    model = tiny_gpt2(eos_id=EOS).eval()
    g = torch.Generator().manual_seed(0)
    prompt_ids = torch.randint(2, 64, (4, 6), generator=g)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[0, :2] = prompt_mask[2, :3] = 0
    prompt_ids = prompt_ids.masked_fill(prompt_mask == 0, PAD)
    responses = torch.randint(2, 64, (4, 5), generator=g)
    responses[0, 2:] = torch.tensor([EOS, PAD, PAD])
    responses[2, 1:] = torch.tensor([EOS, PAD, PAD, PAD])
    real = response_mask(responses, EOS)
    zeros = torch.zeros(4, 5)
    batch = PPOBatch(
        prompt_ids, prompt_mask, responses, responses, real, zeros, zeros, zeros, zeros
    )
    part = batch.minibatch(torch.tensor([0, 2]), width=3, start=2)
    with torch.no_grad():
        full = response_logprobs(model, prompt_ids, prompt_mask, responses, eos_id=EOS)
        cut = response_logprobs(
            model, part.prompt_ids, part.prompt_mask, part.responses, eos_id=EOS
        )
    torch.testing.assert_close(cut, full[[0, 2], :3], atol=1e-6, rtol=1e-5)
    assert torch.equal(part.real, real[[0, 2], :3])


def test_ppo_statistics_by_hand() -> None:
    real = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rollout = Rollout(
        prompt_ids=torch.zeros(2, 2, dtype=torch.long),
        prompt_mask=torch.ones(2, 2, dtype=torch.long),
        responses=torch.zeros(2, 3, dtype=torch.long),
        targets=torch.zeros(2, 3, dtype=torch.long),
        real=real,
        logprobs=torch.zeros(2, 3),
        entropy=torch.tensor([[1.0, 2.0, 99.0], [3.0, 4.0, 5.0]]),  # 99 is padding
    )
    scoring = Scoring(
        scores=torch.tensor([1.0, 3.0]),
        penalised=torch.tensor([1.0, 2.0]),  # the second never ended: penalty 1
        ended=torch.tensor([True, False]),
        ref_logprobs=torch.zeros(2, 3),
        values=torch.tensor([[1.0, 1.0, 50.0], [2.0, 2.0, 2.0]]),
    )
    logged = {
        "policy_loss": [torch.tensor(1.0), torch.tensor(3.0)],
        "value_loss": [torch.tensor(2.0), torch.tensor(4.0)],
    }
    stats = ppo_statistics(
        rollout,
        scoring,
        kl_per_response=torch.tensor([0.5, 1.5]),
        kl_coef=0.2,
        updates=(logged, 4),
        clock=(10.0, 12.0, 13.5, 17.0),
    )
    assert stats == pytest.approx(
        {
            "policy_loss": 2.0,
            "value_loss": 3.0,
            "score": 2.0,
            "reward": ((1.0 - 0.2 * 0.5) + (2.0 - 0.2 * 1.5)) / 2,
            "kl": 1.0,
            "kl_coef": 0.2,
            "entropy": 3.0,  # (1 + 2 + 3 + 4 + 5) / 5 real tokens
            "value": 1.6,  # (1 + 1 + 2 + 2 + 2) / 5
            "response_length": 2.5,
            "fraction_ended": 0.5,
            "tokens_generated": 5.0,
            "tokens_per_second": 2.5,
            "optimizer_steps": 4.0,
            "seconds_sampling": 2.0,
            "seconds_scoring": 1.5,
            "seconds_optimisation": 3.5,
        }
    )


def test_an_instant_sample_gives_a_finite_rate() -> None:
    rollout = numbered_rollout(batch=2, prompt=2, response=3)._replace(real=torch.ones(2, 3))
    scoring = Scoring(
        scores=torch.zeros(2),
        penalised=torch.zeros(2),
        ended=torch.ones(2, dtype=torch.bool),
        ref_logprobs=torch.zeros(2, 3),
        values=torch.zeros(2, 3),
    )
    stats = ppo_statistics(rollout, scoring, torch.zeros(2), 0.1, ({}, 0), (5.0, 5.0, 5.0, 5.0))
    assert math.isfinite(stats["tokens_per_second"]) and stats["tokens_per_second"] > 0
    assert stats["optimizer_steps"] == 0.0 and "policy_loss" not in stats
