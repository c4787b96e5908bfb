from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from prefgym.segments import Segment
from prefgym.store import PreferenceStore, StoreError

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import FakeClock, Filled, Spawn


def test_pending_per_judge(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]], round=4)
    store.add_judgment(q1, "left", "oracle")
    assert [q.id for q in store.pending_queries()] == [q2]
    assert [q.id for q in store.pending_queries(judge="alice")] == [q1, q2]
    assert [q.id for q in store.pending_queries(judge="alice", limit=1)] == [q1]
    query = store.get_query(q2)
    assert (query.segment_ids, query.round, query.created) == ((seg[2], seg[3]), 4, 1000.0)


# ------------------------------------------------------------------- leases


def test_leases(
    store_path: Path, rng: np.random.Generator, clock: FakeClock, filled: Filled
) -> None:
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
from prefgym.store._store import PreferenceStore
with PreferenceStore(sys.argv[1], timeout=60) as store:
    print("ready", flush=True)
    sys.stdin.readline()
    while (query := store.claim_query(sys.argv[2])) is not None:
        print(query.id, flush=True)
        time.sleep(0.001)  # let the other claimer in (SQLite's busy wait is not fair)
"""


def test_processes_claiming_at_once_never_share_a_query(
    store_path: Path, rng: np.random.Generator, filled: Filled, spawn: Spawn
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


def test_queries_lists_every_query_in_order(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        seg = Segment(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
        ids = store.add_segments([seg, seg, seg])
        q = store.add_queries([(ids[0], ids[1]), (ids[1], ids[2]), (ids[0], ids[1], ids[2])])
        assert [x.id for x in store.queries()] == q
        assert [x.segment_ids for x in store.queries(since_id=q[0])] == [
            (ids[1], ids[2]),
            (ids[0], ids[1], ids[2]),
        ]


def test_a_lease_on_screen_is_renewed_and_an_owner_s_leases_listed(
    store_path: Path, rng: np.random.Generator, clock: FakeClock, filled: Filled
) -> None:
    with (
        PreferenceStore(store_path, clock=clock) as one,
        PreferenceStore(store_path, clock=clock) as two,
    ):
        seg = filled(one, rng)
        q1, q2 = one.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]])
        assert one.claim_query("w1", lease_seconds=10).id == q1  # type: ignore[union-attr]
        clock.now += 8
        assert one.renew_lease(q1, "w1", lease_seconds=10)  # still on screen
        clock.now += 8  # 16 s after the claim: without the renewal it would have lapsed
        assert two.claim_query("w2", lease_seconds=10).id == q2  # type: ignore[union-attr]
        assert two.claim_query("w2", lease_seconds=10) is None
        assert not two.renew_lease(q1, "w2", lease_seconds=10)  # w1 holds it
        assert one.lease_owners() == {"w1": [q1], "w2": [q2]}
        clock.now += 11  # both lapse; a lapsed lease nobody took is taken back
        assert one.lease_owners() == {}
        assert one.renew_lease(q1, "w1", lease_seconds=10)
        assert two.lease_owners() == {"w1": [q1]}
        with pytest.raises(StoreError, match="unknown query id 99"):
            one.renew_lease(99, "w1")
        with pytest.raises(ValueError, match="lease_seconds must be > 0"):
            one.renew_lease(q1, "w1", lease_seconds=0)
