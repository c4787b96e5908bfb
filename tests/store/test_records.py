from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from prefgym.segments import Segment
from prefgym.store import PreferenceStore, training_data


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PreferenceStore]:
    with PreferenceStore(tmp_path / "prefs.sqlite") as s:
        yield s


def filled(store: PreferenceStore, rng: np.random.Generator, n: int = 6) -> list[int]:
    segments = [
        Segment(rng.normal(size=(5, 4)), rng.integers(0, 3, size=5), rng.normal(size=5))
        for _ in range(n)
    ]
    return store.add_segments(segments)


def test_training_data(store: PreferenceStore, rng: np.random.Generator) -> None:
    empty = training_data(store)
    assert empty.segment_ids == [] and empty.pairs.shape == (0, 2) and empty.targets.shape == (0,)
    seg = filled(store, rng)
    q = store.add_queries(
        [[seg[4], seg[1]], [seg[1], seg[2]], [seg[0], seg[5]], [seg[5], seg[2], seg[1]]]
    )
    store.add_judgment(q[0], "left", "a")
    store.add_judgment(q[1], "equal", "a")
    store.add_judgment(q[2], "incomparable", "a")
    store.add_judgment(q[0], "right", "b")
    store.add_ranking(q[3], [seg[2], seg[5], seg[1]], "a")
    data = training_data(store)
    assert data.segment_ids == [seg[1], seg[2], seg[4], seg[5]]  # seg[0] only incomparable
    assert data.pairs.dtype == np.int64
    np.testing.assert_array_equal(data.pairs, [[2, 0], [0, 1], [2, 0]])
    np.testing.assert_array_equal(data.targets, [1.0, 0.5, 0.0])
    assert data.rankings == [(1, 3, 0)]
    only_b = training_data(store, judge="b")
    assert only_b.segment_ids == [seg[1], seg[4]] and only_b.rankings == []
    np.testing.assert_array_equal(only_b.pairs, [[1, 0]])
