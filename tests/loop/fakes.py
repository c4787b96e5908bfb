"""A random agent and a small control loop around it, for the loop's tests."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import prefgym  # noqa: F401  (registers the env ids)
from prefgym.judges import SyntheticOracle
from prefgym.loop import LoopConfig, PreferenceLoop, RoundResult, control_loop
from prefgym.reward import Learner, LearnerConfig, RewardEnsemble, RewardModelConfig
from prefgym.segments import Policy, Segment, make_vector_env, rollout_segments
from prefgym.store import PreferenceStore

ENV_ID = "prefgym/CartPole-v1"


class RandomAgent:
    """An agent that never learns: its 'training' is random play, cut into segments."""

    def __init__(self, segment_length: int, steps: int = 0) -> None:
        self.steps = steps
        self.segment_length = segment_length
        self.env = make_vector_env(ENV_ID, 2)
        self.rewards_set: list[RewardEnsemble | None] = []
        self._segments: list[Segment] = []

    def policy(self) -> Policy:
        space = self.env.single_action_space
        return lambda observations: np.array([space.sample() for _ in observations])

    def set_reward(self, model: RewardEnsemble | None) -> None:
        self.rewards_set.append(model)

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        n = steps // self.segment_length
        self._segments += rollout_segments(
            self.env, self.policy(), n, self.segment_length, seed=self.steps
        )
        self.steps += steps
        if progress is not None:
            progress(steps)

    def pop_segments(self) -> list[Segment]:
        segments, self._segments = self._segments, []
        return segments

    def recent_metrics(self) -> dict[str, float]:
        return {"true_return": math.nan, "learned_return": math.nan}


def small_loop(
    store: PreferenceStore,
    agent: RandomAgent,
    config: LoopConfig,
    *,
    oracle: SyntheticOracle | None,
    on_round: Callable[[RoundResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    seed: int = 0,
    **hooks: Any,
) -> PreferenceLoop:
    space = gym.make(ENV_ID)
    ensemble = RewardEnsemble(
        space.observation_space,
        space.action_space,
        RewardModelConfig(n_members=2, hidden_sizes=(16,)),
    )
    return control_loop(
        env_id=ENV_ID,
        agent=agent,
        ensemble=ensemble,
        learner=Learner(LearnerConfig(max_epochs=5, normalise=False)),
        store=store,
        oracle=oracle,
        config=config,
        rng=np.random.default_rng(seed),
        on_round=on_round,
        sleep=sleep,
        **hooks,
    )


CONFIG = LoopConfig(labels=40, steps=2_000, segment_length=10, round_steps=400, pool_size=200)
