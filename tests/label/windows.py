"""What the labeling-window tests share: CartPole pairs in a store, key events, panel pixels
and :class:`Windows`, which opens windows on fresh stores and closes them all.

Import as ``from tests.label.windows import ...``; importing it skips the importing module
when pygame is missing. The ``open_window`` fixture built on it is in ``tests/label/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


def key(code: int) -> object:
    """A key press with no modifier and no text."""
    return pygame.event.Event(pygame.KEYDOWN, key=code, mod=0, unicode="")


def typed(text: str) -> object:
    """The text a key press typed."""
    return pygame.event.Event(pygame.TEXTINPUT, text=text)


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
