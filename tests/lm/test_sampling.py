from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import GPT2LMHeadModel

from prefgym.lm import (
    position_ids,
    response_hidden,
    response_logits,
    response_logits_and_hidden,
    response_logprobs,
    response_mask,
    sample_responses,
    trim_left_padding,
)
from tests.lm.helpers import EOS, PAD, prompts, sample


def stepwise_logprobs(model: Any, ids: torch.Tensor, mask: torch.Tensor, response: torch.Tensor):
    """Each response token's log-prob from a fresh forward over the prefix, no cache."""
    out = []
    for t in range(response.shape[1]):
        full = torch.cat([ids, response[:, :t]], 1)
        full_mask = torch.cat([mask, torch.ones_like(response[:, :t])], 1)
        with torch.no_grad():
            logits = model(
                input_ids=full, attention_mask=full_mask, position_ids=position_ids(full_mask)
            ).logits[:, -1]
        out.append(torch.log_softmax(logits, -1).gather(1, response[:, t : t + 1]).squeeze(1))
    return torch.stack(out, 1)


def test_response_mask_counts_up_to_first_eos() -> None:
    ids = torch.tensor([[5, 6, EOS, PAD, PAD], [5, 5, 5, 5, 5], [EOS, EOS, EOS, 7, 8]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float)
    assert torch.equal(response_mask(ids, EOS), expected)
    assert response_mask(ids, EOS).dtype == torch.float32


def test_sampling_is_deterministic_under_a_generator(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    a, b, c = (sample(model, ids, mask, seed) for seed in (3, 3, 4))
    assert torch.equal(a.response_ids, b.response_ids)
    assert torch.equal(a.logprobs, b.logprobs)
    assert not torch.equal(a.response_ids, c.response_ids)


def test_responses_are_padded_after_the_first_eos(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts(batch=16)
    response = sample(model, ids, mask, 0, max_new_tokens=40).response_ids
    real = response_mask(response, EOS)
    assert response.shape[1] <= 40
    assert torch.all(response[real == 0] == PAD)
    ended = (response == EOS).any(1)
    assert ended.any(), "with 64 tokens and 40 steps some row should end"


class EosEager(torch.nn.Module):
    """Wraps a causal LM and makes the eos overwhelmingly likely."""

    def __init__(self, inner: GPT2LMHeadModel) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs: Any) -> SimpleNamespace:
        out = self.inner(**kwargs)
        logits = out.logits.clone()
        logits[..., EOS] += 100.0
        return SimpleNamespace(logits=logits, past_key_values=out.past_key_values)


def test_sampling_stops_once_every_row_ended(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    samples = sample(EosEager(model), ids, mask, 0, max_new_tokens=12)
    assert samples.response_ids.tolist() == [[EOS]] * 4
    assert torch.allclose(samples.logprobs, torch.zeros(4, 1), atol=1e-6)


def test_low_temperature_is_greedy(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    response = sample(model, ids, mask, 0, max_new_tokens=6, temperature=1e-5).response_ids
    # Greedy decoding step by step without the cache.
    current, current_mask = ids, mask
    for t in range(response.shape[1]):
        with torch.no_grad():
            logits = model(
                input_ids=current,
                attention_mask=current_mask,
                position_ids=position_ids(current_mask),
            ).logits[:, -1]
        greedy = logits.argmax(-1)
        live = response_mask(response, EOS)[:, t].bool()
        assert torch.equal(response[live, t], greedy[live])
        current = torch.cat([current, response[:, t : t + 1]], 1)
        current_mask = torch.cat([current_mask, torch.ones_like(current_mask[:, :1])], 1)


def test_response_logprobs_match_uncached_step_by_step(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    samples = sample(model, ids, mask, 1, max_new_tokens=8)
    response = samples.response_ids
    real = response_mask(response, EOS)
    expected = stepwise_logprobs(model, ids, mask, response) * real
    got = response_logprobs(model, ids, mask, response, eos_id=EOS)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(samples.logprobs * real, expected, atol=1e-5, rtol=1e-5)
    assert torch.all(got[real == 0] == 0)


def test_temperature_divides_the_logits(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    response = sample(model, ids, mask, 2, max_new_tokens=5, temperature=0.7)
    plain = response_logits(model, ids, mask, response.response_ids, eos_id=EOS)
    hot = response_logits(model, ids, mask, response.response_ids, eos_id=EOS, temperature=0.7)
    torch.testing.assert_close(hot, plain / 0.7)
    real = response_mask(response.response_ids, EOS)
    got = response_logprobs(model, ids, mask, response.response_ids, eos_id=EOS, temperature=0.7)
    torch.testing.assert_close(got, response.logprobs * real, atol=1e-5, rtol=1e-5)


def test_left_padding_does_not_change_logprobs(model: GPT2LMHeadModel) -> None:
    ids = torch.tensor([[7, 8, 9, 10]])
    response = torch.tensor([[11, 12, EOS, PAD]])
    unpadded = response_logprobs(model, ids, torch.ones_like(ids), response, eos_id=EOS)
    padded_ids = torch.cat([torch.full((1, 3), PAD), ids], 1)
    padded_mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(ids)], 1)
    padded = response_logprobs(model, padded_ids, padded_mask, response, eos_id=EOS)
    torch.testing.assert_close(padded, unpadded, atol=1e-5, rtol=1e-5)
    assert unpadded[0, 3] == 0 and unpadded[0, 2] != 0


def test_trim_left_padding_drops_only_common_pad_columns(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts(batch=3)
    wide_ids = torch.cat([torch.full((3, 2), PAD), ids], 1)
    wide_mask = torch.cat([torch.zeros(3, 2, dtype=torch.long), mask], 1)
    trimmed_ids, trimmed_mask = trim_left_padding(wide_ids, wide_mask)
    assert torch.equal(trimmed_ids, ids) and torch.equal(trimmed_mask, mask)


def test_hidden_and_logits_agree_with_the_full_model(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    response = sample(model, ids, mask, 5, max_new_tokens=6).response_ids
    logits, hidden = response_logits_and_hidden(model, ids, mask, response, eos_id=EOS)
    torch.testing.assert_close(logits, response_logits(model, ids, mask, response, eos_id=EOS))
    assert hidden.shape == (*response.shape, 32)
    trunk_hidden = response_hidden(model.base_model, ids, mask, response, eos_id=EOS)
    torch.testing.assert_close(hidden, trunk_hidden)


def test_response_logprobs_carry_gradients(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    response = torch.tensor([[5, 6, EOS]] * 4)
    model.zero_grad()
    response_logprobs(model, ids, mask, response, eos_id=EOS).sum().backward()
    assert model.lm_head.weight.grad is not None
    assert model.lm_head.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_sample_responses_returns_the_ids(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    g = torch.Generator().manual_seed(9)
    response = sample_responses(
        model, ids, mask, max_new_tokens=5, eos_id=EOS, pad_id=PAD, generator=g
    )
    assert torch.equal(response, sample(model, ids, mask, 9, max_new_tokens=5).response_ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"temperature": 0.0}, "temperature"), ({"max_new_tokens": 0}, "max_new_tokens")],
)
def test_bad_arguments_are_named(model: GPT2LMHeadModel, kwargs: dict, message: str) -> None:
    ids, mask = prompts()
    with pytest.raises(ValueError, match=message):
        sample(model, ids, mask, 0, **kwargs)


def test_right_padded_prompts_are_refused(model: GPT2LMHeadModel) -> None:
    ids = torch.tensor([[5, 6, PAD]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        sample(model, ids, torch.tensor([[1, 1, 0]]), 0)


def test_inverse_cdf_draws_follow_the_distribution() -> None:
    from prefgym.lm._sampling import _draw

    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2]]).expand(40_000, 4).contiguous()
    draws = _draw(probs, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    assert freq[1] == 0.0  # a zero-probability token is never drawn
    torch.testing.assert_close(freq, probs[0], atol=0.01, rtol=0.0)
    unnormalised = _draw(probs * 3.0, torch.Generator().manual_seed(0))
    assert torch.equal(unnormalised, draws)


def test_pad_ids_outside_the_vocabulary_are_never_embedded(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts(batch=16)
    ids = ids.masked_fill(mask == 0, 99)  # vocab is 64
    g = torch.Generator().manual_seed(0)
    response = sample_responses(
        model, ids, mask, max_new_tokens=40, eos_id=EOS, pad_id=99, generator=g
    )
    assert (response == 99).any()
    logprobs = response_logprobs(model, ids, mask, response, eos_id=EOS)
    assert torch.isfinite(logprobs).all()
