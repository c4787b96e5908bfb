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
    LabelWindow,
    Mode,
    Tick,
    WindowSummary,
    run_window,
)
from prefgym.runs import RunDir, TrainConfig  # noqa: E402
from prefgym.segments import Segment  # noqa: E402
from prefgym.store import PreferenceStore  # noqa: E402
from tests.label.windows import SIZE, cartpole_segments, fill, key, panel_pixels, typed  # noqa: E402

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


def click(position: tuple[int, int], button: int = 1) -> object:
    return pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=position, button=button)


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
    window.handle_event(key(pygame.K_EQUALS))  # Shift+=: the key is "=", the text "+"
    window.handle_event(typed("+"))
    window.handle_event(key(pygame.K_KP_PLUS))
    window.handle_event(typed("+"))
    assert window.session.state.speed == 2.0 and preferences(window) == []
    window.handle_event(typed("-"))
    assert window.session.state.speed == 1.5
    first = state.pair
    window.handle_event(key(pygame.K_LEFT))
    window.handle_event(typed("u"))
    assert preferences(window) == [] and window.session.state.pair == first
    window.handle_event(typed("q"))
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
    window.handle_event(key(pygame.K_PAGEUP))
    assert window.session.state.scroll < limit
    assert window.draw()
    window.handle_event(key(pygame.K_RIGHT))
    assert preferences(window) == ["right"]


def test_run_window_plays_in_time_and_shows_the_next_pair_at_once(
    tmp_path: Path, framed: list[Segment]
) -> None:
    script = {0.5: key(pygame.K_LEFT), 1.0: key(pygame.K_RIGHT), 1.5: typed("q")}
    start = time.perf_counter()

    def on_frame(window: LabelWindow) -> None:
        for at in sorted(script):
            if time.perf_counter() - start >= at:
                pygame.event.post(script.pop(at))

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        fill(store, framed)
        summary = run_window(store, "alice", budget=10, size=SIZE, on_frame=on_frame)
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


def _free_display() -> int:
    for number in range(90, 200):
        if (
            not Path(f"/tmp/.X11-unix/X{number}").exists()
            and not Path(f"/tmp/.X{number}-lock").exists()
        ):
            return number
    raise RuntimeError("no free X display number between :90 and :199")


def _xdotool(display: str, *args: str) -> str:
    result = subprocess.run(
        ["xdotool", *args],
        env=dict(os.environ, DISPLAY=display),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@pytest.mark.xvfb
@pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Xvfb and xdotool (Debian: apt-get install -y xvfb xdotool)",
)
def test_a_real_window_under_xvfb(tmp_path: Path, framed: list[Segment]) -> None:
    from PIL import ImageGrab

    run = make_run(tmp_path, framed)
    display = f":{_free_display()}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    child: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        env = dict(os.environ, DISPLAY=display, SDL_VIDEODRIVER="x11", OMP_NUM_THREADS="1")
        child = subprocess.Popen(
            [sys.executable, "-m", "prefgym.cli", "label", str(run), "--labeler", "alice"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        window = _xdotool(display, "search", "--sync", "--classname", "prefgym").split()[0]
        _xdotool(display, "windowfocus", "--sync", window)
        geometry = _xdotool(display, "getwindowgeometry", "--shell", window).split()
        place = dict(line.split("=", 1) for line in geometry)
        x, y = int(place["X"]), int(place["Y"])
        _xdotool(display, "key", "Left")
        _xdotool(display, "mousemove", str(x + 900), str(y + 350), "click", "1")  # right panel
        _xdotool(display, "key", "u", "s", "equal", "plus", "plus")

        def judged() -> list[str]:
            with PreferenceStore(run / "store.sqlite") as store:
                return [j.preference.value for j in store.judgments(judge="alice") if j.preference]

        expected = ["left", "incomparable", "equal"]
        deadline = time.monotonic() + 20
        while judged() != expected:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, judged()
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
        _xdotool(display, "key", "q")
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert "alice judged 3 pair(s) in this window, 1 undone" in out
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        server.terminate()
        server.wait(timeout=10)
