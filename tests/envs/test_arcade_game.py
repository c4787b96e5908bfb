from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.envs.arcade_game import SIZE, ArcadeGame, fill_rect


def _expected_mask(x: float, y: float, w: int, h: int) -> np.ndarray:
    """The cells a ``w`` x ``h`` rectangle at ``(x, y)`` covers, worked out cell by cell."""
    rows = np.arange(SIZE)[:, None]
    columns = np.arange(SIZE)[None, :]
    x0, y0 = math.floor(x), math.floor(y)
    return (y0 <= rows) & (rows < y0 + h) & (x0 <= columns) & (columns < x0 + w)


class _Counter(ArcadeGame):
    """The smallest game: a counter that scores the action and draws one pixel."""

    actions = ("NOOP", "ADD")
    colors = {0: (0, 0, 0), 255: (255, 255, 255)}

    def _reset(self) -> None:
        self.start = int(self.rng.integers(100))
        self.count = self.start

    def step(self, action: int) -> float:
        self.count += action
        return float(action)

    def expert(self) -> int:
        return 1

    def draw(self, canvas: np.ndarray) -> None:
        fill_rect(canvas, self.count % SIZE, 0, 1, 1, 255)


def test_frames_are_84_pixels_square() -> None:
    assert SIZE == 84


@pytest.mark.parametrize(
    ("x", "y", "w", "h"),
    [
        (10, 20, 5, 3),  # wholly inside
        (0, 0, SIZE, SIZE),  # the whole canvas
        (-3, 40, 5, 2),  # over the left edge
        (40, -2, 3, 4),  # over the top edge
        (81, 40, 6, 2),  # over the right edge
        (40, 82, 2, 7),  # over the bottom edge
        (-5, -5, SIZE + 10, SIZE + 10),  # over every edge
        (10.9, 20.2, 2, 2),  # a float corner is drawn at its floor
        (-0.5, 3, 2, 1),  # floor(-0.5) is -1: one column shows
    ],
)
def test_fill_rect_paints_the_rectangle_clipped_to_the_canvas(
    x: float, y: float, w: int, h: int
) -> None:
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    fill_rect(canvas, x, y, w, h, 7)
    mask = _expected_mask(x, y, w, h)
    assert mask.any()
    assert (canvas[mask] == 7).all()
    assert not canvas[~mask].any()


@pytest.mark.parametrize(("x", "y"), [(10, 20), (0, 0), (SIZE - 4, SIZE - 3), (33.7, 0.99)])
def test_fill_rect_inside_paints_exactly_w_times_h_cells(x: float, y: float) -> None:
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    fill_rect(canvas, x, y, 4, 3, 200)
    assert np.count_nonzero(canvas) == 4 * 3
    x0, y0 = math.floor(x), math.floor(y)
    assert (canvas[y0 : y0 + 3, x0 : x0 + 4] == 200).all()


@pytest.mark.parametrize(
    ("x", "y", "w", "h"),
    [
        (-6, 10, 6, 4),  # ends just left of column 0
        (SIZE, 10, 3, 3),  # starts just right of the last column
        (10, -4, 3, 4),  # ends just above row 0
        (10, SIZE, 3, 3),  # starts just below the last row
        (10, 10, 0, 5),  # no width
        (10, 10, 5, 0),  # no height
    ],
)
def test_fill_rect_off_the_canvas_paints_nothing(x: float, y: float, w: int, h: int) -> None:
    canvas = np.full((SIZE, SIZE), 3, dtype=np.uint8)
    fill_rect(canvas, x, y, w, h, 9)
    assert (canvas == 3).all()


def test_fill_rect_overwrites_what_is_there() -> None:
    canvas = np.full((SIZE, SIZE), 50, dtype=np.uint8)
    fill_rect(canvas, 2, 2, 2, 2, 0)
    assert np.count_nonzero(canvas == 0) == 4
    assert np.count_nonzero(canvas == 50) == SIZE * SIZE - 4


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-100, 190, allow_nan=False),
    st.floats(-100, 190, allow_nan=False),
    st.integers(0, 120),
    st.integers(0, 120),
)
def test_fill_rect_matches_the_cell_by_cell_rectangle(x: float, y: float, w: int, h: int) -> None:
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    fill_rect(canvas, x, y, w, h, 1)
    np.testing.assert_array_equal(canvas.astype(bool), _expected_mask(x, y, w, h))


def test_the_base_cannot_be_played_and_a_game_must_write_every_rule() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ArcadeGame()  # type: ignore[abstract]

    class NoDrawing(ArcadeGame):
        actions = ("NOOP",)
        colors = {0: (0, 0, 0)}

        def _reset(self) -> None:
            pass

        def step(self, action: int) -> float:
            return 0.0

        def expert(self) -> int:
            return 0

    with pytest.raises(TypeError, match="draw"):
        NoDrawing()  # type: ignore[abstract]


def test_reset_hands_the_generator_to_the_game_before_setting_it_up() -> None:
    game = _Counter()
    default = game.rng.integers(100, size=5)
    np.testing.assert_array_equal(default, np.random.default_rng(0).integers(100, size=5))
    rng = np.random.default_rng(42)
    game.reset(rng)
    assert game.rng is rng
    assert game.start == np.random.default_rng(42).integers(100)  # _reset drew from rng
    assert game.step(1) == 1.0 and game.count == game.start + 1
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    game.draw(canvas)
    assert canvas[0, game.count % SIZE] == 255 and np.count_nonzero(canvas) == 1
