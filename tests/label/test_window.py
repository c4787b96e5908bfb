"""The labeling window: events built by hand under SDL's dummy driver, and a real X window."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from prefgym.cli import main  # noqa: E402
from prefgym.judgments import Preference  # noqa: E402
from prefgym.label import (  # noqa: E402
    BACKGROUND,
    LabelWindow,
    Mode,
    Tick,
    WindowSummary,
    run_window,
)
from prefgym.runs import RunDir, TrainConfig  # noqa: E402
from prefgym.segments import Segment  # noqa: E402
from prefgym.store import PreferenceStore  # noqa: E402
from tests.label.windows import (  # noqa: E402
    SIZE,
    cartpole_segments,
    click,
    fill,
    key,
    label_process,
    needs_xvfb,
    panel_pixels,
    press,
    typed,
    xdotool,
    xvfb,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def framed() -> list[Segment]:
    return cartpole_segments(8, frames=True)


def text_segments(n: int) -> list[Segment]:
    return [
        Segment(
            np.zeros((1, 1)),
            np.zeros(1),
            np.full(1, float(i)),
            info={"prompt": "Tell a story. " * 10, "response": "Once upon a time. " * 60 * (i + 1)},
        )
        for i in range(n)
    ]


def preferences(window: LabelWindow) -> list[str]:
    return [j.preference.value for j in window.session.store.judgments() if j.preference]


# ------------------------------------------------------------- headless


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([key(pygame.K_LEFT)], "left"),
        ([key(pygame.K_RIGHT)], "right"),
        ([key(pygame.K_UP)], "equal"),
        ([key(pygame.K_EQUALS), typed("=")], "equal"),
        ([key(pygame.K_DOWN)], "incomparable"),
        ([key(pygame.K_s), typed("s")], "incomparable"),
    ],
)
def test_judging_keys_reach_the_store(
    open_window: Callable[..., LabelWindow],
    framed: list[Segment],
    events: list[object],
    expected: str,
) -> None:
    window = open_window(framed[:4])
    for event in events:  # a key, then the character it typed (as SDL sends them)
        window.handle_event(event)
    assert preferences(window) == [expected]
    assert window.session.state.pair is not None  # the next pair is on screen


def test_clicks_on_the_panels_choose(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed[:6])
    window.handle_event(click(window.panels["left"].center))
    window.handle_event(click(window.panels["right"].center, button=3))  # not the left button
    window.handle_event(click((SIZE[0] // 2, 5)))  # the header
    window.handle_event(click(window.panels["right"].center))
    assert preferences(window) == ["left", "right"]


def test_undo_pause_speed_and_quit_keys(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed[:6])
    state = window.session.state
    window.handle_event(key(pygame.K_SPACE))
    window.handle_event(typed(" "))  # space types a space too: it must not count twice
    assert window.session.state.paused
    window.handle_event(key(pygame.K_LSHIFT))
    window.handle_event(key(pygame.K_EQUALS, "+"))  # Shift+=: the key is "=", the text "+"
    window.handle_event(typed("+"))
    window.handle_event(key(pygame.K_KP_PLUS, "+"))
    window.handle_event(typed("+"))
    window.handle_event(key(pygame.K_RSHIFT))  # pressed while + is held: types nothing
    window.handle_event(typed("+"))  # typed again by the held key: auto-repeat, ignored
    assert window.session.state.speed == 2.0 and preferences(window) == []
    window.handle_event(typed("+"))  # typed again by the held key: auto-repeat, ignored
    assert window.session.state.speed == 2.0
    press(window, "-")
    assert window.session.state.speed == 1.5
    first = state.pair
    window.handle_event(key(pygame.K_LEFT))
    press(window, "u")
    assert preferences(window) == [] and window.session.state.pair == first
    assert (
        window.session.state.message == f"undid: left better on pair {first.query_id}; it is back"
    )
    press(window, "q")
    assert window.session.state.mode is Mode.CLOSED
    assert window.session.state.quit_reason == "quit key"


@pytest.mark.parametrize("event", [pygame.event.Event(pygame.QUIT), key(pygame.K_ESCAPE)])
def test_closing_the_window_or_escape_quits(
    open_window: Callable[..., LabelWindow], framed: list[Segment], event: object
) -> None:
    window = open_window(framed[:4])
    window.handle_event(event)
    assert window.session.state.mode is Mode.CLOSED


def test_draws_both_clips_and_redraws_only_on_change(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed[:4])
    assert window.draw() and not window.draw()
    for side in ("left", "right"):
        pixels = panel_pixels(window, side)
        assert (pixels.reshape(-1, 3) > 240).all(axis=1).mean() > 0.2  # CartPole's white sky
    window.session.handle(Tick(0.1))  # five steps on: another frame
    assert window.draw()


def test_text_pairs_are_wrapped_and_scroll(open_window: Callable[..., LabelWindow]) -> None:
    window = open_window(text_segments(2))
    assert window.draw()
    limit = window._scroll_limit()
    assert limit > 0
    window.handle_event(key(pygame.K_PAGEDOWN))
    assert window.session.state.scroll > 0
    window.handle_event(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=-100, flipped=False))
    assert window.session.state.scroll == limit
    assert window.draw()
    window.handle_event(key(pygame.K_PAGEUP))
    assert window.session.state.scroll < limit
    assert window.draw()
    window.handle_event(key(pygame.K_RIGHT))
    assert preferences(window) == ["right"]


def test_run_window_plays_in_time_and_shows_the_next_pair_at_once(
    tmp_path: Path, framed: list[Segment]
) -> None:
    script = {
        0.5: [key(pygame.K_LEFT)],
        1.0: [key(pygame.K_RIGHT)],
        1.5: [key(pygame.K_q), typed("q")],
    }
    start = time.perf_counter()

    def on_frame(window: LabelWindow) -> None:
        for at in sorted(script):
            if time.perf_counter() - start >= at:
                for event in script.pop(at):
                    pygame.event.post(event)

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        fill(store, framed)
        summary = run_window(
            store, "alice", budget=10, size=SIZE, on_frame=on_frame, max_seconds=20
        )
        assert [j.preference for j in store.judgments()] == [Preference.LEFT, Preference.RIGHT]
        assert store.claim_query("other") is not None  # its leases were given back
    assert isinstance(summary, WindowSummary)
    assert (summary.judged, summary.quit_reason) == (2, "quit key")
    assert summary.target_fps == 50.0  # CartPole's render_fps
    assert abs(summary.playback_fps - 50.0) < 12.5, summary  # a shared machine may lag
    assert summary.switch_ms_max < 250, summary  # typically well under 50 ms


def test_run_window_runs_on_an_injected_clock(tmp_path: Path, framed: list[Segment]) -> None:
    now = [100.0]

    def sleep(seconds: float) -> None:  # time passes only when the window waits
        now[0] += max(seconds, 1 / 120)

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        fill(store, framed[:4])
        started = time.perf_counter()
        summary = run_window(
            store, "alice", size=SIZE, clock=lambda: now[0], sleep=sleep, max_seconds=3.0
        )
    assert summary.quit_reason == "time limit" and summary.seconds == pytest.approx(3.0, abs=0.02)
    assert summary.playback_fps == pytest.approx(50.0, rel=0.1)
    assert time.perf_counter() - started < 3.0  # three seconds of clips, without the wait


def test_ctrl_c_closes_cleanly(tmp_path: Path, framed: list[Segment]) -> None:
    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        fill(store, framed[:4])
        summary = run_window(store, "alice", size=SIZE, sleep=sleep)
        assert summary.quit_reason == "interrupted"
        assert store.claim_query("other") is not None


def make_run(tmp_path: Path, segments: list[Segment]) -> Path:
    config = TrainConfig(oracle="human", labels=12, labeler="alice")
    run = RunDir.create(tmp_path / "run", {"train": asdict(config)})
    with PreferenceStore(run.store) as store:
        fill(store, segments)
    return run.path


def leased(path: Path) -> int:
    with sqlite3.connect(path / "store.sqlite") as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM queries WHERE lease_owner IS NOT NULL").fetchone()[0]
        )


def test_cli_label_closes_cleanly_on_sigint(tmp_path: Path, framed: list[Segment]) -> None:
    run = make_run(tmp_path, framed[:4])
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "prefgym.cli", "label", str(run)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while leased(run) < 2:  # the pair on screen and the next one
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert "alice judged 0 pair(s)" in out and "interrupted" in out
    assert leased(run) == 0


def test_cli_label_needs_a_run_or_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["label", str(tmp_path / "nowhere")]) == 2
    assert "neither a run directory nor a store file" in capsys.readouterr().err


# ------------------------------------------------------------- a real window


@pytest.mark.xvfb
@needs_xvfb
def test_a_real_window_under_xvfb(tmp_path: Path, framed: list[Segment]) -> None:
    from PIL import ImageGrab

    run = make_run(tmp_path, framed)
    with xvfb() as display, label_process(display, str(run), "--labeler", "alice") as (child, wid):
        geometry = xdotool(display, "getwindowgeometry", "--shell", wid).split()
        place = dict(line.split("=", 1) for line in geometry)
        x, y = int(place["X"]), int(place["Y"])
        xdotool(display, "key", "Left")
        xdotool(display, "mousemove", str(x + 900), str(y + 350), "click", "1")  # right panel
        xdotool(display, "key", "u", "s", "equal", "plus", "plus")

        expected = ["left", "incomparable", "equal"]
        deadline = time.monotonic() + 20
        while judged(run) != expected:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, judged(run)
            time.sleep(0.05)
        time.sleep(0.6)  # let a few frames play
        shot = ImageGrab.grab(xdisplay=display).crop((x, y, x + 1200, y + 760))
        path = tmp_path / "window.png"
        shot.save(path)
        if os.environ.get("PREFGYM_SCREENSHOT"):
            shutil.copy(path, os.environ["PREFGYM_SCREENSHOT"])
        pixels = np.asarray(shot.convert("RGB"))
        for left in (16, 616):  # both panels drawn: CartPole's white sky in each
            panel = pixels[100:600, left : left + 560]
            assert (panel > 240).all(axis=-1).mean() > 0.2
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank
        xdotool(display, "key", "q")
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert "alice judged 3 pair(s) in this window, 1 undone" in out


def judged(run: Path, judge: str = "alice") -> list[str]:
    with PreferenceStore(run / "store.sqlite") as store:
        return [j.preference.value for j in store.judgments(judge=judge) if j.preference]


@pytest.mark.xvfb
@needs_xvfb
def test_a_held_key_answers_once(tmp_path: Path, framed: list[Segment]) -> None:
    run = make_run(tmp_path, framed + cartpole_segments(8, frames=True, length=5))
    with xvfb() as display, label_process(display, str(run), "--labeler", "alice") as (child, wid):
        for name, seconds in (("s", 1.5), ("Left", 1.0), ("equal", 1.0), ("u", 1.0)):
            xdotool(display, "keydown", name)
            time.sleep(seconds)  # X repeats the key about 25 times a second after 0.6 s
            xdotool(display, "keyup", name)
            time.sleep(0.2)
        xdotool(display, "key", "q")
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
    # one answer per held key; the held u undid the last one only
    assert judged(run) == ["incomparable", "left"], out
    assert "alice judged 2 pair(s) in this window, 1 undone" in out


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("640x480", "window size 640x480 is below the minimum 800x600"),
        ("wide", "WIDTHxHEIGHT in pixels (at least 800x600, e.g. 1200x760), got 'wide'"),
    ],
)
def test_cli_label_refuses_a_bad_size(
    tmp_path: Path,
    framed: list[Segment],
    capsys: pytest.CaptureFixture[str],
    size: str,
    message: str,
) -> None:
    run = make_run(tmp_path, framed[:4])
    assert main(["label", str(run), "--size", size]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prefgym: error: ") and message in err and len(err.splitlines()) == 1


def test_every_task_tells_a_person_what_better_means() -> None:
    from prefgym.envs.registration import ALL_ENVS
    from prefgym.runs._control import task_instructions
    from prefgym.text import TASKS

    for env in ALL_ENVS:
        text = task_instructions(env.id)
        criterion, _, rubric = text.partition("\n")
        assert criterion.startswith("which ") and criterion.endswith("?"), env.id
        if env.family == "text":
            assert rubric == TASKS[env.kwargs["task"]].rubric(), env.id
        else:
            assert rubric == "", env.id
    assert task_instructions("prefgym/Unknown-v0") == ""


def test_the_instructions_are_shown_above_the_clips(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed[:4])
    window.instructions = "which cart keeps its pole upright?\nThe pole falling counts against."
    window.resize(SIZE)
    assert window.draw()
    (first, criterion, _), (second, rubric, _) = window.layout.instructions
    assert (first, second) == (
        "which cart keeps its pole upright?",
        "The pole falling counts against.",
    )
    assert criterion.bottom <= rubric.y and rubric.bottom <= window.panels["left"].top
    pixels = pygame.surfarray.array3d(window.screen)
    for box in (criterion, rubric):
        region = pixels[box.x : box.right, box.y : box.bottom].reshape(-1, 3)
        assert (region != np.array(BACKGROUND)).any(axis=1).mean() > 0.02  # letters drawn


def test_run_window_shows_the_trainers_status(tmp_path: Path) -> None:
    shown: list[str] = []

    def on_frame(window: LabelWindow) -> None:
        shown.append(window.session.state.trainer)
        if len(shown) == 3:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        run_window(store, "alice", size=SIZE, on_frame=on_frame)
        assert shown[-1] == "no trainer has run on this store"
        store.beat("waiting", waiting_for=3)
        shown.clear()
        run_window(store, "alice", size=SIZE, on_frame=on_frame)
        assert shown[-1] == "trainer waiting for you: 3 judgments"
