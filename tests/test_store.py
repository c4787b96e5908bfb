from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.judgments import Preference
from prefgym.segments import Segment
from prefgym.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    Judgeable,
    PreferenceStore,
    StoreError,
    training_data,
)

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_segment(rng: np.random.Generator, length: int = 5, frames: bool = True) -> Segment:
    return Segment(
        observations=rng.normal(size=(length, 4)).astype(np.float32),
        actions=rng.integers(0, 3, size=length),
        true_rewards=rng.normal(size=length),
        frames=rng.integers(0, 256, size=(length, 6, 8, 3), dtype=np.uint8) if frames else None,
        env_id="prefgym/CartPole-v1",
        info={"seed": 3, "text": "héllo", "nested": {"a": [1, 2.5, None]}},
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "prefs.sqlite"


@pytest.fixture
def store(store_path: Path) -> Iterator[PreferenceStore]:
    with PreferenceStore(store_path, clock=FakeClock()) as s:
        yield s


def filled(store: PreferenceStore, rng: np.random.Generator, n: int = 6) -> list[int]:
    return store.add_segments([make_segment(rng, frames=False) for _ in range(n)])


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


def test_segments_round_trip_across_reopen(store_path: Path, rng: np.random.Generator) -> None:
    segments = [make_segment(rng, length=3 + i) for i in range(4)]
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


def test_segment_errors(store: PreferenceStore, rng: np.random.Generator) -> None:
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
    items: list[tuple[Preference | list[int], str]], batch: bool
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


def test_batch_is_one_transaction(store: PreferenceStore, rng: np.random.Generator) -> None:
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
    store: PreferenceStore, rng: np.random.Generator
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


def test_undo(store: PreferenceStore, rng: np.random.Generator) -> None:
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


def test_pending_per_judge(store: PreferenceStore, rng: np.random.Generator) -> None:
    seg = filled(store, rng)
    q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]], round=4)
    store.add_judgment(q1, "left", "oracle")
    assert [q.id for q in store.pending_queries()] == [q2]
    assert [q.id for q in store.pending_queries(judge="alice")] == [q1, q2]
    assert [q.id for q in store.pending_queries(judge="alice", limit=1)] == [q1]
    query = store.get_query(q2)
    assert (query.segment_ids, query.round, query.created) == ((seg[2], seg[3]), 4, 1000.0)


# ------------------------------------------------------------------- leases


def test_leases(store_path: Path, rng: np.random.Generator) -> None:
    clock = FakeClock()
    with (
        PreferenceStore(store_path, clock=clock) as one,
        PreferenceStore(store_path, clock=clock) as two,
    ):
        seg = filled(one, rng)
        q = one.add_queries([[seg[0], seg[1]], [seg[2], seg[3]], [seg[4], seg[5]]])
        a = one.claim_query("window-1", lease_seconds=60)
        b = two.claim_query("window-2", lease_seconds=60)
        c = one.claim_query("window-1", lease_seconds=60)
        assert a is not None and b is not None and c is not None
        assert [a.id, b.id, c.id] == q
        assert two.claim_query("window-2") is None
        clock.now += 59.0
        assert two.claim_query("window-2") is None
        clock.now += 1.0  # window-1's leases have expired
        d = two.claim_query("window-2", lease_seconds=60)
        assert d is not None and d.id == a.id
        assert one.release_query(b.id, "window-1") is False  # not its lease
        assert two.release_query(b.id, "window-2") is True
        e = one.claim_query("window-1")
        assert e is not None and e.id == b.id
        two.add_judgment(c.id, "left", "bob")  # judged: no longer pending, lease ended
        clock.now += 1000.0
        f = one.claim_query("window-1")
        g = one.claim_query("window-1")
        assert f is not None and g is not None and {f.id, g.id} == {a.id, b.id}
        assert one.claim_query("window-1") is None
        one.release_query(f.id, "window-1")
        h = one.claim_query("window-1", judge="carol")
        assert h is not None and h.id == f.id
        i = one.claim_query("window-1", judge="carol")  # judged by bob, not by carol
        assert i is not None and i.id == c.id
        with pytest.raises(ValueError, match="lease_seconds"):
            one.claim_query("w", lease_seconds=0)
        with pytest.raises(StoreError, match="99"):
            one.release_query(99, "window-1")


