"""What an arcade game is: its rules behind one small interface, drawn into an 84x84 canvas.

:mod:`prefgym.envs.arcade_games` holds the games; :mod:`prefgym.envs.arcade` the
Gymnasium environment that plays any of them.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import numpy as np

SIZE = 84
"""Height and width of a frame."""


def fill_rect(canvas: np.ndarray, x: float, y: float, w: int, h: int, level: int) -> None:
    """Paint the ``w`` x ``h`` rectangle with top-left corner ``(x, y)``, clipped to the canvas."""
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = min(x0 + w, SIZE), min(y0 + h, SIZE)
    x0, y0 = max(x0, 0), max(y0, 0)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = level


class ArcadeGame(abc.ABC):
    """The rules of one game: state, one frame of play, and how it looks."""

    actions: ClassVar[tuple[str, ...]]
    """Names of the actions, in the order of the Discrete action space."""
    colors: ClassVar[dict[int, tuple[int, int, int]]]
    """RGB colour of each gray level the game draws, for ``render()``."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        """Source of the game's randomness; the env hands in its ``np_random`` at reset."""

    def reset(self, rng: np.random.Generator) -> None:
        """Start a new game drawing its randomness from ``rng``."""
        self.rng = rng
        self._reset()

    @abc.abstractmethod
    def _reset(self) -> None:
        """Set up a new game."""

    @abc.abstractmethod
    def step(self, action: int) -> float:
        """Play one frame with ``action``; returns the points scored (the true reward)."""

    @abc.abstractmethod
    def expert(self) -> int:
        """A hand-written policy that reads the state: the reference a learner should approach."""

    @abc.abstractmethod
    def draw(self, canvas: np.ndarray) -> None:
        """Draw the state into ``canvas`` ``(84, 84)`` uint8, which holds zeros."""
