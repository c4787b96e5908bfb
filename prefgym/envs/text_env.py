"""The text-generation game: one prompt, one response, a hidden true score.

:class:`TextEnv` is single-step (InstructGPT, Ziegler et al. 2019): the
observation is the prompt's token ids, left-padded to ``prompt_length`` with a
mask; the action is a whole response, ``response_length`` token ids read up to
the first end-of-sequence token; the episode then terminates. As in every
prefgym task the agent is paid 0 and the task's true score is reported as
``info[TRUE_REWARD_KEY]`` (the task's score times ``reward_scale``; the score
itself is ``info["true_score"]``), beside the prompt and response text and whether the
response is fluent (parses under the task grammar) and ended (held an eos).

:class:`TokenTextEnv` is the token-level view of the same game (as RL4LMs):
one token per step, the score at the step that ends the response.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prefgym.segments import TRUE_REWARD_KEY
from prefgym.text import TASKS, TextCodec, TextTask, grammar_codec

Observation = dict[str, np.ndarray]


def text_task(name: str) -> TextTask:
    """The task called ``name``, with an error naming the known tasks otherwise."""
    if name not in TASKS:
        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown text task {name!r}; known: {sorted(TASKS)}.{hint}")
    return TASKS[name]


def left_pad(ids: Sequence[int], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids left-padded to ``length`` and their mask, both ``(length,)`` int64 / int8."""
    if len(ids) > length:
        raise ValueError(
            f"a prompt of {len(ids)} tokens does not fit prompt_length={length}; "
            "raise prompt_length"
        )
    padded = np.full(length, pad_id, dtype=np.int64)
    mask = np.zeros(length, dtype=np.int8)
    if ids:
        padded[length - len(ids) :] = ids
        mask[length - len(ids) :] = 1
    return padded, mask


