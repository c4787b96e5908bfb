"""What the labeling-window tests share: CartPole pairs in a store, key events, panel pixels
and :class:`Windows`, which opens windows on fresh stores and closes them all.

Import as ``from tests.label.windows import ...``; importing it skips the importing module
when pygame is missing. The ``open_window`` fixture built on it is in ``tests/label/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
pygame = pytest.importorskip("pygame")

from prefgym.label import LabelingSession, LabelWindow  # noqa: E402
from prefgym.segments import Segment, make_vector_env, random_policy, rollout_segments  # noqa: E402
from prefgym.store import PreferenceStore  # noqa: E402

SIZE = (900, 600)
"""The size of the windows that ``open_window`` opens."""


def cartpole_segments(n: int, frames: bool, length: int = 20) -> list[Segment]:
    """``n`` CartPole segments of a random policy (seed 0), with frames or without."""
    env = make_vector_env("prefgym/CartPole-v1", 2, frames=frames)
    env.action_space.seed(0)
    segments = rollout_segments(
        env, random_policy(env.action_space), n, length, seed=0, frames=frames
    )
    env.close()
    return segments


def fill(store: PreferenceStore, segments: list[Segment]) -> list[int]:
    """Adds ``segments`` and a pair query for each two of them in turn; the queries' ids."""
    ids = store.add_segments(segments)
    return store.add_queries([(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)])


def key(code: int, text: str | None = None) -> object:
    """A key press with no modifier; ``text`` (default: the key's character, if printable)
    is what pygame puts in ``unicode``: the character the key will type."""
    if text is None:
        text = chr(code) if 32 < code < 127 else ""
    return pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode=text)


def typed(text: str) -> object:
    """The text a key press typed."""
    return pygame.event.Event(pygame.TEXTINPUT, text=text)


def press(window: LabelWindow, text: str) -> None:
    """A key press that types ``text``, as SDL sends it: the key, then the character."""
    window.handle_event(key(pygame.key.key_code(text), text))
    window.handle_event(typed(text))


def click(position: tuple[int, int], button: int = 1) -> object:
    """A mouse button pressed at ``position``."""
    return pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=position, button=button)


def panel_pixels(window: LabelWindow, side: str) -> np.ndarray:
    """The pixels of the ``side`` panel on the window's screen, ``(width, height, 3)``."""
    pixels = pygame.surfarray.array3d(window.screen)  # (width, height, 3)
    rect = window.panels[side]
    return pixels[rect.left : rect.right, rect.top : rect.bottom]


class Windows:
    """Labeling windows for ``alice``, each on a fresh store in ``folder``, closed together."""

    def __init__(self, folder: Path, size: tuple[int, int]) -> None:
        self.folder = folder
        self.size = size
        self.opened: list[tuple[PreferenceStore, LabelingSession, LabelWindow]] = []

    def open(self, fill: Callable[[PreferenceStore], object], **kwargs: object) -> LabelWindow:
        """A window on a new store that ``fill`` filled; ``kwargs`` go to the session."""
        store = PreferenceStore(self.folder / f"store{len(self.opened)}.sqlite")
        fill(store)
        session = LabelingSession(store, "alice", **kwargs)  # type: ignore[arg-type]
        window = LabelWindow(session, size=self.size)
        self.opened.append((store, session, window))
        return window

    def close(self) -> None:
        """Closes every session, window and store opened, in the order they were opened."""
        for store, session, window in self.opened:
            session.close()
            window.close()
            store.close()


# ------------------------------------------------------------- a real X server

needs_xvfb = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Xvfb and xdotool (Debian: apt-get install -y xvfb xdotool)",
)
"""Marks a test that opens a real window under Xvfb and presses keys with xdotool."""


def _free_display() -> int:
    for number in range(90, 200):
        if (
            not Path(f"/tmp/.X11-unix/X{number}").exists()
            and not Path(f"/tmp/.X{number}-lock").exists()
        ):
            return number
    raise RuntimeError("no free X display number between :90 and :199")


@contextlib.contextmanager
def xvfb(size: str = "1280x800") -> Iterator[str]:
    """A virtual X server of ``size`` for the duration; yields its display name (``:91``)."""
    display = f":{_free_display()}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


def xdotool(display: str, *args: str) -> str:
    """Runs ``xdotool ARGS`` on ``display``; its output."""
    result = subprocess.run(
        ["xdotool", *args],
        env=dict(os.environ, DISPLAY=display),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@contextlib.contextmanager
def label_process(display: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``prefgym label ARGS`` on ``display``; yields the process and its focused window's id.

    The process is killed at the end if it is still running.
    """
    env = dict(os.environ, DISPLAY=display, SDL_VIDEODRIVER="x11", OMP_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "prefgym.cli", "label", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        found = xdotool(
            display, "search", "--sync", "--all", "--pid", str(child.pid), "--classname", "prefgym"
        )
        window = found.split()[0]
        xdotool(display, "windowfocus", "--sync", window)
        yield child, window
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)
