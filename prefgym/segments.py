"""Segments: fixed-length stretches of behaviour that a judge compares.

Rollouts of any policy on a (vectorised) environment are cut into segments of
``length`` consecutive steps. A segment never crosses an episode boundary.
Rolled out on a :func:`make_vector_env` with ``replayable=True``, every segment
records its episode's seed and the actions before it (``info["seed"]``,
``info["prefix_actions"]``), so that the labeling window can re-simulate it and
render it sharp at full size instead of showing small stored frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n_envs, *obs_shape)`` to actions ``(n_envs, *act_shape)``."""
RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Maps observations ``(n, *obs_shape)`` and actions ``(n, *act_shape)`` to rewards ``(n,)``."""
TRUE_REWARD_KEY = "true_reward"
"""The ``info`` key where every ``prefgym/`` env reports the reward it hides from the agent."""


@dataclass(frozen=True, eq=False)
class Segment:
    """``T`` consecutive steps of behaviour, with the hidden true rewards.

    Only oracles and evaluation may read ``true_rewards``; reward models see
    observations and actions.
    """

    observations: np.ndarray
    """Observations at which the actions were taken, ``(T, *obs_shape)``."""
    actions: np.ndarray
    """Actions taken, ``(T, *act_shape)``."""
    true_rewards: np.ndarray
    """The task's hidden reward for each step, ``(T,)``."""
    frames: np.ndarray | None = None
    """Rendered frames to show a person, ``(T, H, W, 3)`` uint8, or None."""
    env_id: str = ""
    """The environment the segment came from."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """JSON-serialisable extras (text, seeds, the policy's step count, ...)."""

    def __post_init__(self) -> None:
        n = len(self.observations)
        if n == 0:
            raise ValueError("a segment needs at least one step, got 0")
        if len(self.actions) != n or len(self.true_rewards) != n:
            raise ValueError(
                f"observations, actions and true_rewards must have one row per step; got "
                f"{n}, {len(self.actions)} and {len(self.true_rewards)}"
            )
        if self.frames is not None and len(self.frames) != n:
            raise ValueError(f"frames must have one image per step ({n}), got {len(self.frames)}")

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return len(self.observations)

    @property
    def true_return(self) -> float:
        """Undiscounted sum of the true rewards."""
        return float(np.sum(self.true_rewards))


@dataclass(frozen=True)
class NonFinite:
    """Where a segment first holds NaN or an infinity (see :func:`first_non_finite`)."""

    array: str
    """``observations``, ``actions`` or ``true_rewards``."""
    index: tuple[int, ...]
    """The first bad element's index in that array."""
    value: float
    """Its value."""
    count: int
    """How many elements of that array are not finite."""


def first_non_finite(
    segment: Segment, arrays: tuple[str, ...] = ("observations", "actions", "true_rewards")
) -> NonFinite | None:
    """The first NaN or infinity among ``segment``'s ``arrays``, or None when all are finite."""
    for name in arrays:
        array = np.asarray(getattr(segment, name))
        if array.dtype.kind not in "fc":  # integers and booleans are always finite
            continue
        bad = ~np.isfinite(array)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return NonFinite(name, where, float(array[where].real), int(bad.sum()))
    return None


class SegmentCutter:
    """Cuts the step streams of ``n_envs`` parallel environments into segments.

    Feed it one vectorised step at a time with :meth:`add`; it returns the
    segments that step completed. Each environment's stream is cut into
    consecutive, non-overlapping segments, and the partial segment of an
    episode that ends is dropped, so a segment never crosses a reset.
    """

    def __init__(self, n_envs: int, length: int, env_id: str = "") -> None:
        """Create a cutter.

        Args:
            n_envs: Number of parallel environments.
            length: Steps per segment ``T``.
            env_id: Recorded on every segment.
        """
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if length < 1:
            raise ValueError(f"segment length must be >= 1, got {length}")
        self.n_envs = n_envs
        self.length = length
        self.env_id = env_id
        self._buffers: list[list[tuple[Any, ...]]] = [[] for _ in range(n_envs)]
        self._starts: list[Mapping[str, Any]] = [{} for _ in range(n_envs)]

    def starting(self, i: int) -> bool:
        """Whether environment ``i``'s next step starts a segment."""
        return not self._buffers[i]

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        true_rewards: np.ndarray,
        dones: np.ndarray,
        frames: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        starts: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Segment]:
        """Record one step of every environment.

        Args:
            observations: Observations the actions were taken at, ``(n_envs, *obs_shape)``.
            actions: Actions, ``(n_envs, *act_shape)``.
            true_rewards: True rewards of the step, ``(n_envs,)``.
            dones: Whether the step ended the episode, ``(n_envs,)``.
            frames: Frames of the observations, ``(n_envs, H, W, 3)``, or None.
            valid: Which environments really stepped, ``(n_envs,)``; None means all.
            starts: Per environment, the ``info`` of a segment that starts with this
                step (how to re-simulate it); None or a missing entry records nothing.

        Returns:
            The segments completed by this step.
        """
        completed: list[Segment] = []
        for i in range(self.n_envs):
            if valid is not None and not valid[i]:
                continue
            buffer = self._buffers[i]
            if not buffer:
                start = None if starts is None else starts[i]
                self._starts[i] = start or {}
            frame = None if frames is None else frames[i]
            buffer.append((observations[i], actions[i], true_rewards[i], frame))
            if len(buffer) == self.length:
                completed.append(self._segment(buffer, self._starts[i]))
            if len(buffer) == self.length or dones[i]:
                self._buffers[i] = []
        return completed

    def _segment(self, steps: list[tuple[Any, ...]], info: Mapping[str, Any]) -> Segment:
        observations, actions, rewards, frames = zip(*steps, strict=True)
        return Segment(
            observations=np.stack(observations),
            actions=np.stack(actions),
            true_rewards=np.asarray(rewards, dtype=np.float64),
            frames=None if frames[0] is None else np.stack(frames),
            env_id=self.env_id,
            info=dict(info),
        )


