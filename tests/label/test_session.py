"""The labeling session against a real store: commits, undo, leases, resume, clips."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import prefgym  # noqa: F401  (registers the environments)
from prefgym.judgments import Preference
from prefgym.label import (
    Choose,
    LabelingSession,
    Mode,
    PairFeed,
    Quit,
    Tick,
    Undo,
    command_for_key,
    command_for_text,
)
from prefgym.store import PreferenceStore

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import FakeClock, Filled, SegmentFactory

Fill = Callable[[PreferenceStore, int], list[int]]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fill(filled: Filled, rng: np.random.Generator) -> Fill:
    """``fill(store, n_pairs)``: pair queries on fresh segments with frames; their ids."""

    def fill(store: PreferenceStore, n_pairs: int) -> list[int]:
        ids = filled(store, rng, 2 * n_pairs, frames=True)
        return store.add_queries([(ids[2 * i], ids[2 * i + 1]) for i in range(n_pairs)])

    return fill


@pytest.fixture
def other_store(store: PreferenceStore, clock: FakeClock) -> Iterator[PreferenceStore]:
    """A second connection to ``store``'s file (another window), on the same clock."""
    with PreferenceStore(store.path, clock=clock) as other:
        yield other


def session(store: PreferenceStore, labeler: str = "alice", **kwargs: object) -> LabelingSession:
    return LabelingSession(store, labeler, **kwargs)  # type: ignore[arg-type]


def shown(s: LabelingSession) -> int:
    assert s.state.pair is not None
    return s.state.pair.query_id


# ------------------------------------------------------------ into the store

JUDGING_KEYS = [  # (named key, typed character, preference)
    ("left", "", Preference.LEFT),
    ("right", "", Preference.RIGHT),
    ("up", "", Preference.EQUAL),
    ("", "=", Preference.EQUAL),
    ("down", "", Preference.INCOMPARABLE),
    ("", "s", Preference.INCOMPARABLE),
]


def test_every_judging_key_is_committed_at_once(store: PreferenceStore, fill: Fill) -> None:
    queries = fill(store, len(JUDGING_KEYS))
    s = session(store)
    try:
        for (name, text, preference), query_id in zip(JUDGING_KEYS, queries, strict=True):
            assert shown(s) == query_id
            mode = s.state.mode
            command = command_for_key(mode, name) if name else command_for_text(mode, text)
            assert command is not None
            s.handle(command)
            with PreferenceStore(store.path) as other:  # another connection sees it at once
                latest = other.judgments(judge="alice")[-1]
            assert (latest.query_id, latest.preference) == (query_id, preference)
        assert s.state.mode is Mode.WAITING and s.state.judged == len(JUDGING_KEYS)
    finally:
        s.close()


def test_shows_the_budget_the_pair_number_and_what_is_waiting(
    store: PreferenceStore, fill: Fill
) -> None:
    fill(store, 4)
    s = session(store, budget=10)
    assert s.state.pair is not None and s.state.pair.number == 1
    assert (s.state.budget_left, s.state.pending) == (10, 3)
    s.handle(Choose(Preference.LEFT))
    assert s.state.pair is not None and s.state.pair.number == 2
    assert (s.state.budget_left, s.state.pending) == (9, 2)
    s.close()


def test_undo_deletes_the_judgment_and_shows_the_pair_again(
    store: PreferenceStore, fill: Fill
) -> None:
    first, second, _ = fill(store, 3)
    s = session(store)
    s.handle(Choose(Preference.LEFT))
    assert shown(s) == second and store.n_judgments() == 1
    s.handle(Undo())
    assert store.n_judgments() == 0 and shown(s) == first
    assert s.state.undone == 1 and s.state.judged == 0
    s.handle(Choose(Preference.RIGHT))
    s.handle(Undo())  # undo works while waiting for the next pair too
    s.handle(Undo())
    assert "nothing to undo" in s.state.message
    s.handle(Choose(Preference.EQUAL))
    assert [j.preference for j in store.judgments()] == [Preference.EQUAL]
    s.close()


