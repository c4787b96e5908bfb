"""The store's judgments (``prefgym.store._judgments``), through ``PreferenceStore``."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.judgments import Preference
from prefgym.store import Judgeable, JudgedMeanwhile, PreferenceStore, StoreError

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import FakeClock, Filled

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


def test_a_judgment_records_its_query_judge_and_time(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled, clock: FakeClock
) -> None:
    seg = filled(store, rng)
    pair, three = store.add_queries([[seg[3], seg[1]], [seg[0], seg[4], seg[2]]])
    clock.now = 1234.5
    first = store.add_judgment(pair, "equal", "alice")
    clock.now = 2000.0
    second = store.add_ranking(three, [seg[2], seg[0], seg[4]], "bob")
    a, b = store.judgments()
    assert (a.id, a.query_id, a.segment_ids, a.judge, a.created) == (
        first,
        pair,
        (seg[3], seg[1]),
        "alice",
        1234.5,
    )
    assert (a.preference, a.order) == (Preference.EQUAL, None)
    assert (b.id, b.query_id, b.segment_ids, b.judge, b.created) == (
        second,
        three,
        (seg[0], seg[4], seg[2]),
        "bob",
        2000.0,
    )
    assert (b.preference, b.order) == (None, (seg[2], seg[0], seg[4]))


def test_judgments_filter_by_judge_and_since_id(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    q = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]], [seg[4], seg[5]]])
    ids = {
        ("alice", 0): store.add_judgment(q[0], "left", "alice"),
        ("bob", 0): store.add_judgment(q[0], "right", "bob"),
        ("alice", 1): store.add_judgment(q[1], "right", "alice"),
        ("bob", 2): store.add_judgment(q[2], "incomparable", "bob"),
    }
    alice = [ids["alice", 0], ids["alice", 1]]
    assert [j.id for j in store.judgments(judge="alice")] == alice
    assert [j.id for j in store.judgments(judge="bob", since_id=ids["bob", 0])] == [ids["bob", 2]]
    assert [j.id for j in store.judgments(since_id=ids["alice", 1])] == [ids["bob", 2]]
    assert store.judgments(judge="carol") == []
    assert (store.n_judgments(), store.n_judgments(judge="alice")) == (4, 2)
    assert store.n_judgments(judge="carol") == 0


def test_judging_ends_the_lease_and_undoing_makes_the_query_claimable(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    (q,) = store.add_queries([[seg[0], seg[1]]])
    claimed = store.claim_query("window-1")
    assert claimed is not None and claimed.id == q
    assert store.claim_query("window-2") is None  # leased
    judgment = store.add_judgment(q, "left", "alice")
    assert not store.release_query(q, "window-1")  # the judgment ended the lease
    assert store.claim_query("window-2") is None  # and the query is judged
    store.undo(judgment)
    again = store.claim_query("window-2")
    assert again is not None and again.id == q


def test_a_failed_batch_keeps_every_lease_and_writes_nothing(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]])
    assert store.claim_query("window") is not None  # q1
    with pytest.raises(StoreError, match="unknown query id 99"):
        store.add_judgments([(q1, "left"), (99, "right")], "alice")
    assert store.n_judgments() == 0
    assert store.release_query(q1, "window")  # the lease was still held
    assert [p.id for p in store.pending_queries()] == [q1, q2]


def test_a_person_s_seconds_are_stored_with_the_judgment(
    store_path: Path, rng: np.random.Generator, clock: FakeClock, filled: Filled
) -> None:
    with PreferenceStore(store_path, clock=clock) as store:
        seg = filled(store, rng)
        q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3], seg[4]]])
        store.add_judgment(q1, "left", "alice", seconds=2.5)
        store.add_ranking(q2, [seg[4], seg[2], seg[3]], "alice", seconds=7.0)
        store.add_judgment(q1, "right", "oracle")
        for bad in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
                store.add_judgment(q1, "left", "bob", seconds=bad)
    with PreferenceStore(store_path, clock=clock) as store:
        assert [j.seconds for j in store.judgments()] == [2.5, 7.0, None]


def test_an_exclusive_answer_to_a_pair_someone_else_judged_is_refused(
    store: PreferenceStore, rng: np.random.Generator, filled: Filled
) -> None:
    seg = filled(store, rng)
    q1, q2 = store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]])
    store.add_judgment(q1, "left", "alice", exclusive=True)  # nobody had answered it
    with pytest.raises(JudgedMeanwhile, match=r"query \d+ was judged by 'alice' while it was"):
        store.add_judgment(q1, "right", "bob", exclusive=True)
    with pytest.raises(JudgedMeanwhile):  # a batch is refused whole
        store.add_judgments([(q2, "left"), (q1, "left")], "bob", exclusive=True)
    assert [(j.query_id, j.judge) for j in store.judgments()] == [(q1, "alice")]
    # a second opinion (--rejudge) is not exclusive: stored
    assert store.add_judgment(q1, "right", "bob") > 0
    assert store.add_judgment(q2, "equal", "bob", exclusive=True) > 0