class ReplayableEpisodes(gym.Wrapper[Any, Any, Any, Any]):
    """Seeds every episode itself and keeps its actions, so any stretch of it can be replayed.

    The first reset's seed seeds the first episode and draws the seeds of the next
    ones (an autoreset passes none), so ``reset(seed=episode_seed)`` followed by
    the recorded actions re-simulates the episode exactly.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        """Wrap ``env``."""
        super().__init__(env)
        self.episode_seed = 0
        self.episode_actions: list[Any] = []
        self._seeds: np.random.Generator | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode with a seed of its own."""
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
            self.episode_seed = int(seed)
        elif self._seeds is None:
            raise ValueError(
                "a replayable env's first reset needs a seed (rollout_segments(seed=...)): "
                "each episode's seed is drawn from it"
            )
        else:
            self.episode_seed = int(self._seeds.integers(2**31))
        self.episode_actions = []
        return self.env.reset(seed=self.episode_seed, options=options)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step, keeping the action."""
        self.episode_actions.append(np.asarray(action).tolist())
        return self.env.step(action)

    def replay_info(self) -> dict[str, Any]:
        """How to reach the episode's next step: its seed and the actions so far."""
        return {"seed": self.episode_seed, "prefix_actions": list(self.episode_actions)}


def make_vector_env(
    env_id: str, n_envs: int, *, frames: bool = False, replayable: bool = False, **kwargs: Any
) -> gym.vector.VectorEnv:
    """A synchronous vector env that resets finished episodes in the same step.

    With ``replayable``, each episode is seeded on its own (:class:`ReplayableEpisodes`)
    and :func:`rollout_segments` records in each segment how to re-simulate it.
    """
    return gym.make_vec(
        env_id,
        num_envs=n_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        wrappers=[ReplayableEpisodes] if replayable else None,
        render_mode="rgb_array" if frames else None,
        **kwargs,
    )


def random_policy(action_space: gym.Space[Any]) -> Policy:
    """A policy that samples uniformly from a (batched) action space."""
    return lambda observations: np.asarray(action_space.sample())


