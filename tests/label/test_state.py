"""The labeling window's pure state: key maps, commands, effects, playback."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.judgments import Preference
from prefgym.label import (
    LOOP_PAUSE,
    POLL_SECONDS,
    SPEEDS,
    TRAINER_SECONDS,
    ChangeSpeed,
    Choose,
    Commit,
    CommitRanking,
    Committed,
    Failed,
    Fetch,
    LabelState,
    Mode,
    PairView,
    Pick,
    PollTrainer,
    Prefetch,
    Quit,
    Release,
    Renew,
    Revert,
    Reverted,
    Scroll,
    Shown,
    Submit,
    Tick,
    TogglePause,
    TrainerSeen,
    Undo,
    Unpick,
    apply,
    command_for_key,
    command_for_text,
    initial_state,
)

PAIR = PairView(query_id=7, number=3, length=10, kind="frames", fps=20.0)


def labeling(**changes: object) -> LabelState:
    """A state with PAIR on screen."""
    state = apply(initial_state(), Shown(PAIR, budget_left=5, pending=2))
    return replace(state, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- commands


def test_a_new_window_asks_for_a_pair() -> None:
    state = initial_state()
    assert state.mode is Mode.WAITING and state.effects == (Fetch(), PollTrainer())
    with pytest.raises(ValueError, match="speed must be one of"):
        initial_state(speed=1.3)
    with pytest.raises(ValueError, match="renew_every must be > 0 seconds, got 0"):
        initial_state(renew_every=0)


def test_shown_puts_the_pair_on_screen() -> None:
    state = labeling()
    assert state.mode is Mode.LABELING and state.pair == PAIR
    assert (state.budget_left, state.pending, state.frame) == (5, 2, 0)
    assert state.effects == (Prefetch(),)  # the next pair is loaded while this one is watched


def test_choose_asks_for_one_commit_and_waits_for_its_answer() -> None:
    state = apply(labeling(), Choose(Preference.RIGHT))
    assert state.effects == (Commit(7, Preference.RIGHT),) and state.busy
    again = apply(state, Choose(Preference.LEFT))  # a second key before the answer
    assert again.effects == () and again.busy
    done = apply(again, Committed(7, 41, Preference.RIGHT))
    assert done.mode is Mode.WAITING and done.pair is None and not done.busy
    assert done.effects == (Fetch(),)
    assert done.judged == 1 and done.history[-1].judgment_id == 41
    assert done.budget_left == 4 and done.message == "saved: right better on pair 7"


def test_choose_without_a_pair_does_nothing() -> None:
    state = apply(initial_state(), Choose(Preference.LEFT))
    assert state.effects == () and state.mode is Mode.WAITING


def test_undo_reverts_the_last_judgment_of_this_window() -> None:
    state = apply(initial_state(), Undo())
    assert "nothing to undo" in state.message and state.effects == ()
    state = apply(labeling(), Choose(Preference.LEFT))
    state = apply(state, Committed(7, 41, Preference.LEFT))
    state = apply(state, Shown(replace(PAIR, query_id=8), None, 0))
    state = apply(state, Undo())
    assert state.effects == (Revert(41),)
    state = apply(state, Reverted(41))
    assert state.history == () and state.undone == 1
    assert state.effects == (Fetch(),)
    assert state.message == "undid: left better on pair 7; it is back"


def test_a_failed_commit_keeps_or_drops_the_pair() -> None:
    state = apply(labeling(), Choose(Preference.LEFT))
    kept = apply(state, Failed("disk full"))
    assert kept.mode is Mode.LABELING and not kept.busy and kept.message == "disk full"
    dropped = apply(state, Failed("judged elsewhere", advance=True))
    assert dropped.mode is Mode.WAITING and dropped.effects == (Fetch(),)


def test_speed_steps_through_the_ladder_and_stops_at_its_ends() -> None:
    state = labeling()
    for _ in range(20):
        state = apply(state, ChangeSpeed(+1))
    assert state.speed == SPEEDS[-1]
    for _ in range(20):
        state = apply(state, ChangeSpeed(-1))
    assert state.speed == SPEEDS[0]


def test_scroll_stays_within_the_text() -> None:
    state = apply(labeling(), Scroll(5, limit=7))
    assert state.scroll == 5
    assert apply(state, Scroll(5, limit=7)).scroll == 7
    assert apply(state, Scroll(-50, limit=7)).scroll == 0


def test_quit_closes_and_releases_and_nothing_happens_after() -> None:
    state = apply(labeling(), Quit("window closed"))
    assert state.mode is Mode.CLOSED and state.quit_reason == "window closed"
    assert state.effects == (Release(),)
    after = apply(state, Choose(Preference.LEFT))
    assert after.effects == () and after.mode is Mode.CLOSED


def test_waiting_asks_again_every_poll_interval() -> None:
    state = apply(initial_state(), Shown(None, None, 0))
    state = apply(state, Tick(POLL_SECONDS / 2))
    assert state.effects == ()
    assert apply(state, Tick(POLL_SECONDS / 2)).effects == (Fetch(),)


# ---------------------------------------------------------------- playback


def test_plays_at_render_fps_times_speed() -> None:
    state = apply(labeling(), Tick(0.25))  # 20 steps/s
    assert state.frame == 5
    state = apply(apply(state, ChangeSpeed(+1)), Tick(0.1))  # 1.5x: 30 steps/s
    assert state.frame == 8


def test_the_last_frame_stays_up_for_a_pause_between_loops() -> None:
    state = apply(labeling(), Tick(0.5))  # exactly the clip's length
    assert state.frame == PAIR.length - 1 and state.hold == pytest.approx(LOOP_PAUSE)
    state = apply(state, Tick(LOOP_PAUSE / 2))
    assert state.frame == PAIR.length - 1
    state = apply(state, Tick(LOOP_PAUSE / 2 + 0.1))  # the loop starts again
    assert state.hold == 0 and state.frame == 2


def test_the_next_pair_is_loaded_as_soon_as_one_is_shown_and_asked_for_again() -> None:
    text = replace(PAIR, kind="text", length=1)
    assert apply(initial_state(), Shown(text, None, 0)).effects == (Prefetch(),)
    state = apply(labeling(), Tick(0.4))
    assert state.effects == ()
    state = apply(state, Tick(TRAINER_SECONDS))  # pairs may have come since: ask again
    assert state.effects == (PollTrainer(), Prefetch())
    waiting = apply(initial_state(), Tick(TRAINER_SECONDS))
    assert waiting.effects == (PollTrainer(), Fetch())


def test_leases_are_renewed_every_so_often_and_the_trainer_is_read() -> None:
    state = apply(initial_state(renew_every=5.0), Shown(PAIR, None, 0))
    renewals = 0
    for _ in range(60):  # 12 seconds
        state = apply(state, Tick(0.2))
        renewals += Renew() in state.effects
    assert renewals == 2
    state = apply(state, TrainerSeen("trainer waiting for you: 3 judgments"))
    assert state.trainer == "trainer waiting for you: 3 judgments"


def test_pause_stops_playback_and_a_new_pair_plays() -> None:
    state = apply(apply(labeling(), TogglePause()), Tick(0.3))
    assert state.paused and state.frame == 0
    state = apply(state, Shown(replace(PAIR, query_id=9), None, 0))
    assert not state.paused


def test_text_pairs_do_not_play() -> None:
    text = replace(PAIR, kind="text", length=1)
    state = apply(apply(initial_state(), Shown(text, None, 0)), Tick(3.0))
    assert state.frame == 0 and state.position == 0


def test_ticks_must_be_finite_and_not_negative() -> None:
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite number of seconds"):
            apply(labeling(), Tick(bad))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 0.4), min_size=1, max_size=20))
def test_ticks_compose(pieces: list[float]) -> None:
    """Playback depends on the time passed, not on how often the window looked."""
    whole = apply(labeling(), Tick(sum(pieces)))
    split = labeling()
    for seconds in pieces:
        split = apply(split, Tick(seconds))
    cycle = PAIR.length / PAIR.fps + LOOP_PAUSE

    def phase(state: LabelState) -> float:  # seconds into the current loop
        return state.position / PAIR.fps if state.hold == 0 else cycle - state.hold

    assert phase(split) == pytest.approx(phase(whole), abs=1e-6)
    assert 0 <= split.position < PAIR.length


# ---------------------------------------------------------------- rankings

RANKING = replace(PAIR, kind="text", length=1, size=4)


def test_a_ranking_is_picked_best_first_and_committed_when_complete() -> None:
    state = apply(initial_state(), Shown(RANKING, None, 0))
    assert state.mode is Mode.RANKING and "press the best" in state.message
    assert command_for_text(Mode.RANKING, "3") == Pick(2)
    assert command_for_key(Mode.RANKING, "backspace") == Unpick()
    assert command_for_key(Mode.RANKING, "left") is None  # no pair keys in a ranking
    state = apply(state, Pick(2))
    state = apply(state, Pick(2))
    assert state.order == (2,) and "ranked already" in state.message
    state = apply(state, Pick(7))
    assert state.order == (2,) and "press 1 to 4" in state.message
    state = apply(state, Pick(0))
    state = apply(state, Undo())  # takes back the last pick, not a judgment
    assert state.order == (2,) and state.effects == ()
    state = apply(state, Submit())
    assert state.effects == () and "rank 2 more" in state.message
    state = apply(state, Pick(3))
    state = apply(state, Pick(1))
    assert state.effects == () and "press the last one or enter" in state.message
    state = apply(state, Pick(0))  # the last key completes the ranking
    assert state.effects == (CommitRanking(7, (2, 3, 1, 0)),) and state.busy
    done = apply(state, Committed(7, 50, None, (2, 3, 1, 0)))
    assert done.message == "saved: ranked 3 > 4 > 2 > 1 on pair 7" and done.order == ()
    undone = apply(apply(done, Undo()), Reverted(50))
    assert undone.message == "undid: ranked 3 > 4 > 2 > 1 on pair 7; it is back"


def test_enter_commits_a_ranking_with_one_left() -> None:
    state = apply(initial_state(), Shown(replace(RANKING, size=3), None, 0))
    state = apply(apply(state, Pick(1)), Pick(0))
    assert state.effects == ()
    state = apply(state, Submit())  # the one left is the worst
    assert state.effects == (CommitRanking(7, (1, 0, 2)),)
    state = apply(initial_state(), Shown(replace(RANKING, size=3), None, 0))
    state = apply(apply(state, Pick(1)), Unpick())
    assert state.order == () and apply(state, Unpick()).message.startswith("nothing picked")
