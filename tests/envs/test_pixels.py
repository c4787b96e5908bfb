from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import pytest

from prefgym.envs.pixels import FrameStack, PixelWindow, palette_lut

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import Spawn

DEPTHS = [1, 2, 3, 4, 5, 8]
"""Depths that pack into one integer per pixel (1, 2, 4, 8) and depths that do not (3, 5)."""


def test_frame_stack_rejects_an_empty_stack() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        FrameStack(84, 84, 0)


@pytest.mark.parametrize(("height", "width"), [(0, 84), (84, 0), (-1, 5)])
def test_frame_stack_rejects_an_empty_frame(height: int, width: int) -> None:
    with pytest.raises(ValueError, match=f"frame size must be positive, got {height}x{width}"):
        FrameStack(height, width, 2)


@pytest.mark.parametrize("depth", DEPTHS)
def test_frame_stack_keeps_the_last_frames_oldest_first(
    depth: int, rng: np.random.Generator
) -> None:
    stack = FrameStack(5, 7, depth)
    assert stack.depth == depth
    assert stack.frames.shape == (5, 7, depth) and stack.frames.dtype == np.uint8
    assert not stack.frames.any()
    history = deque([np.zeros((5, 7), np.uint8)] * depth, maxlen=depth)
    for _ in range(3 * depth + 2):
        stack.advance()
        assert not stack.canvas.any(), "advance() must blank the newest frame"
        frame = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
        stack.canvas[...] = frame
        history.append(frame)
        np.testing.assert_array_equal(stack.observation(), np.stack(history, axis=-1))


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_partly_drawn_frame_leaves_the_rest_blank(depth: int) -> None:
    stack = FrameStack(4, 4, depth)
    stack.canvas[...] = 200
    stack.advance()
    stack.canvas[1, 2] = 9  # draw one pixel of the new frame
    newest = stack.observation()[..., -1]
    assert newest[1, 2] == 9 and np.count_nonzero(newest) == 1
    if depth > 1:
        assert (stack.observation()[..., -2] == 200).all()


def test_the_canvas_is_the_newest_frame_in_place() -> None:
    stack = FrameStack(6, 3, 4)
    assert stack.canvas.shape == (6, 3)
    assert np.shares_memory(stack.canvas, stack.frames)
    stack.canvas[2, 1] = 77
    assert stack.frames[2, 1, 3] == 77 and np.count_nonzero(stack.frames) == 1


@pytest.mark.parametrize("depth", DEPTHS)
def test_fill_copies_the_newest_frame_into_every_slot(depth: int, rng: np.random.Generator) -> None:
    stack = FrameStack(5, 6, depth)
    stack.canvas[...] = rng.integers(1, 256, size=(5, 6), dtype=np.uint8)
    newest = stack.canvas.copy()
    stack.fill()
    for k in range(depth):
        np.testing.assert_array_equal(stack.frames[..., k], newest)
    stack.advance()  # the stack after a reset moves on as usual
    for k in range(depth - 1):
        np.testing.assert_array_equal(stack.frames[..., k], newest)
    assert not stack.canvas.any()


def test_observation_is_a_copy() -> None:
    stack = FrameStack(3, 3, 2)
    observation = stack.observation()
    assert not np.shares_memory(observation, stack.frames)
    observation[...] = 5
    assert not stack.frames.any()
    stack.canvas[...] = 1
    assert not (observation == 1).any()


def test_palette_lut_maps_listed_levels_to_their_colours_and_keeps_the_rest_gray() -> None:
    colors = {0: (24, 72, 48), 100: (210, 0, 5), 255: (1, 2, 3)}
    lut = palette_lut(colors)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    for level in range(256):
        expected = colors.get(level, (level, level, level))
        assert tuple(lut[level].tolist()) == expected, level
    gray = np.array([[0, 100], [255, 17]], dtype=np.uint8)
    rgb = lut[gray]
    assert rgb.shape == (2, 2, 3)
    assert rgb[0, 1].tolist() == [210, 0, 5] and rgb[1, 1].tolist() == [17, 17, 17]


def test_an_empty_palette_is_plain_gray() -> None:
    lut = palette_lut({})
    np.testing.assert_array_equal(lut, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1))


def test_the_window_shows_each_frame_scaled_up() -> None:
    pygame = pytest.importorskip("pygame")
    frame = np.zeros((3, 5, 3), dtype=np.uint8)
    frame[0, 0] = (255, 0, 0)
    frame[2, 4] = (0, 0, 255)
    frame[1, 2] = (10, 200, 30)
    window = PixelWindow("prefgym test window", fps=1000, scale=4)
    window.close()  # closing a window never shown does nothing
    try:
        window.show(frame)
        screen = pygame.display.get_surface()
        assert screen.get_size() == (5 * 4, 3 * 4)
        assert pygame.display.get_caption()[0] == "prefgym test window"
        for y in range(3):
            for x in range(5):
                for dy, dx in [(0, 0), (3, 3)]:  # both corners of the scaled pixel
                    colour = tuple(screen.get_at((x * 4 + dx, y * 4 + dy)))[:3]
                    assert colour == tuple(frame[y, x].tolist()), (x, y)
        window.show(frame[::-1].copy())  # the same window shows the next frame
        assert pygame.display.get_surface().get_size() == (20, 12)
        assert tuple(pygame.display.get_surface().get_at((0, 0)))[:3] == (0, 0, 0)
        assert tuple(pygame.display.get_surface().get_at((0, 8)))[:3] == (255, 0, 0)
    finally:
        window.close()
    assert not pygame.display.get_init()
    window.close()  # and closing twice is harmless


def test_no_pygame_without_a_window(spawn: Spawn) -> None:
    code = (
        "import sys\n"
        "from prefgym.envs.pixels import FrameStack, PixelWindow, palette_lut\n"
        "FrameStack(84, 84, 4).advance(); palette_lut({0: (1, 2, 3)}); PixelWindow('x', 30)\n"
        "print('pygame' in sys.modules)"
    )
    process = spawn(code)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and out.strip() == "False"
