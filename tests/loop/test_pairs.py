from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from prefgym.judges import PRESETS, SyntheticOracle
from prefgym.loop import LoopConfig
from prefgym.segments import Policy, rollout_segments
from prefgym.store import PreferenceStore
from tests.loop.fakes import CONFIG, RandomAgent, small_loop


@pytest.mark.parametrize("rollout_envs", [3, 16])
def test_the_initial_segments_come_from_rollout_envs_envs_at_once(
    tmp_path: Path, rng: np.random.Generator, rollout_envs: int
) -> None:
    batches: list[int] = []

    class CountingAgent(RandomAgent):
        """Counts the batches the loop asks its policy for, outside its own training."""

        def policy(self) -> Policy:
            act = super().policy()

            def counted(observations: np.ndarray) -> np.ndarray:
                batches.append(len(observations))
                return act(observations)

            return counted

        def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
            n = steps // self.segment_length
            policy = super().policy()
            self._segments += rollout_segments(self.env, policy, n, self.segment_length, seed=0)
            self.steps += steps

    config = replace(CONFIG, steps=400, rollout_envs=rollout_envs)
    oracle = SyntheticOracle(PRESETS["oracle"], "oracle", rng)
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        small_loop(store, CountingAgent(config.segment_length), config, oracle=oracle).run()
        initial = store.n_segments() - config.steps // config.segment_length
    assert batches and set(batches) == {rollout_envs}
    assert initial == max(20, int(config.schedule().initial * config.initial_segments_per_label))


def test_a_person_gets_clips_with_frames(tmp_path: Path) -> None:
    config = LoopConfig(
        labels=12, steps=800, segment_length=10, round_steps=400, keep_frames=True, frame_stride=4
    )
    with PreferenceStore(tmp_path / "store.sqlite") as store:

        def sleep(seconds: float) -> None:  # a person answers everything pending
            for query in store.pending_queries():
                store.add_judgment(query.id, "left", "person")

        small_loop(store, RandomAgent(10), config, oracle=None, sleep=sleep).run()
        asked = {i for q in store.queries() for i in q.segment_ids}
        segments = store.get_segments(sorted(asked), frames=True)
    assert len(asked) >= 2
    for segment in segments:
        assert segment.frames is not None
        assert segment.frames.shape == (10, 100, 150, 3)  # CartPole's 400x600 at stride 4
