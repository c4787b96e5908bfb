from __future__ import annotations

import itertools
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.judgments import Preference
from prefgym.segments import Segment
from prefgym.store import Judgeable, PreferenceStore, StoreError

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import Filled, SegmentFactory, Spawn

INFO = {"seed": 3, "text": "héllo", "nested": {"a": [1, 2.5, None]}}
"""Extras of the segments that round-trip: the store keeps them as JSON."""


# ---------------------------------------------------------------- segments


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


# ---------------------------------------------------------------- judgments

answers = st.one_of(
    st.sampled_from(list(Preference)),
    st.integers(3, 6).flatmap(lambda k: st.permutations(list(range(k)))),
)


@settings(max_examples=20, deadline=None)
@given(
    items=st.lists(st.tuples(answers, st.sampled_from(["alice", "noisy"])), max_size=12),
    batch=st.booleans(),
)
def test_every_judgment_survives_reopen(
    items: list[tuple[Preference | list[int], str]], batch: bool, filled: Filled
) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.sqlite"
        expected: list[tuple[int, tuple[int, ...], Preference | None, tuple[int, ...] | None, str]]
        expected = []
        with PreferenceStore(path) as store:
            seg = filled(store, rng, 6)
            for item, judge in items:
                if isinstance(item, Preference):
                    (q,) = store.add_queries([[seg[1], seg[4]]])
                    expected.append((q, (seg[1], seg[4]), item, None, judge))
                else:
                    (q,) = store.add_queries([seg[: len(item)]])
                    order = tuple(seg[i] for i in item)
                    expected.append((q, tuple(seg[: len(item)]), None, order, judge))
            answers: list[tuple[int, Judgeable, str]] = [
                (q, preference if preference is not None else ranking or (), judge)
                for q, _, preference, ranking, judge in expected
            ]
            if batch:  # consecutive answers by one judge go in one transaction
                for judge, group in itertools.groupby(answers, key=lambda a: a[2]):
                    store.add_judgments([(q, answer) for q, answer, _ in group], judge)
            else:
                for q, answer, judge in answers:
                    if isinstance(answer, Preference):
                        store.add_judgment(q, answer.value, judge)
                    else:
                        store.add_ranking(q, list(answer), judge)  # type: ignore[arg-type]
        with PreferenceStore(path) as store:
            stored = store.judgments()
            got = [(j.query_id, j.segment_ids, j.preference, j.order, j.judge) for j in stored]
            assert got == expected
            assert [j.id for j in stored] == sorted(j.id for j in stored)
            assert store.n_judgments(judge="alice") == sum(e[4] == "alice" for e in expected)
            assert store.pending_queries() == []


def test_batch_is_one_transaction(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    q = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]], seg[:3]])
    first = store.add_judgment(q[0], Preference.LEFT, "oracle")
    ids = store.add_judgments([(q[1], "right"), (q[2], [seg[2], seg[0], seg[1]])], "other")
    assert ids[0] < ids[1] and ids[0] > first
    with pytest.raises(ValueError, match="'sideways'"):
        store.add_judgments([(q[1], "equal"), (q[2], "sideways")], "third")
    with pytest.raises(StoreError, match="already"):  # q[0] was judged by oracle above
        store.add_judgments([(q[1], "equal"), (q[0], "equal")], "oracle")
    assert [j.id for j in store.judgments()] == [first, *ids]
    assert store.judgments(since_id=first)[0].id == ids[0]