class TextEnv(gym.Env[Observation, np.ndarray]):
    """Continue a prompt with one response; the true score is hidden in ``info``."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        task: str = "sentiment",
        *,
        codec: TextCodec | None = None,
        prompt_length: int = 24,
        response_length: int = 16,
        reward_scale: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        """Create the game.

        Args:
            task: ``sentiment``, ``arithmetic`` or ``harmless``.
            codec: Maps text to token ids and back; None means the grammar's own
                byte-level BPE tokenizer (trained once and cached).
            prompt_length: Tokens of the (left-padded) prompt observation.
            response_length: Tokens of a response action.
            reward_scale: The true reward (what oracles judge) is the task's score
                times this. B-Pref's teachers are calibrated to segment returns of
                tens; with scores in [-1, 1] the stochastic teacher (beta = 1) would
                answer almost at random, while at 10 a score gap of 0.1 is chosen
                correctly 73% of the time. ``info["true_score"]`` stays in task units.
            render_mode: None or ``"ansi"`` (the last prompt and response as text).
        """
        if prompt_length < 1 or response_length < 1:
            raise ValueError(
                f"prompt_length and response_length must be >= 1, "
                f"got {prompt_length} and {response_length}"
            )
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use None or 'ansi'")
        self.task = text_task(task)
        self.codec: TextCodec = codec if codec is not None else grammar_codec()
        self.prompt_length, self.response_length = prompt_length, response_length
        self.reward_scale = reward_scale
        self.render_mode = render_mode
        vocab = self.codec.vocab_size
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "prompt_ids": spaces.MultiDiscrete(np.full(prompt_length, vocab)),
                "prompt_mask": spaces.MultiBinary(prompt_length),
            }
        )
        self.action_space = spaces.MultiDiscrete(np.full(response_length, vocab))
        self.prompt_space = spaces.MultiDiscrete(np.full(prompt_length, vocab))
        """The prompt ids' space alone: what a text reward model reads as observations."""
        self._prompt: str | None = None
        self._last: dict[str, Any] | None = None

    def encode_prompt(self, prompt: str) -> Observation:
        """The observation of ``prompt``: its ids left-padded, and the mask."""
        ids, mask = left_pad(self.codec.encode(prompt), self.prompt_length, self.codec.pad_id)
        return {"prompt_ids": ids, "prompt_mask": mask}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Draw a prompt (or take ``options["prompt"]``) and show it."""
        super().reset(seed=seed)
        prompt = (options or {}).get("prompt") or self.task.sample_prompt(self.np_random)
        observation = self.encode_prompt(prompt)
        self._prompt, self._last = prompt, None
        return observation, {"prompt": prompt}

    def judge_response(
        self, prompt: str, response_ids: Sequence[int] | np.ndarray
    ) -> dict[str, Any]:
        """What the game knows of a response: its text, true score, fluency and length.

        Args:
            prompt: The prompt text.
            response_ids: Token ids; everything from the first eos on is ignored.
        """
        ids = [int(i) for i in np.asarray(response_ids).reshape(-1)]
        ended = self.codec.eos_id in ids
        length = ids.index(self.codec.eos_id) if ended else len(ids)
        response = self.codec.decode(ids)
        score = float(self.task.score(prompt, response))
        return {
            "prompt": prompt,
            "response": response,
            TRUE_REWARD_KEY: score * self.reward_scale,
            "true_score": score,
            "fluent": bool(ended and self.task.fluent(prompt, response)),
            "ended": ended,
            "response_tokens": length,
            "task": self.task.name,
        }

    def step(
        self, action: np.ndarray
    ) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        """Answer with a response; the episode ends and the reward is hidden (0)."""
        if self._prompt is None:
            raise RuntimeError("the game is over after one step; call reset() before step()")
        action = np.asarray(action)
        if action.shape != (self.response_length,):
            raise ValueError(
                f"a response is {self.response_length} token ids, got shape {action.shape}"
            )
        info = self.judge_response(self._prompt, action)
        observation = self.encode_prompt(self._prompt)
        self._prompt, self._last = None, info
        return observation, 0.0, True, False, info

    def render(self) -> str | None:  # type: ignore[override]
        """The last prompt and response as text (``"ansi"``), or None."""
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return f"{self._prompt or ''} ..."
        return f"{self._last['prompt']} | {self._last['response']}"


class TokenTextEnv(gym.Env[Observation, np.int64]):
    """The text game one token per step (as RL4LMs), for agents that act per token.

    The observation is the context so far (prompt and the response's tokens),
    left-padded to ``prompt_length + response_length`` with a mask. The
    episode terminates on eos and is truncated after ``response_length`` tokens;
    the true score of the whole response is ``info[TRUE_REWARD_KEY]`` of that last
    step (0 before it).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, task: str = "sentiment", **kwargs: Any) -> None:
        """Create the game; the arguments are those of :class:`TextEnv`."""
        self.game = TextEnv(task, **kwargs)
        self.render_mode = self.game.render_mode
        length = self.game.prompt_length + self.game.response_length
        vocab = self.game.codec.vocab_size
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "context_ids": spaces.MultiDiscrete(np.full(length, vocab)),
                "context_mask": spaces.MultiBinary(length),
            }
        )
        self.action_space = spaces.Discrete(vocab)
        self._prompt_ids: list[int] = []
        self._response: list[int] = []
        self._prompt: str | None = None

    def _observation(self) -> Observation:
        length = self.game.prompt_length + self.game.response_length
        ids, mask = left_pad(self._prompt_ids + self._response, length, self.game.codec.pad_id)
        return {"context_ids": ids, "context_mask": mask}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Draw a prompt (or take ``options["prompt"]``); the response starts empty."""
        super().reset(seed=seed)
        observation, info = self.game.reset(seed=seed, options=options)
        mask = observation["prompt_mask"].astype(bool)
        self._prompt_ids = [int(i) for i in observation["prompt_ids"][mask]]
        self._response, self._prompt = [], info["prompt"]
        return self._observation(), info

    def step(
        self, action: np.int64 | int
    ) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        """Append one token; score the response when it ends."""
        if self._prompt is None:
            raise RuntimeError("the response has ended; call reset() before step()")
        token = int(action)
        if not 0 <= token < self.game.codec.vocab_size:
            raise ValueError(
                f"token {token} is outside the vocabulary [0, {self.game.codec.vocab_size})"
            )
        self._response.append(token)
        terminated = token == self.game.codec.eos_id
        truncated = not terminated and len(self._response) >= self.game.response_length
        if not (terminated or truncated):
            return self._observation(), 0.0, False, False, {TRUE_REWARD_KEY: 0.0}
        info = self.game.judge_response(self._prompt, self._response)
        self.game._last, self._prompt = info, None
        return self._observation(), 0.0, terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        """The prompt and the response so far as text (``"ansi"``), or None."""
        if self.render_mode != "ansi":
            return None
        if self._prompt is None:
            return self.game.render()
        return f"{self._prompt} | {self.game.codec.decode(self._response)}"