CLAIMER = """
import sys, time
from prefgym.store import PreferenceStore
with PreferenceStore(sys.argv[1], timeout=60) as store:
    print("ready", flush=True)
    sys.stdin.readline()
    while (query := store.claim_query(sys.argv[2])) is not None:
        print(query.id, flush=True)
        time.sleep(0.001)  # let the other claimer in (SQLite's busy wait is not fair)
"""


def spawn(code: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_processes_claiming_at_once_never_share_a_query(
    store_path: Path, rng: np.random.Generator
) -> None:
    with PreferenceStore(store_path) as store:
        seg = filled(store, rng)
        queries = store.add_queries([[seg[i % 6], seg[(i + 1) % 6]] for i in range(150)])
    children = [spawn(CLAIMER, str(store_path), f"w{i}", stdin=True) for i in range(2)]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:  # both have imported and opened the store: their claims overlap
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    claimed = [
        [int(line) for line in child.communicate(timeout=60)[0].split()] for child in children
    ]
    assert all(child.returncode == 0 for child in children)
    assert claimed[0] and claimed[1]  # both got some: the claims really raced
    assert sorted(claimed[0] + claimed[1]) == queries


# ------------------------------------------------------ processes and crashes

WRITER = """
import itertools, sys
from prefgym.store import PreferenceStore
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
    store_path: Path, rng: np.random.Generator
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
    store_path: Path, rng: np.random.Generator
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


# ------------------------------------------------------------ bad files


def test_not_a_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"my precious notes\n" * 100
    path.write_bytes(content)
    with pytest.raises(StoreError, match="notes.txt.*not a SQLite database"):
        PreferenceStore(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_corrupt_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    content = b"SQLite format 3\x00" + bytes(range(256)) * 16
    path.write_bytes(content)
    with pytest.raises(StoreError, match="broken.sqlite"):
        PreferenceStore(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="other.db.*not a prefgym preference store"):
        PreferenceStore(path)
    assert path.read_bytes() == before


def test_newer_schema_asks_for_an_upgrade(store_path: Path) -> None:
    PreferenceStore(store_path).close()
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as error:
        PreferenceStore(store_path)
    message = str(error.value)
    assert f"version {SCHEMA_VERSION + 1}" in message and f"version {SCHEMA_VERSION}" in message
    assert "upgrade prefgym" in message and str(store_path) in message


def test_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a file"):
        PreferenceStore(tmp_path)
    with pytest.raises(StoreError, match="not a directory"):
        PreferenceStore(tmp_path / "missing" / "s.sqlite")


def test_empty_file_becomes_a_store_in_wal_mode(store_path: Path) -> None:
    store_path.touch()
    with PreferenceStore(store_path) as store:
        conn = store.connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.n_segments()


# --------------------------------------------------------- meta and training


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


def test_write_waits_for_another_writer_then_says_so(
    store_path: Path, rng: np.random.Generator
) -> None:
    with PreferenceStore(store_path, timeout=0.05) as store:
        other = sqlite3.connect(store_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        assert store.n_segments() == 0  # readers are not blocked (WAL)
        with pytest.raises(StoreError, match="could not start a write.*timeout=0.05"):
            filled(store, rng, 1)
        other.execute("COMMIT")
        other.close()
        assert len(filled(store, rng, 1)) == 1


def test_queries_lists_every_query_in_order(tmp_path) -> None:
    import numpy as np

    from prefgym.segments import Segment
    from prefgym.store import PreferenceStore

    with PreferenceStore(tmp_path / "s.sqlite") as store:
        seg = Segment(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
        ids = store.add_segments([seg, seg, seg])
        q = store.add_queries([(ids[0], ids[1]), (ids[1], ids[2]), (ids[0], ids[1], ids[2])])
        assert [x.id for x in store.queries()] == q
        assert [x.segment_ids for x in store.queries(since_id=q[0])] == [
            (ids[1], ids[2]),
            (ids[0], ids[1], ids[2]),
        ]
