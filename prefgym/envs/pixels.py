"""Pixel plumbing shared by the arcade games and Atari: frame stacks and the human window.

A frame stack keeps the last ``depth`` grayscale frames channel-last, oldest
first, as Stable-Baselines3's ``CnnPolicy`` and the CNN reward model read them.
For depths of 1, 2, 4 or 8 the frames of a pixel are the bytes of one unsigned
integer, so dropping the oldest frame is a single shift of the whole image
rather than a copy per channel. The window (pygame) is opened only for
``render_mode="human"``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_PACKED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
"""Stack depths whose frames pack into one unsigned integer per pixel."""


class FrameStack:
    """The last ``depth`` frames ``(H, W)`` as one uint8 array ``(H, W, depth)``, oldest first.

    Draw the newest frame into :attr:`canvas` (a view) after :meth:`advance`,
    which drops the oldest frame and blanks the newest slot to 0.
    """

    def __init__(self, height: int, width: int, depth: int) -> None:
        """Create a stack of ``depth`` blank frames of ``height`` x ``width`` pixels."""
        if depth < 1:
            raise ValueError(f"frame stack depth must be >= 1, got {depth}")
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {height}x{width}")
        self.depth = depth
        self.frames = np.zeros((height, width, depth), dtype=np.uint8)
        """The stack ``(H, W, depth)``; channel ``depth - 1`` is the newest frame."""
        self._packed: np.ndarray | None = None
        if depth in _PACKED and sys.byteorder == "little":
            self._packed = self.frames.view(_PACKED[depth]).reshape(height, width)
        self.canvas = self.frames[..., depth - 1]
        """The newest frame ``(H, W)``: a writable view into :attr:`frames`."""

    def advance(self) -> None:
        """Drop the oldest frame and start a blank newest one."""
        if self._packed is not None:
            # little-endian: channel j of a pixel is byte j, so >> 8 moves j + 1 to j
            np.right_shift(self._packed, 8, out=self._packed)
        else:
            self.frames[..., :-1] = self.frames[..., 1:]
            self.canvas.fill(0)

    def fill(self) -> None:
        """Make every frame a copy of the newest (the stack after a reset)."""
        self.frames[...] = self.frames[..., -1:]

    def observation(self) -> np.ndarray:
        """A copy of the stack, ``(H, W, depth)`` uint8."""
        return self.frames.copy()


def palette_lut(colors: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """A lookup table ``(256, 3)`` uint8 from gray levels to RGB; unlisted levels stay gray."""
    lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    for level, rgb in colors.items():
        lut[level] = rgb
    return lut


class PixelWindow:
    """A pygame window that shows RGB frames, scaled up, at a fixed rate."""

    def __init__(self, title: str, fps: float, scale: int = 6) -> None:
        """Open nothing yet; the window appears with the first frame.

        Args:
            title: The window's caption.
            fps: Frames shown per second at most.
            scale: Screen pixels per frame pixel.
        """
        self.title = title
        self.fps = fps
        self.scale = scale
        self._screen: Any = None
        self._clock: Any = None

    def show(self, frame: np.ndarray) -> None:
        """Draw ``frame`` ``(H, W, 3)`` uint8 and wait for the next tick."""
        try:
            import pygame
        except ImportError as error:  # pragma: no cover - pygame-ce is a dependency
            raise ImportError(
                "render_mode='human' needs pygame-ce: pip install pygame-ce"
            ) from error
        height, width = frame.shape[:2]
        size = (width * self.scale, height * self.scale)
        if self._screen is None:
            pygame.init()
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._screen = pygame.display.set_mode(size)
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.swapaxes(0, 1)))
        self._screen.blit(pygame.transform.scale(surface, size), (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        """Close the window, if it is open."""
        if self._screen is not None:
            import pygame

            pygame.display.quit()
            self._screen = None
