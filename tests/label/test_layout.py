"""Where things go in the labeling window, at the smallest and the default size and between."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from prefgym.label import (  # noqa: E402
    BACKGROUND,
    DEFAULT_SIZE,
    LEGEND,
    MIN_SIZE,
    RANKING_LEGEND,
    LabelWindow,
    Layout,
    check_size,
    parse_size,
)
from prefgym.segments import Segment  # noqa: E402
from tests.label.windows import cartpole_segments  # noqa: E402

SIZES = [MIN_SIZE, (1000, 650), DEFAULT_SIZE, (1920, 1080), (800, 1000), (1600, 600)]
RUBRIC = "which review is more positive?\n" + "Judge each sentence of the review. " * 30


@pytest.fixture(scope="module")
def framed() -> list[Segment]:
    return cartpole_segments(4, frames=True)


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return pygame.Rect(a).colliderect(pygame.Rect(b))


def check(layout: Layout, least: tuple[int, int] = (150, 100)) -> None:
    """Every box inside the window; header, instructions, panels and footer apart."""
    width, height = layout.size
    for box in layout.boxes():
        assert box.inside(width, height), (box, layout.size)
        assert box.width > 0 and box.height > 0, (box, layout.size)
    top = [layout.header, *(box for _, box, _ in layout.instructions)]
    if layout.header_right.x > layout.margin:  # beside the header
        assert not overlaps(layout.header, layout.header_right)
    else:
        top.append(layout.header_right)
    footer = [layout.status, layout.trainer, *(e.key_box for e in layout.legend)]
    for panel in layout.panels:
        for box in top + footer:
            assert not overlaps(panel, box), (panel, box, layout.size)
    for a, b in zip(top, top[1:], strict=False):
        assert not overlaps(a, b)
    for area in layout.areas:
        assert area.width >= least[0] and area.height >= least[1], (area, layout.size)
    entries = layout.legend
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            assert not overlaps(a.key_box, b.key_box)


@pytest.mark.parametrize("size", SIZES)
def test_every_box_fits_the_window_for_a_pair(
    open_window: Callable[..., LabelWindow], framed: list[Segment], size: tuple[int, int]
) -> None:
    window = open_window(framed)
    window.instructions = RUBRIC
    window.resize(size)
    assert window.screen.get_size() == size
    check(window.layout)
    assert [e.action for e in window.layout.legend] == [a for _, a in LEGEND]
    assert len(window.layout.instructions) >= 2  # the criterion and some of the rubric
    assert window.draw()


def test_the_legend_is_drawn_inside_an_800x600_window(
    open_window: Callable[..., LabelWindow], framed: list[Segment], tmp_path: object
) -> None:
    window = open_window(framed)
    window.resize(MIN_SIZE)
    assert window.draw()
    pixels = pygame.surfarray.array3d(window.screen)  # (width, height, 3)
    for entry in window.layout.legend:  # a light key cap with dark letters on it
        box = pygame.Rect(entry.key_box)
        cap = pixels[box.left : box.right, box.top : box.bottom].reshape(-1, 3)
        assert (cap > 200).all(axis=1).mean() > 0.5, entry.keys
        assert (cap < 100).all(axis=1).any(), entry.keys
    last = max(window.layout.legend, key=lambda e: e.key_box.bottom).key_box
    below = pixels[:, last.bottom + 1 :].reshape(-1, 3)
    assert (below == BACKGROUND).all()  # nothing is cut at the bottom edge
    if os.environ.get("PREFGYM_SCREENSHOT"):
        pygame.image.save(window.screen, os.environ["PREFGYM_SCREENSHOT"])


def test_a_ranking_of_nine_fits_in_two_rows(open_window: Callable[..., LabelWindow]) -> None:
    from prefgym.label import lay_out
    from prefgym.label._layout import Fonts

    window = open_window(cartpole_segments(2, frames=True))
    for size in (MIN_SIZE, DEFAULT_SIZE):
        fonts = Fonts(window.big, window.font, window.small)
        layout = lay_out(
            size,
            fonts,
            panels=9,
            header=("pair 1  label 1", "alice"),
            legend=RANKING_LEGEND,
            instructions=RUBRIC,
            click_note="or click",
        )
        check(layout, least=(120, 80))
        assert len({box.y for box in layout.panels}) == 2


def test_text_shrinks_with_the_window_but_not_below_readable(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed)
    heights = {}
    for size in (MIN_SIZE, DEFAULT_SIZE, (1920, 1200)):
        window.resize(size)
        heights[size] = window.font.get_linesize()
    assert heights[MIN_SIZE] < heights[DEFAULT_SIZE] < heights[(1920, 1200)]
    assert heights[MIN_SIZE] >= 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("big", "must be WIDTHxHEIGHT in pixels .*got 'big'"),
        ("1200x", "got '1200x'"),
        ("640x480", "640x480 is below the minimum 800x600"),
        ("1200x599", "1200x599 is below the minimum 800x600"),
    ],
)
def test_bad_sizes_are_named_with_the_minimum(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text)


def test_sizes_parse() -> None:
    assert parse_size("800x600") == (800, 600) and parse_size(" 1920 X 1080 ") == (1920, 1080)
    assert check_size((1200, 760)) == (1200, 760)
    with pytest.raises(ValueError, match="two whole numbers"):
        check_size((1200.5, 760))  # type: ignore[arg-type]


def test_a_window_below_the_minimum_is_refused(
    open_window: Callable[..., LabelWindow], framed: list[Segment]
) -> None:
    window = open_window(framed)
    with pytest.raises(ValueError, match="below the minimum 800x600"):
        LabelWindow(window.session, size=(640, 480))
    assert np.asarray(window.screen.get_size()).tolist() == [900, 600]