def rollout_segments(
    env: gym.vector.VectorEnv,
    policy: Policy,
    n_segments: int,
    length: int,
    *,
    seed: int | None = None,
    frames: bool = False,
    frame_stride: int = 1,
    patience: int = 100,
) -> list[Segment]:
    """Roll ``policy`` out on a vector env until ``n_segments`` segments are cut.

    Args:
        env: A vector env; both of Gymnasium's same-step and next-step autoreset work.
        policy: Maps a batch of observations to a batch of actions.
        n_segments: How many segments to return.
        length: Steps per segment.
        seed: Seed of the first reset.
        frames: Keep rendered frames (the env must have ``render_mode="rgb_array"``).
        frame_stride: Keep every ``frame_stride``-th pixel of a frame in each direction.
        patience: Episodes that may end in a row without a segment cut before giving up.

    Returns:
        ``n_segments`` segments, in the order they were completed.

    Raises:
        ValueError: ``patience`` episodes in a row ended shorter than ``length``
            steps (so the rollout would never end).
    """
    if patience < 1:
        raise ValueError(f"patience must be >= 1 episode, got {patience}")
    if frames and env.render_mode != "rgb_array":
        raise ValueError(
            f"frames=True needs a vector env with render_mode='rgb_array', got {env.render_mode!r}"
        )
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    env_id = env.spec.id if env.spec is not None else ""
    cutter = SegmentCutter(env.num_envs, length, env_id=env_id)
    replayable = [e for e in getattr(env, "envs", []) if isinstance(e, ReplayableEpisodes)]
    if len(replayable) != env.num_envs:
        replayable = []
    observations, _ = env.reset(seed=seed)
    resetting = np.zeros(env.num_envs, dtype=bool)
    segments: list[Segment] = []
    episode_steps = np.zeros(env.num_envs, dtype=np.int64)
    barren, longest = 0, 0  # episodes ended in a row without a segment; the longest of them
    while len(segments) < n_segments:
        images = None
        if frames:
            images = np.stack(env.render())[:, ::frame_stride, ::frame_stride]  # type: ignore[arg-type]
        actions = policy(observations)
        starts = [e.replay_info() if cutter.starting(i) else None for i, e in enumerate(replayable)]
        next_observations, _, terminated, truncated, infos = env.step(actions)
        dones = np.logical_or(terminated, truncated)
        true_rewards = _true_rewards(infos, env.num_envs)
        cut = cutter.add(
            observations, actions, true_rewards, dones, images, ~resetting, starts or None
        )
        segments += cut
        episode_steps += ~resetting
        ended = dones & ~resetting
        if cut:
            barren, longest = 0, 0
        elif ended.any():
            barren += int(ended.sum())
            longest = max(longest, int(episode_steps[ended].max()))
            if barren >= patience:
                raise ValueError(
                    f"{env_id or 'the env'}: no segment of {length} steps in {barren} episodes "
                    f"in a row, the longest had {longest} steps; use a segment length of at "
                    f"most {longest}"
                )
        episode_steps[ended] = 0
        if mode == AutoresetMode.NEXT_STEP:
            resetting = dones
        observations = next_observations
    return segments[:n_segments]


def _true_rewards(infos: dict[str, Any], n_envs: int) -> np.ndarray:
    """True rewards of a vector step (same-step autoreset moves a final step's to final_info)."""
    rewards = np.zeros(n_envs, dtype=np.float64)
    for info in (infos, infos.get("final_info", {})):
        if TRUE_REWARD_KEY in info:
            mask = info.get(f"_{TRUE_REWARD_KEY}", np.ones(n_envs, dtype=bool))
            rewards[mask] = np.asarray(info[TRUE_REWARD_KEY], dtype=np.float64)[mask]
    return rewards


def sample_pairs(n_segments: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Sample ``n_pairs`` ordered pairs of distinct segment indices uniformly.

    Returns:
        Indices ``(n_pairs, 2)``; left and right differ in every row.
    """
    if n_segments < 2:
        raise ValueError(f"need at least 2 segments to make a pair, got {n_segments}")
    left = rng.integers(0, n_segments, size=n_pairs)
    right = (left + rng.integers(1, n_segments, size=n_pairs)) % n_segments
    return np.stack([left, right], axis=1)
