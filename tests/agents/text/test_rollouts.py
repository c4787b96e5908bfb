"""Sampling a language policy on the text game and measuring it: prompts, padded responses,
judged segments, the KL to a reference, oracle win rates and the summary a run reports."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from prefgym.agents.text import (
    Prompts,
    draw_prompts,
    judged_segments,
    kl_to_reference,
    measure,
    pad_responses,
    sample_segments,
    win_rate,
)
from prefgym.envs.text_env import TextEnv
from prefgym.judges import SyntheticOracle
from prefgym.judgments import Preference
from prefgym.lm import LanguageModel, response_logprobs, response_mask
from prefgym.segments import TRUE_REWARD_KEY, Segment
from prefgym.text import text_summary
from tests.tiny_models import tiny_gpt2


@pytest.fixture(scope="module")
def env() -> TextEnv:
    return TextEnv("sentiment")


def tiny_policy(env: TextEnv, seed: int = 0) -> GPT2LMHeadModel:
    return tiny_gpt2(seed, eos_id=env.codec.eos_id, vocab_size=env.codec.vocab_size).eval()


def random_responses(env: TextEnv, n: int, seed: int) -> torch.Tensor:
    """``(n, response_length)`` ids; row i ends with an eos after ``i % length`` tokens (the
    last row of each cycle never ends) and is padded after it."""
    codec, length = env.codec, env.response_length
    g = torch.Generator().manual_seed(seed)
    responses = torch.randint(2, codec.vocab_size, (n, length), generator=g)
    for i in range(n):
        end = i % (length + 1)
        if end < length:
            responses[i, end] = codec.eos_id
            responses[i, end + 1 :] = codec.pad_id
    return responses


def judged(env: TextEnv, n: int, seed: int = 0) -> list[Segment]:
    prompts = draw_prompts(env, n, np.random.default_rng(seed))
    return judged_segments(env, prompts, random_responses(env, n, seed))


# --- prompts ------------------------------------------------------------------------------


def test_draw_prompts_is_deterministic_under_a_seed(env: TextEnv) -> None:
    a, b = (
        draw_prompts(env, 6, np.random.default_rng(1)),
        draw_prompts(env, 6, rng=np.random.default_rng(1)),
    )
    assert a.texts == b.texts
    assert torch.equal(a.ids, b.ids) and torch.equal(a.mask, b.mask)
    assert draw_prompts(env, 6, np.random.default_rng(2)).texts != a.texts
    rng = np.random.default_rng(1)
    assert a.texts == [env.task.sample_prompt(rng) for _ in range(6)]  # the task's own draws


def test_draw_prompts_left_pads_with_a_mask_on_the_real_tokens(env: TextEnv) -> None:
    prompts = draw_prompts(env, 8, np.random.default_rng(0))
    assert len(prompts) == 8
    assert prompts.ids.shape == prompts.mask.shape == (8, env.prompt_length)
    assert prompts.ids.dtype == prompts.mask.dtype == torch.long
    for text, ids, mask in zip(prompts.texts, prompts.ids, prompts.mask, strict=True):
        encoded = env.codec.encode(text)
        assert mask.tolist() == [0] * (env.prompt_length - len(encoded)) + [1] * len(encoded)
        assert ids[mask == 1].tolist() == encoded
        assert bool((ids[mask == 0] == env.codec.pad_id).all())
    assert int(prompts.mask.sum(1).min()) < env.prompt_length  # some row is padded


def test_prompts_repeat_each_row_in_place_and_select_a_slice() -> None:
    ids = torch.tensor([[0, 5], [6, 7]])
    mask = torch.tensor([[0, 1], [1, 1]])
    prompts = Prompts(["a", "b"], ids, mask)
    twice = prompts.repeat(2)
    assert twice.texts == ["a", "a", "b", "b"]
    assert twice.ids.tolist() == [[0, 5], [0, 5], [6, 7], [6, 7]]
    assert twice.mask.tolist() == [[0, 1], [0, 1], [1, 1], [1, 1]]
    middle = twice.select(slice(1, 3))
    assert middle.texts == ["a", "b"]
    assert torch.equal(middle.ids, ids) and torch.equal(middle.mask, mask)


# --- responses and segments -------------------------------------------------------------------


def test_pad_responses_right_pads_to_the_length_with_the_pad_id() -> None:
    responses = torch.tensor([[4, 5, 1], [6, 1, 9]])
    padded = pad_responses(responses, 5, pad_id=9)
    assert padded.tolist() == [[4, 5, 1, 9, 9], [6, 1, 9, 9, 9]]
    assert padded.dtype == torch.long
    assert torch.equal(pad_responses(responses, 3, pad_id=9), responses)
    with pytest.raises(ValueError, match="responses of 3 tokens exceed the game's 2"):
        pad_responses(responses, 2, pad_id=9)


def test_judged_segments_hold_the_prompt_the_response_and_the_games_judgment(
    env: TextEnv,
) -> None:
    prompts = draw_prompts(env, 3, np.random.default_rng(4))
    liked = env.codec.encode("liked the prices .") + [env.codec.eos_id]
    responses = random_responses(env, 3, seed=4)
    responses[0] = pad_responses(torch.tensor([liked]), env.response_length, env.codec.pad_id)[0]
    segments = judged_segments(env, prompts, responses, env_id="prefgym/Text-v0", policy="sft")
    assert len(segments) == 3
    for i, segment in enumerate(segments):
        judgment = env.judge_response(prompts.texts[i], responses[i].numpy())
        assert segment.observations.tolist() == [prompts.ids[i].tolist()]
        assert segment.actions.tolist() == [responses[i].tolist()]
        assert segment.true_rewards.tolist() == [judgment[TRUE_REWARD_KEY]]
        assert segment.env_id == "prefgym/Text-v0"
        kept = {k: v for k, v in judgment.items() if k != TRUE_REWARD_KEY}  # in task units
        assert segment.info == kept | {"policy": "sft"}
    assert segments[0].info["response"] == "liked the prices ."
    assert segments[0].info["ended"] and segments[0].info["response_tokens"] == len(liked) - 1


def test_sample_segments_are_seeded_padded_after_eos_and_in_prompt_order(
    sft: LanguageModel,
) -> None:
    """70 prompts, more than one sampling batch of 64."""
    env = TextEnv("sentiment", codec=sft.codec)
    prompts = draw_prompts(env, 70, np.random.default_rng(0))

    def run(seed: int, temperature: float = 1.0) -> list[Segment]:
        return sample_segments(
            sft.model,
            env,
            prompts,
            generator=torch.Generator().manual_seed(seed),
            temperature=temperature,
            env_id="prefgym/Text-v0",
            policy="sft",
        )

    segments = run(0)
    assert len(segments) == 70
    assert [s.info["prompt"] for s in segments] == prompts.texts
    actions = np.concatenate([s.actions for s in segments])
    assert actions.shape == (70, env.response_length)
    real = response_mask(torch.as_tensor(actions), env.codec.eos_id).numpy()
    assert (actions[real == 0] == env.codec.pad_id).all()
    for segment in segments:
        judgment = env.judge_response(segment.info["prompt"], segment.actions[0])
        assert segment.info["true_score"] == judgment["true_score"]
        assert segment.info["policy"] == "sft" and segment.env_id == "prefgym/Text-v0"
    assert np.mean([s.info["ended"] for s in segments]) > 0.9  # the SFT model stops
    assert all(np.array_equal(a.actions, b.actions) for a, b in zip(segments, run(0), strict=True))
    assert not all(
        np.array_equal(a.actions, b.actions) for a, b in zip(segments, run(1), strict=True)
    )
    greedy, again = run(0, temperature=1e-4), run(1, temperature=1e-4)
    assert all(np.array_equal(a.actions, b.actions) for a, b in zip(greedy, again, strict=True))


# --- measuring ----------------------------------------------------------------------------------


def test_kl_of_a_model_to_a_copy_of_itself_is_zero(env: TextEnv) -> None:
    policy = tiny_policy(env)
    segments = judged(env, 10)
    kl = kl_to_reference(
        policy, copy.deepcopy(policy), segments, eos_id=env.codec.eos_id, pad_id=env.codec.pad_id
    )
    assert kl == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_kl_to_reference_is_the_mean_of_each_responses_summed_log_ratio(
    env: TextEnv, temperature: float
) -> None:
    """Over 70 segments (two batches), responses ending anywhere or never."""
    policy, reference = tiny_policy(env, 0), tiny_policy(env, 1)
    segments = judged(env, 70, seed=2)
    eos, pad = env.codec.eos_id, env.codec.pad_id
    kl = kl_to_reference(
        policy, reference, segments, eos_id=eos, pad_id=pad, temperature=temperature
    )
    per_response = []
    with torch.no_grad():
        for segment in segments:
            ids = torch.as_tensor(segment.observations)
            mask = (ids != pad).long()
            response = torch.as_tensor(segment.actions)
            logp = response_logprobs(
                policy, ids, mask, response, eos_id=eos, temperature=temperature
            )
            ref = response_logprobs(
                reference, ids, mask, response, eos_id=eos, temperature=temperature
            )
            per_response.append(float((logp - ref).sum()))  # 0 on padding already
    assert max(abs(v) for v in per_response) > 0.1  # two different models
    assert kl == pytest.approx(float(np.mean(per_response)), rel=1e-4, abs=1e-6)


def lowered(segments: Sequence[Segment], by: float) -> list[Segment]:
    return [dataclasses.replace(s, true_rewards=s.true_rewards - by) for s in segments]


def test_win_rate_against_the_same_segments_is_a_half(env: TextEnv) -> None:
    segments = judged(env, 12)
    oracle = SyntheticOracle.from_spec("oracle", np.random.default_rng(0))
    assert win_rate(oracle, segments, segments) == 0.5


def test_win_rate_is_one_when_the_first_side_is_strictly_better(env: TextEnv) -> None:
    segments = judged(env, 12)
    oracle = SyntheticOracle.from_spec("oracle", np.random.default_rng(0))
    assert win_rate(oracle, segments, lowered(segments, 1.0)) == 1.0
    assert win_rate(oracle, lowered(segments, 1.0), segments) == 0.0
    mixed = list(segments[:6]) + lowered(segments[6:], 1.0)  # 6 equal, 6 won
    assert win_rate(oracle, segments, mixed) == pytest.approx((6 * 0.5 + 6) / 12)


class FixedOracle:
    """Gives the same answers whatever it is shown."""

    def __init__(self, answers: list[Preference]) -> None:
        self.answers = answers

    def judge(self, left: Sequence[Segment], right: Sequence[Segment]) -> list[Preference]:
        assert len(left) == len(right) == len(self.answers)
        return self.answers


def test_win_rate_leaves_incomparable_pairs_out(env: TextEnv) -> None:
    segments = judged(env, 4)
    answers = [Preference.LEFT, Preference.INCOMPARABLE, Preference.EQUAL, Preference.LEFT]
    assert win_rate(FixedOracle(answers), segments, segments) == pytest.approx(2.5 / 3)  # type: ignore[arg-type]
    skipped = FixedOracle([Preference.INCOMPARABLE] * 4)
    assert math.isnan(win_rate(skipped, segments, segments))  # type: ignore[arg-type]


class FixedRewardModel:
    """Two members' returns of every segment, fixed."""

    def segment_returns(self, segments: Sequence[Segment]) -> np.ndarray:
        return np.array([[1.0] * len(segments), [4.0] * len(segments)])


def test_measure_is_the_text_summary_with_the_reward_models_mean_score(env: TextEnv) -> None:
    segments = judged(env, 9)
    summary = text_summary(segments)
    assert measure(segments) == summary
    assert measure(segments, FixedRewardModel()) == summary | {"rm_score": 2.5}  # type: ignore[arg-type]
