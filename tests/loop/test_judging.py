from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefgym.judges import PRESETS, Oracle, SyntheticOracle
from prefgym.judgments import Preference
from prefgym.loop import SegmentCache, judge_pending
from prefgym.segments import Segment
from prefgym.store import PreferenceStore


def _segment(true_return: float) -> Segment:
    return Segment(
        observations=np.zeros((2, 3), dtype=np.float32),
        actions=np.zeros((2, 1), dtype=np.float32),
        true_rewards=np.array([true_return, 0.0]),
        frames=np.zeros((2, 4, 4, 3), dtype=np.uint8),
        env_id="test",
    )


def test_pairs_and_rankings_are_judged_in_one_step(tmp_path: Path) -> None:
    oracle = SyntheticOracle(PRESETS["oracle"], "oracle", np.random.default_rng(0))
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        segments = SegmentCache(store)
        ids = segments.add([_segment(r) for r in (1.0, 5.0, 3.0, 2.0)], round=0)
        pair, ranking = store.add_queries([(ids[0], ids[1]), (ids[0], ids[1], ids[2], ids[3])])
        judge_pending(store, oracle, segments)
        judged = {j.query_id: j for j in store.judgments(judge="oracle")}
        assert judged[pair].preference is Preference.RIGHT
        assert judged[ranking].order == (ids[1], ids[2], ids[3], ids[0])
        judge_pending(store, oracle, segments)  # nothing pending: nothing judged twice
        assert store.n_judgments() == 2


def test_a_pairs_only_judge_says_so_for_a_ranking(tmp_path: Path) -> None:
    class PairsOnly(Oracle):
        name = "pairs-only"

        def judge(self, left: object, right: object) -> list[Preference]:
            return [Preference.LEFT] * len(left)  # type: ignore[arg-type]

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        segments = SegmentCache(store)
        ids = segments.add([_segment(r) for r in (1.0, 2.0, 3.0)], round=0)
        store.add_queries([ids])
        with pytest.raises(TypeError, match="'pairs-only' compares pairs only"):
            judge_pending(store, PairsOnly(), segments)
        assert store.n_judgments() == 0


def test_the_cache_keeps_segments_without_their_frames(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        segments = SegmentCache(store)
        (added,) = segments.add([_segment(1.0)], round=3)
        (kept,) = segments.load([added])
        assert kept.frames is None and kept.true_return == 1.0
        assert store.get_segments([added])[0].frames is not None  # the store keeps them
        assert store.segment_ids(round=3) == [added]
        fresh = SegmentCache(store).load([added, added])
        assert [s.true_return for s in fresh] == [1.0, 1.0] and fresh[0].frames is None
