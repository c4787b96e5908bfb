"""Text segments: a prompt and one response, the text game's unit of judgment.

A text segment is a :class:`~prefgym.segments.Segment` of one step: the
observation is the prompt's token ids ``(1, prompt_length)`` (left-padded), the
action the response's ids ``(1, response_length)`` (padded after the first
eos), the true reward the task's hidden score. ``info`` carries the text a
judge reads (``prompt``, ``response``) and what evaluation reports
(``fluent``, ``ended``, ``task``), so the store, the oracles, the learner and
the labeling window need nothing text-specific.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prefgym.segments import TRUE_REWARD_KEY, Segment

TEXT_INFO_KEYS = ("prompt", "response", "true_score", "fluent", "ended", "task", "response_tokens")
"""The keys of a judged response's info kept on its segment."""


def text_segment(
    prompt_ids: np.ndarray,
    response_ids: np.ndarray,
    judged: Mapping[str, Any],
    *,
    env_id: str = "",
    **extra: Any,
) -> Segment:
    """One prompt and response as a segment.

    Args:
        prompt_ids: The prompt's left-padded ids, ``(prompt_length,)``.
        response_ids: The response's ids, ``(response_length,)``.
        judged: What the game said of the response (``TextEnv.judge_response``):
            at least ``prompt``, ``response`` and ``true_reward``.
        env_id: The environment the response was made in.
        **extra: JSON-serialisable extras kept in ``info`` (the policy, the round, ...).
    """
    missing = {"prompt", "response", TRUE_REWARD_KEY} - set(judged)
    if missing:
        raise ValueError(f"judged lacks {sorted(missing)}; pass TextEnv.judge_response's result")
    info = {k: judged[k] for k in TEXT_INFO_KEYS if k in judged}
    return Segment(
        observations=np.asarray(prompt_ids, dtype=np.int64)[None],
        actions=np.asarray(response_ids, dtype=np.int64)[None],
        true_rewards=np.array([float(judged[TRUE_REWARD_KEY])]),
        env_id=env_id,
        info={**info, **extra},
    )


def is_text_segment(segment: Segment) -> bool:
    """Whether ``segment`` holds a prompt and a response."""
    return "prompt" in segment.info and "response" in segment.info


def _score(segment: Segment) -> float:
    """The task's score in its own units (the true reward may be scaled)."""
    return float(segment.info.get("true_score", segment.true_return))


def text_summary(segments: Sequence[Segment]) -> dict[str, float]:
    """Mean true score, fluency, ended rate and response tokens of text segments."""
    if not segments:
        raise ValueError("text_summary needs at least one segment, got none")
    return {
        "true_score": float(np.mean([_score(s) for s in segments])),
        "fluency": float(np.mean([bool(s.info.get("fluent", False)) for s in segments])),
        "ended": float(np.mean([bool(s.info.get("ended", False)) for s in segments])),
        "response_tokens": float(np.mean([s.info.get("response_tokens", 0) for s in segments])),
    }
