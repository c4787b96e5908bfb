from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.segments import Segment
from prefgym.store import PreferenceStore, StoreError, training_data


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


# --- ids and names from outside -----------------------------------------------------------

bad_ids = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63))
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
bad_names = st.one_of(
    st.just(""),
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=3), surrogates, st.text(max_size=3)),
)


@settings(max_examples=15, deadline=None)
@given(bad=bad_ids)
def test_an_id_sqlite_cannot_hold_is_refused_by_name(bad: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, PreferenceStore(Path(tmp) / "s.sqlite") as store:
        seg = filled(store, rng, 3)
        (q,) = store.add_queries([seg])
        calls = [
            lambda: store.get_segments([seg[0], bad]),
            lambda: store.add_queries([[seg[0], bad]]),
            lambda: store.get_query(bad),
            lambda: store.add_judgment(bad, "left", "a"),
            lambda: store.add_ranking(q, [seg[0], seg[1], bad], "a"),
            lambda: store.undo(bad),
            lambda: store.release_query(bad, "a"),
            lambda: store.judgments(since_id=bad),
            lambda: store.queries(since_id=bad),
            lambda: store.add_segments([], round=bad),
        ]
        for call in calls:
            with pytest.raises(ValueError, match=str(bad)):
                call()
        assert store.n_judgments() == 0 and store.n_queries() == 1


@settings(max_examples=15, deadline=None)
@given(name=bad_names)
def test_a_name_utf8_cannot_hold_is_refused_by_name(name: str) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, PreferenceStore(Path(tmp) / "s.sqlite") as store:
        seg = filled(store, rng, 3)
        (q,) = store.add_queries([seg[:2]])
        calls = [
            lambda: store.add_judgment(q, "left", name),
            lambda: store.claim_query(name),
            lambda: store.release_query(q, name),
            lambda: store.judgments(judge=name),
            lambda: store.n_judgments(judge=name),
            lambda: store.pending_queries(judge=name),
        ]
        for call in calls:
            with pytest.raises(
                ValueError, match="must be a non-empty string" if not name else "UTF-8"
            ):
                call()
        assert store.n_judgments() == 0 and store.claim_query("someone") is not None


@settings(max_examples=15, deadline=None)
@given(name=st.text(min_size=1), big=st.integers(0, 2**63 - 1))
def test_any_valid_name_and_id_is_kept_as_given(name: str, big: int) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, PreferenceStore(Path(tmp) / "s.sqlite") as store:
        seg = filled(store, rng, 2)
        (q,) = store.add_queries([seg])
        store.add_judgment(q, "right", name)
        (j,) = store.judgments(judge=name)
        assert j.judge == name and store.judgments(since_id=big) == ([] if big >= j.id else [j])
        if big != q:
            with pytest.raises(StoreError, match=f"unknown query id {big}"):
                store.get_query(big)
