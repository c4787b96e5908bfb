"""The store's segments (``prefgym.store._segments``), through ``PreferenceStore``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from prefgym.segments import Segment
from prefgym.store import PreferenceStore, StoreError

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import Filled, SegmentFactory

INFO = {"seed": 3, "text": "héllo", "nested": {"a": [1, 2.5, None]}}
"""Extras of the segments that round-trip: the store keeps them as JSON."""


def assert_same_segment(got: Segment, want: Segment, frames: bool = True) -> None:
    for name in ("observations", "actions", "true_rewards"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    if frames and want.frames is not None:
        assert got.frames is not None and got.frames.dtype == np.uint8
        np.testing.assert_array_equal(got.frames, want.frames)
    else:
        assert got.frames is None
    assert got.env_id == want.env_id
    assert dict(got.info) == dict(want.info)


def test_segments_round_trip_across_reopen(
    store_path: Path, rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
    segments = [make_segment(rng, length=3 + i, info=INFO) for i in range(4)]
    text = Segment(
        observations=np.array([[5, 9, 2]], dtype=np.int32),
        actions=np.array([[7, 1]], dtype=np.int64),
        true_rewards=np.array([0.25]),
        info={"prompt": "Once", "response": " upon a time"},
    )
    with PreferenceStore(store_path) as store:
        ids = store.add_segments(segments, round=2)
        ids += store.add_segments([text], round=3, keep_frames=False)
    with PreferenceStore(store_path) as store:
        assert store.n_segments() == 5
        assert store.segment_ids(round=2) == ids[:4] and store.segment_ids() == ids
        back = store.get_segments(list(reversed(ids)) + [ids[0]])
        for got, want in zip(back, [text, *reversed(segments), segments[0]], strict=True):
            assert_same_segment(got, want)
        for got, want in zip(store.get_segments(ids[:4], frames=False), segments, strict=True):
            assert_same_segment(got, want, frames=False)
        more = store.add_segments(segments[:1], keep_frames=False)
        assert more[0] > max(ids)
        assert store.get_segments(more)[0].frames is None


def test_segment_errors(
    store: PreferenceStore, rng: np.random.Generator, make_segment: SegmentFactory, filled: Filled
) -> None:
    ids = filled(store, rng, 2)
    with pytest.raises(StoreError, match="999"):
        store.get_segments([ids[0], 999])
    bad_info = Segment(np.zeros((2, 1)), np.zeros(2), np.zeros(2), info={"x": object()})
    with pytest.raises(ValueError, match="JSON"):
        store.add_segments([make_segment(rng), bad_info])
    objects = Segment(np.array([[None], [1]], dtype=object), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="object"):
        store.add_segments([objects])
    assert store.n_segments() == 2


def test_info_comes_back_as_json_does(
    store: PreferenceStore, rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
    (sid,) = store.add_segments([make_segment(rng, info={"pair": (1, 2), 7: "seven"})])
    (back,) = store.get_segments([sid])
    assert dict(back.info) == {"pair": [1, 2], "7": "seven"}


def test_segment_ids_and_counts_by_round(
    store: PreferenceStore, rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
    assert store.segment_ids() == [] and store.n_segments() == 0
    assert store.add_segments([]) == [] and store.get_segments([]) == []
    first = store.add_segments([make_segment(rng, frames=False) for _ in range(2)], round=1)
    second = store.add_segments([make_segment(rng, frames=False)], round=0)
    third = store.add_segments([make_segment(rng, frames=False) for _ in range(3)], round=1)
    assert store.segment_ids(round=1) == first + third
    assert store.segment_ids(round=0) == second
    assert store.segment_ids(round=5) == []
    assert store.segment_ids() == sorted(first + second + third)
    assert store.n_segments() == 6
    with pytest.raises(ValueError, match="round must be >= 0, got -1"):
        store.add_segments([make_segment(rng)], round=-1)
    assert store.n_segments() == 6


def test_many_segments_load_in_the_order_asked(
    store: PreferenceStore, rng: np.random.Generator
) -> None:
    # more ids than one IN (...) clause holds (CHUNK = 500), in an order of their own
    segments = [
        Segment(np.full((2, 1), float(i)), np.zeros(2, dtype=np.int64), np.full(2, float(i)))
        for i in range(1100)
    ]
    ids = store.add_segments(segments)
    assert len(set(ids)) == 1100 and ids == sorted(ids)
    order = rng.permutation(1100)
    asked = [ids[i] for i in order] + [ids[1099], ids[0]]
    back = store.get_segments(asked, frames=False)
    got = [float(s.observations[0, 0]) for s in back]
    assert got == [float(i) for i in order] + [1099.0, 0.0]
    with pytest.raises(StoreError, match=str(max(ids) + 1)):
        store.get_segments([*ids, max(ids) + 1], frames=False)


def test_ids_must_be_integers(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    ids = filled(store, rng, 2)
    with pytest.raises(ValueError, match="segment ids must be integer ids"):
        store.get_segments([ids[0], 1.5])  # type: ignore[list-item]
    assert len(store.get_segments([np.int64(ids[1])])) == 1  # numpy integers are ids


# --- finite numbers only ------------------------------------------------------------------

any_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
"""Every float64: NaN, the infinities, the largest and smallest, signed zeros."""


@settings(max_examples=40, deadline=None)
@given(
    observations=arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 3)), elements=any_floats
    ),
    actions=arrays(np.float32, st.integers(1, 4), elements=st.floats(width=32)),
    rewards=arrays(np.float64, st.integers(1, 4), elements=any_floats),
    at=st.integers(0, 2),
)
def test_a_segment_is_stored_exactly_or_refused_by_name(
    observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, at: int
) -> None:
    t = min(len(observations), len(actions), len(rewards))
    odd = Segment(observations[:t], actions[:t], rewards[:t], env_id="prefgym/Odd-v0")
    fine = Segment(np.zeros((t, 1)), np.zeros(t, dtype=np.int64), np.ones(t), env_id="x")
    batch = [fine, fine]
    batch.insert(at, odd)
    with tempfile.TemporaryDirectory() as tmp, PreferenceStore(Path(tmp) / "s.sqlite") as store:
        bad = [
            n
            for n in ("observations", "actions", "true_rewards")
            if not np.isfinite(getattr(odd, n)).all()
        ]
        if bad:
            with pytest.raises(
                ValueError,
                match=rf"segment {at} of the batch \(env_id 'prefgym/Odd-v0'\) has "
                rf"(nan|-?inf) in its {bad[0]} .*nothing of the batch was stored",
            ):
                store.add_segments(batch)
            assert store.n_segments() == 0
        else:
            ids = store.add_segments(batch)
            assert_same_segment(store.get_segments([ids[at]])[0], odd)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["observations", "actions", "true_rewards"])
def test_each_array_is_checked_and_integers_pass(
    store: PreferenceStore, name: str, value: float
) -> None:
    arrays_ = {
        "observations": np.zeros((3, 2)),
        "actions": np.zeros((3, 1), dtype=np.float32),
        "true_rewards": np.zeros(3),
    }
    arrays_[name][1] = value
    with pytest.raises(ValueError, match=rf"has {value} in its {name} at index \[1"):
        store.add_segments([Segment(**arrays_)])
    whole = Segment(np.arange(6).reshape(3, 2), np.array([0, 1, 2]), np.zeros(3))
    assert store.n_segments() == 0 and len(store.add_segments([whole])) == 1
