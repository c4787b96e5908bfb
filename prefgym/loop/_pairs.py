"""The control half's query source: pairs of rollout segments the ensemble disagrees on.

Christiano et al. 2017: the initial policy's segments are rolled out before
training; afterwards the agent's training rollouts supply the candidates (or,
when a person watches clips, fresh rollouts with rendered frames), and the
pairs asked are those the reward-model ensemble disagrees on most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from prefgym.judges import Oracle
from prefgym.loop._judging import SegmentCache
from prefgym.loop._loop import Agent, PreferenceLoop, RewardFitting
from prefgym.loop._plans import StepRounds
from prefgym.loop._selection import select_queries
from prefgym.loop.config import LoopConfig
from prefgym.reward import Learner, RewardEnsemble
from prefgym.segments import Policy, Segment, make_vector_env, rollout_segments
from prefgym.store import PreferenceStore


class ActivePairs:
    """Pairs of recent segments, chosen by the ensemble's disagreement (or as configured)."""

    def __init__(
        self,
        *,
        env_id: str,
        store: PreferenceStore,
        ensemble: RewardEnsemble,
        policy: Callable[[], Policy],
        training_segments: Callable[[], list[Segment]],
        config: LoopConfig,
        rng: np.random.Generator,
    ) -> None:
        """Ask about ``env_id``'s segments.

        Args:
            env_id: The environment, for rollouts outside training.
            store: Where segments and queries go.
            ensemble: Scores candidates for active selection.
            policy: The agent's current policy, for rollouts outside training.
            training_segments: Segments cut from the agent's training rollouts since the last call.
            config: Segment length, selection, pool and rollout settings.
            rng: Source of the source's randomness (shared with the loop).
        """
        self.env_id, self.store, self.ensemble = env_id, store, ensemble
        self.policy, self.training_segments = policy, training_segments
        self.config, self.rng = config, rng

    @property
    def _round(self) -> int:
        return int(self.store.get_meta("round", 0))

    def start(self, segments: SegmentCache) -> None:
        """Roll out the initial policy for the initial share of the labels (a new run only)."""
        if self.store.n_segments() > 0:
            return
        schedule = self.config.schedule()
        count = max(20, int(schedule.initial * self.config.initial_segments_per_label))
        segments.add(self._rollout(count), round=self._round)

    def collect(self, segments: SegmentCache) -> None:
        """Take in the segments of the training rollouts just finished."""
        training = self.training_segments()
        if not self.config.keep_frames:  # with frames, queries come from fresh clips
            segments.add(training, round=self._round)

    def ask(self, n: int, progress: int, segments: SegmentCache) -> None:
        """Choose ``n`` new pairs from the recent segments and store them."""
        if self.config.keep_frames and self.store.n_queries() > 0:  # later rounds: fresh clips
            segments.add(self._rollout(max(10, 2 * n)), round=self._round)
        pool = self.store.segment_ids()[-self.config.pool_size :]
        if len(pool) < 2:
            return
        position = {segment_id: k for k, segment_id in enumerate(pool)}
        asked = {
            (position[q.segment_ids[0]], position[q.segment_ids[1]])
            for q in self.store.queries()
            if len(q.segment_ids) == 2 and all(s in position for s in q.segment_ids)
        }
        pairs = select_queries(
            self.config.selection if self.store.n_judgments() > 0 else "uniform",
            self.ensemble,
            segments.load(pool),
            n,
            self.rng,
            oversample=self.config.oversample,
            exclude=asked,
        )
        self.store.add_queries([(pool[a], pool[b]) for a, b in pairs], round=self._round)

    def reference(self) -> list[int]:
        """The segments the learned reward is normalised on: the most recent pool."""
        return self.store.segment_ids()[-self.config.pool_size :]

    def _rollout(self, count: int) -> list[Segment]:
        """``count`` segments of the agent's current policy, outside training."""
        frames = self.config.keep_frames
        n_envs = min(self.config.rollout_envs, 4) if frames else self.config.rollout_envs
        env = make_vector_env(self.env_id, n_envs, frames=frames, replayable=frames)
        env.action_space.seed(int(self.rng.integers(2**31)))
        segments = rollout_segments(
            env,
            self.policy(),
            count,
            self.config.segment_length,
            seed=int(self.rng.integers(2**31)),
            frames=frames,
            frame_stride=self.config.frame_stride,
        )
        env.close()
        return segments


class RolloutAgent(Agent, Protocol):
    """An agent whose rollouts supply the segments (SB3 PPO and SAC)."""

    def policy(self) -> Policy:
        """The current (stochastic) policy, for rollouts outside training."""
        ...

    def pop_segments(self) -> list[Segment]:
        """Segments cut from the training rollouts since the last call."""
        ...


def control_loop(
    *,
    env_id: str,
    agent: RolloutAgent,
    ensemble: RewardEnsemble,
    learner: Learner,
    store: PreferenceStore,
    oracle: Oracle | None,
    config: LoopConfig,
    rng: np.random.Generator,
    **hooks: Any,
) -> PreferenceLoop:
    """The loop of a control task: active pairs of rollout segments, refits every round.

    Args:
        env_id: The environment, for rollouts outside training.
        agent: Trains against the learned reward and supplies segments.
        ensemble: The reward model.
        learner: Fits the reward model from the store's judgments.
        store: Where segments, queries and judgments live.
        oracle: Judges new queries at once; None when a person labels through the store.
        config: Loop settings.
        rng: Source of all the loop's randomness.
        **hooks: ``max_wait``, ``on_round``, ``on_refit``, ``on_wait``, ``progress``,
            ``clock`` and ``sleep`` of :class:`PreferenceLoop`.
    """
    source = ActivePairs(
        env_id=env_id,
        store=store,
        ensemble=ensemble,
        policy=agent.policy,
        training_segments=agent.pop_segments,
        config=config,
        rng=rng,
    )
    return PreferenceLoop(
        source=source,
        plan=StepRounds(config.schedule(), config.round_steps),
        agent=agent,
        fitting=RewardFitting(learner, build=lambda: ensemble, model=ensemble),
        store=store,
        oracle=oracle,
        rng=rng,
        poll_seconds=config.poll_seconds,
        **hooks,
    )