def test_bad_input_names_the_value_and_keeps_judgments(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    pair, three = store.add_queries([[seg[0], seg[1]], seg[:3]])
    kept = store.add_judgment(pair, "left", "alice")
    with pytest.raises(StoreError, match="4242"):
        store.add_queries([[seg[0], seg[2]], [seg[0], 4242]])
    assert store.n_queries() == 2
    with pytest.raises(ValueError, match="distinct"):
        store.add_queries([[seg[0], seg[0]]])
    with pytest.raises(ValueError, match="'best'"):
        store.add_judgment(pair, "best", "bob")
    with pytest.raises(ValueError, match="not a permutation"):
        store.add_ranking(three, [seg[0], seg[1], seg[5]], "bob")
    with pytest.raises(ValueError, match="not a permutation"):
        store.add_ranking(three, [seg[0], seg[1]], "bob")
    with pytest.raises(StoreError, match="add_ranking"):
        store.add_judgment(three, "left", "bob")
    with pytest.raises(StoreError, match="add_judgment"):
        store.add_ranking(pair, [seg[1], seg[0]], "bob")
    with pytest.raises(StoreError, match="unknown query id 77"):
        store.add_judgment(77, "left", "bob")
    with pytest.raises(StoreError, match=f"already has judgment {kept} by judge 'alice'"):
        store.add_judgment(pair, "right", "alice")
    with pytest.raises(ValueError, match="judge"):
        store.add_judgment(pair, "right", "")
    (j,) = store.judgments()
    assert (j.id, j.preference, j.judge) == (kept, Preference.LEFT, "alice")
    second = store.add_judgment(pair, Preference.RIGHT, "bob")  # another judge may judge it
    assert [j.judge for j in store.judgments()] == ["alice", "bob"] and second > kept


def test_undo(store: PreferenceStore, rng: np.random.Generator, filled: Filled) -> None:
    seg = filled(store, rng)
    q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]])
    a = store.add_judgment(q1, "left", "alice")
    b = store.add_judgment(q2, "equal", "alice")
    assert store.pending_queries() == []
    removed = store.undo(b)
    assert removed.id == b and removed.preference is Preference.EQUAL
    assert [q.id for q in store.pending_queries()] == [q2]
    assert [j.id for j in store.judgments()] == [a]
    c = store.add_judgment(q2, "right", "alice")
    assert c > b  # an undone id is never reused
    with pytest.raises(StoreError, match=str(b)):
        store.undo(b)


# ------------------------------------------------------ processes and crashes


WRITER = """
import itertools, sys
from prefgym.store._store import PreferenceStore
with PreferenceStore(sys.argv[1], timeout=60) as store:
    queries = [q.id for q in store.pending_queries()]
    limit = int(sys.argv[2])
    n = 0
    for round in itertools.count():
        for query in queries:
            if n == limit:
                sys.exit(0)
            judgment = store.add_judgment(query, "left" if n % 2 else "right", f"judge{round}")
            print(judgment, flush=True)
            n += 1
"""


def test_reader_sees_a_consistent_store_while_another_process_writes(
    store_path: Path, rng: np.random.Generator, filled: Filled, spawn: Spawn
) -> None:
    with PreferenceStore(store_path) as store:
        seg = filled(store, rng)
        store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]] * 20)
        writer = spawn(WRITER, str(store_path), "150")
        seen: list[int] = []
        snapshots = 0
        while writer.poll() is None or snapshots == 0:
            ids = [j.id for j in store.judgments()]
            assert ids[: len(seen)] == seen  # what was read before is still there
            assert store.n_judgments() >= len(ids)
            seen = ids
            snapshots += 1
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0
        reported = [int(line) for line in out.split()]
        assert len(reported) == 150
        assert [j.id for j in store.judgments()] == reported
        assert snapshots > 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_labeling_loses_no_committed_judgment(
    store_path: Path, rng: np.random.Generator, filled: Filled, spawn: Spawn
) -> None:
    with PreferenceStore(store_path) as store:
        seg = filled(store, rng)
        store.add_queries([[seg[i % 6], seg[(i + 1) % 6]] for i in range(50)])
    writer = spawn(WRITER, str(store_path), "-1")  # writes until killed
    assert writer.stdout is not None
    reported = [int(writer.stdout.readline()) for _ in range(40)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    with PreferenceStore(store_path) as store:
        stored = {j.id for j in store.judgments()}
        assert set(reported) <= stored
        assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.add_judgment(store.pending_queries()[0].id, "equal", "after")  # still writable


# --------------------------------------------------------------------- meta


def test_meta(store_path: Path) -> None:
    with PreferenceStore(store_path) as store:
        assert store.get_meta("labels") is None and store.get_meta("labels", 0) == 0
        store.set_meta("labels", 3)
        store.set_meta("labels", 4)
        store.set_meta("config", {"env": "prefgym/Pendulum-v1", "beta": [1.0, None]})
        with pytest.raises(ValueError, match="'bad'"):
            store.set_meta("bad", {1, 2})
    with PreferenceStore(store_path) as store:
        assert store.get_meta("labels") == 4
        assert store.get_meta("config") == {"env": "prefgym/Pendulum-v1", "beta": [1.0, None]}
        assert store.get_meta("bad") is None
