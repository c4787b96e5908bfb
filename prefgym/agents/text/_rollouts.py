"""Sampling a language policy on the text game, and measuring it.

What a text run reports comes from here: the true score, fluency, ended rate and
length of a policy's responses; the learned reward model's score of them; the
KL of the policy to its reference (summed over a response's tokens, the
quantity the PPO penalty controls); and the oracle win rate of one policy's
responses against another's on the same prompts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from prefgym.envs.text_env import TextEnv
from prefgym.judges import Oracle
from prefgym.judgments import Preference
from prefgym.lm import response_logprobs, response_mask, sample_responses
from prefgym.reward import RewardEnsemble
from prefgym.segments import Segment
from prefgym.text import text_segment, text_summary

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_BATCH = 64
"""Prompts per sampling or scoring pass."""


@dataclass(frozen=True)
class Prompts:
    """A batch of prompts as text and as the model reads them."""

    texts: list[str]
    """The prompts."""
    ids: Tensor
    """Left-padded ids ``(N, P)``."""
    mask: Tensor
    """1 on real tokens ``(N, P)``."""

    def __len__(self) -> int:
        return len(self.texts)

    def repeat(self, k: int) -> Prompts:
        """Each prompt ``k`` times in a row (``k`` responses per prompt)."""
        return Prompts(
            [t for t in self.texts for _ in range(k)],
            self.ids.repeat_interleave(k, 0),
            self.mask.repeat_interleave(k, 0),
        )

    def select(self, index: slice) -> Prompts:
        """The prompts at ``index``."""
        return Prompts(self.texts[index], self.ids[index], self.mask[index])


def draw_prompts(env: TextEnv, n: int, rng: np.random.Generator) -> Prompts:
    """``n`` prompts of the game's task, drawn with ``rng``."""
    texts = [env.task.sample_prompt(rng) for _ in range(n)]
    observations = [env.encode_prompt(t) for t in texts]
    ids = torch.as_tensor(np.stack([o["prompt_ids"] for o in observations]))
    mask = torch.as_tensor(np.stack([o["prompt_mask"] for o in observations])).long()
    return Prompts(texts, ids, mask)


def pad_responses(responses: Tensor, length: int, pad_id: int) -> Tensor:
    """Right-pad (or check) responses ``(N, R)`` to ``(N, length)``."""
    if responses.shape[1] > length:
        raise ValueError(f"responses of {responses.shape[1]} tokens exceed the game's {length}")
    out = torch.full((len(responses), length), pad_id, dtype=torch.long)
    out[:, : responses.shape[1]] = responses
    return out


def judged_segments(
    env: TextEnv, prompts: Prompts, responses: Tensor, *, env_id: str = "", **extra: Any
) -> list[Segment]:
    """Text segments of ``responses`` ``(N, R)`` to ``prompts``, judged by the game."""
    segments = []
    for i, prompt in enumerate(prompts.texts):
        judged = env.judge_response(prompt, responses[i].numpy())
        segments.append(
            text_segment(
                prompts.ids[i].numpy(), responses[i].numpy(), judged, env_id=env_id, **extra
            )
        )
    return segments


@torch.inference_mode()
def sample_segments(
    model: PreTrainedModel,
    env: TextEnv,
    prompts: Prompts,
    *,
    generator: torch.Generator,
    temperature: float = 1.0,
    env_id: str = "",
    **extra: Any,
) -> list[Segment]:
    """One response of ``model`` to each prompt, as judged text segments."""
    codec = env.codec
    chunks = []
    for start in range(0, len(prompts), _BATCH):
        batch = prompts.select(slice(start, start + _BATCH))
        responses = sample_responses(
            model,
            batch.ids,
            batch.mask,
            max_new_tokens=env.response_length,
            eos_id=codec.eos_id,
            pad_id=codec.pad_id,
            temperature=temperature,
            generator=generator,
        )
        chunks.append(pad_responses(responses, env.response_length, codec.pad_id))
    return judged_segments(env, prompts, torch.cat(chunks), env_id=env_id, **extra)


@torch.inference_mode()
def kl_to_reference(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    segments: Sequence[Segment],
    *,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
) -> float:
    """Mean over responses (sampled from ``policy``) of sum_t log pi(y_t) - log ref(y_t)."""
    total = 0.0
    for start in range(0, len(segments), _BATCH):
        chunk = segments[start : start + _BATCH]
        ids = torch.as_tensor(np.stack([s.observations[0] for s in chunk]))
        mask = (ids != pad_id).long()
        responses = torch.as_tensor(np.stack([s.actions[0] for s in chunk]))
        real = response_mask(responses, eos_id)
        logp = response_logprobs(
            policy, ids, mask, responses, eos_id=eos_id, temperature=temperature
        )
        ref = response_logprobs(
            reference, ids, mask, responses, eos_id=eos_id, temperature=temperature
        )
        total += float(((logp - ref) * real).sum())
    return total / max(len(segments), 1)


def win_rate(oracle: Oracle, first: Sequence[Segment], second: Sequence[Segment]) -> float:
    """How often ``oracle`` prefers ``first[i]`` to ``second[i]``; an equal judgment counts half.

    Incomparable (skipped) pairs are left out; NaN when every pair is.
    """
    preferences = oracle.judge(first, second)
    wins = {Preference.LEFT: 1.0, Preference.EQUAL: 0.5, Preference.RIGHT: 0.0}
    counted = [wins[p] for p in preferences if p in wins]
    return float(np.mean(counted)) if counted else math.nan


def measure(
    segments: Sequence[Segment], reward_model: RewardEnsemble | None = None
) -> dict[str, float]:
    """True score, fluency, ended rate, length and (with a reward model) its mean score."""
    row = text_summary(segments)
    if reward_model is not None:
        row["rm_score"] = float(reward_model.segment_returns(segments).mean())
    return row