def test_the_next_pair_is_loaded_as_soon_as_one_is_shown(
    store: PreferenceStore, fill: Fill
) -> None:
    first, second, third = fill(store, 3)
    s = session(store)
    ready = s.feed.ready
    assert shown(s) == first and ready is not None and ready.query.id == second
    s.defer_prefetch = True  # a window: load the next pair once this one is drawn
    s.handle(Choose(Preference.LEFT))
    assert s.pair is not None and s.pair.query is ready.query  # its clips built meanwhile
    assert shown(s) == second and s.feed.ready is None
    s.run_deferred()
    assert s.feed.ready is not None and s.feed.ready.query.id == third
    s.close()


def test_waits_for_pairs_and_shows_them_as_they_arrive(store: PreferenceStore, fill: Fill) -> None:
    s = session(store)
    assert s.state.mode is Mode.WAITING
    (query,) = fill(store, 1)
    s.handle(Tick(0.6))  # the next poll finds it
    assert shown(s) == query
    s.close()


# ---------------------------------------------------------------- leases


def test_two_windows_never_show_the_same_pair(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill
) -> None:
    fill(store, 6)
    a = session(store, "alice")
    b = session(other_store, "bob")
    seen_a, seen_b = [], []
    for _ in range(3):
        seen_a.append(shown(a))
        seen_b.append(shown(b))
        assert seen_a[-1] != seen_b[-1]
        a.handle(Choose(Preference.LEFT))
        b.handle(Choose(Preference.RIGHT))
    assert not set(seen_a) & set(seen_b)
    assert store.n_judgments() == 6 and len(store.pending_queries()) == 0
    a.close()
    b.close()


def test_quitting_gives_the_pairs_back_at_once(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill
) -> None:
    first, second, third = fill(store, 3)
    a = session(store, "alice")
    a.handle(Tick(1.0))  # the clips played once: the second pair is prefetched
    b = session(other_store, "bob")
    assert shown(a) == first and shown(b) == third
    b.handle(Choose(Preference.LEFT))
    assert b.state.mode is Mode.WAITING
    a.handle(Quit())
    b.handle(Tick(0.6))
    assert shown(b) == first
    b.close()


def test_a_crashed_windows_pair_comes_back_when_its_lease_ends(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    first, second = fill(store, 2)
    a = session(store, "alice", lease_seconds=60)  # never closed: it "crashed"
    a.handle(Tick(1.0))  # ... after prefetching the second pair
    b = session(other_store, "bob", lease_seconds=60)
    assert shown(a) == first and b.state.mode is Mode.WAITING
    clock.now += 61
    b.handle(Tick(0.6))
    assert shown(b) == first


def test_a_pair_judged_elsewhere_meanwhile_is_dropped(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    first, second = fill(store, 2)
    a = session(store, "alice", lease_seconds=10)
    clock.now += 11  # alice went for coffee; the lease ended
    b = session(other_store, "alice", lease_seconds=10)  # her second window
    assert shown(b) == first
    b.handle(Choose(Preference.LEFT))
    a.handle(Choose(Preference.RIGHT))
    assert "already judged" in a.state.message
    assert a.state.mode is Mode.WAITING  # the second pair is on her other window
    assert [j.preference for j in store.judgments()] == [Preference.LEFT]


def test_rejudge_shows_pairs_that_others_judged(store: PreferenceStore, fill: Fill) -> None:
    queries = fill(store, 2)
    store.add_judgments([(q, "left") for q in queries], "oracle")
    assert session(store, "bob").state.mode is Mode.WAITING
    s = session(store, "carol", rejudge=True)
    assert shown(s) == queries[0]
    s.handle(Choose(Preference.RIGHT))
    s.handle(Choose(Preference.LEFT))
    assert store.n_judgments(judge="carol") == 2 and s.state.mode is Mode.WAITING
    s.close()


def test_rankings_are_ranked_by_position_and_stored_as_segment_ids(
    store: PreferenceStore, rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
    ids = store.add_segments([make_segment(rng) for _ in range(6)])
    ranking, pair = store.add_queries([ids[:4], ids[4:]])
    s = session(store)
    assert shown(s) == ranking and s.state.mode is Mode.RANKING and s.pair is not None
    assert len(s.pair.clips) == 4
    for text in "3142":
        s.handle(command_for_text(s.state.mode, text))  # type: ignore[arg-type]
    (judgment,) = store.judgments(judge="alice")
    assert judgment.order == (ids[2], ids[0], ids[3], ids[1])
    assert judgment.seconds is not None and judgment.seconds >= 0
    assert shown(s) == pair and s.state.mode is Mode.LABELING
    s.close()


# ------------------------------------------------------------ kill and resume

WINDOW_IN_A_PROCESS = textwrap.dedent(
    """
    import sys
    from prefgym.label._session import LabelingSession
    from prefgym.judgments import Preference
    from prefgym.label._state import Choose, Tick
    from prefgym.store._store import PreferenceStore

    with PreferenceStore(sys.argv[1]) as store:
        session = LabelingSession(store, "alice")
        for line in sys.stdin:
            session.handle(Tick(1.0))
            session.handle(Choose(Preference.LEFT))
            print(session.state.judged, flush=True)
        session.close()
    """
)


def test_judgments_are_seen_by_other_processes_at_once(store_path: Path, fill: Fill) -> None:
    """Readers that come and go (a trainer, a report) see each judgment before the window closes."""
    with PreferenceStore(store_path) as store:
        fill(store, 4)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-c", WINDOW_IN_A_PROCESS, str(store_path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for n in range(1, 4):
            child.stdin.write("judge\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == str(n)
            with PreferenceStore(store_path) as reader:  # a fresh connection each time
                assert reader.n_judgments(judge="alice") == n
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    assert child.returncode == 0


KILLED_WINDOW = textwrap.dedent(
    """
    import os, signal, sys
    from prefgym.label._session import LabelingSession
    from prefgym.judgments import Preference
    from prefgym.label._state import Choose, Tick
    from prefgym.store._store import PreferenceStore

    store = PreferenceStore(sys.argv[1])
    session = LabelingSession(store, "alice", lease_seconds=float(sys.argv[2]))
    for preference in ("left", "right", "equal"):
        session.handle(Choose(Preference(preference)))
    session.handle(Tick(1.0))  # the pause after the first loop: the next pair is prefetched
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_window_loses_nothing_and_reopening_resumes(store_path: Path, fill: Fill) -> None:
    with PreferenceStore(store_path) as store:
        queries = fill(store, 8)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WINDOW, str(store_path), "2"], env=env, capture_output=True
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    with PreferenceStore(store_path) as store:
        judged = store.judgments(judge="alice")
        assert [j.query_id for j in judged] == queries[:3]
        assert [j.preference.value for j in judged if j.preference] == ["left", "right", "equal"]
        assert list(store.lease_owners().values()) == [queries[3:5]]  # the dead window's
        bob = session(store, "bob")  # another labeler's window leaves them alone
        assert shown(bob) == queries[5]
        s = session(store)
        assert shown(s) == queries[3]  # ... and their labeler gets them back at once
        s.handle(Choose(Preference.LEFT))
        assert shown(s) == queries[4]
        s.close()
        bob.close()


def test_feed_rejects_a_bad_fps(store: PreferenceStore) -> None:
    with pytest.raises(ValueError, match="fps must be > 0, got 0"):
        PairFeed(store, "w", fps=0)
    with pytest.raises(ValueError, match="labeler must be a non-empty name"):
        LabelingSession(store, "")


# ------------------------------------------------------------ a scripted person

SCRIPTED_PERSON = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from prefgym.label._session import LabelingSession
    from prefgym.judgments import Preference
    from prefgym.label._state import Choose, Tick
    from prefgym.store._store import PreferenceStore

    path, stop, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(seed)
    while not os.path.exists(path):  # the trainer creates the store
        time.sleep(0.05)
    with PreferenceStore(path) as store:
        session = LabelingSession(store, "scripted")
        last = time.monotonic()
        thinking = rng.uniform(0.02, 0.2)
        while not os.path.exists(stop):
            time.sleep(0.02)
            now = time.monotonic()
            session.handle(Tick(now - last))
            last = now
            pair = session.pair
            if pair is None:
                continue
            thinking -= 0.02
            if thinking > 0:
                continue
            left, right = store.get_segments(pair.query.segment_ids, frames=False)
            gap = left.true_return - right.true_return
            better = "equal" if abs(gap) < 1e-9 else "left" if gap > 0 else "right"
            session.handle(Choose(Preference(better)))
            thinking = rng.uniform(0.02, 0.2)  # looks at the next pair for a while
        session.close()
    """
)


STEPS = 20_000


def random_true_return() -> float:
    from prefgym.segments import make_vector_env, random_policy, rollout_segments

    env = make_vector_env("prefgym/CartPole-v1", 4)
    env.action_space.seed(0)
    segments = rollout_segments(env, random_policy(env.action_space), 4, 500, seed=0)
    return float(np.mean([s.true_return for s in segments]))


def train_with_a_scripted_person(out: Path, seed: int) -> tuple[float, list[dict[str, float]]]:
    from prefgym.runs import TrainConfig, evaluate, read_metrics, train

    out.mkdir(parents=True)
    stop = out / "stop"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    person = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPTED_PERSON,
            str(out / "run" / "store.sqlite"),
            str(stop),
            str(seed),
        ],
        env=env,
    )
    try:
        config = TrainConfig(
            oracle="human",
            labels=50,
            steps=STEPS,
            round_steps=2_500,
            seed=seed,
            labeler="scripted",
        )
        run = train(config, out / "run", show_progress=False)
    finally:
        stop.touch()
        person.wait(timeout=60)
    assert person.returncode == 0
    return evaluate(run, episodes=10)["true_return_mean"], read_metrics(run.metrics)


def test_a_scripted_person_in_another_process_trains_cartpole(tmp_path: Path) -> None:
    """The loop with oracle="human" learns from judgments that arrive late, through the store."""
    trained, rows = train_with_a_scripted_person(tmp_path / "seed1", seed=1)
    judged = [row["labels_judged"] for row in rows]
    assert judged == sorted(judged) and judged[0] < judged[-1]  # they kept coming
    random = random_true_return()  # about 280
    assert trained >= 350 and trained >= random + 70, (trained, random, judged)


@pytest.mark.slow
def test_a_scripted_person_trains_cartpole_on_more_seeds(tmp_path: Path) -> None:
    returns = [train_with_a_scripted_person(tmp_path / f"seed{s}", seed=s)[0] for s in (0, 2, 3)]
    assert min(returns) >= 350 and np.mean(returns) >= 400, returns


# ------------------------------------------------- leases, renewal, judged meanwhile


def test_a_slow_person_keeps_the_pair_on_screen(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    first, second, third = fill(store, 3)
    a = session(store, "alice", lease_seconds=2.0, clock=clock)
    for _ in range(20):  # 10 s of looking, five leases long: renewed every 2/3 s
        clock.now += 0.5
        a.handle(Tick(0.5))
    b = session(other_store, "bob", lease_seconds=2.0)
    assert shown(a) == first and shown(b) == third  # the pair and the one loaded ahead kept
    a.handle(Choose(Preference.LEFT))
    (judgment,) = store.judgments(judge="alice")
    assert judgment.seconds == pytest.approx(10.0)
    a.close()
    b.close()


def test_a_pair_judged_by_someone_else_meanwhile_is_not_stored(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    first, second = fill(store, 2)
    a = session(store, "alice", lease_seconds=2.0)  # its renewals never run: it froze
    clock.now += 3
    b = session(other_store, "bob", lease_seconds=2.0)
    assert shown(a) == first and shown(b) == first  # alice's lease lapsed
    b.handle(Choose(Preference.RIGHT))
    a.handle(Choose(Preference.LEFT))
    assert a.state.message == f"pair {first} was judged by someone else meanwhile; next pair"
    assert [(j.judge, j.preference) for j in store.judgments()] == [("bob", Preference.RIGHT)]
    assert a.state.mode is Mode.WAITING  # the second pair is bob's, loaded ahead
    carol = session(store, "carol", rejudge=True)  # a second opinion is still asked for so
    assert shown(carol) == first
    carol.handle(Choose(Preference.LEFT))
    assert store.n_judgments(judge="carol") == 1
    for s in (a, b, carol):
        s.close()


def test_a_renewal_that_finds_the_pair_taken_moves_on(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    (first,) = fill(store, 1)
    a = session(store, "alice", lease_seconds=3.0)
    clock.now += 4  # alice's window stalled past its lease
    b = session(other_store, "bob", lease_seconds=3.0)
    assert shown(b) == first
    a.handle(Tick(1.0))  # a third of the lease: renew, and find it taken
    assert a.state.mode is Mode.WAITING
    assert a.state.message == f"pair {first} was taken by another window; next"
    a.close()
    b.close()


def test_two_slow_people_with_short_leases_never_answer_one_pair_twice(
    store: PreferenceStore, other_store: PreferenceStore, fill: Fill, clock: FakeClock
) -> None:
    fill(store, 6)
    a = session(store, "alice", lease_seconds=2.0)
    b = session(other_store, "bob", lease_seconds=2.0)
    for step in range(120):  # each looks 5 s at a pair, longer than the lease
        clock.now += 0.25
        for s, offset in ((a, 0), (b, 9)):
            s.handle(Tick(0.25))
            if (step + offset) % 20 == 19 and s.state.pair is not None:
                s.handle(Choose(Preference.LEFT))
    judged = [j.query_id for j in store.judgments()]
    assert len(judged) == 6 and len(set(judged)) == 6
    a.close()
    b.close()


def test_a_pair_shows_its_stored_frames_at_once_and_its_sharp_replay_when_ready(
    store: PreferenceStore,
) -> None:
    """A quick answer never waits for a replay; the full-size clips arrive a moment later."""
    import time

    from prefgym.segments import make_vector_env, random_policy, rollout_segments

    env = make_vector_env("prefgym/CartPole-v1", 2, frames=True, replayable=True)
    env.action_space.seed(0)
    segments = rollout_segments(
        env, random_policy(env.action_space), 4, 6, seed=1, frames=True, frame_stride=3
    )
    env.close()
    ids = store.add_segments(segments)
    store.add_queries([(ids[0], ids[1]), (ids[2], ids[3])])
    s = session(store)
    pair = s.pair
    assert pair is not None and pair.version == 0 and pair.sharper is not None
    assert pair.left.frames is not None and pair.left.frames.shape[1:] == (134, 200, 3)
    deadline = time.monotonic() + 30
    while s.pair is not None and s.pair.sharper is not None:  # the loader thread replays
        assert time.monotonic() < deadline
        s.sharpen()
        time.sleep(0.01)
    sharp = s.pair
    assert sharp is not None and sharp.version == 1 and sharp.query is pair.query
    assert sharp.left.frames is not None and sharp.left.frames.shape[1:] == (400, 600, 3)
    assert "re-simulated" in sharp.left.note
    s.handle(Choose(Preference.LEFT))  # the next pair came with its own replay under way
    assert s.pair is not None and s.pair.query.id != pair.query.id
    s.close()
