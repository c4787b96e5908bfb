"""The labeling window's painter (``prefgym.label._painter``): clips drawn into panels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from prefgym.label import LabelWindow  # noqa: E402
from prefgym.label._clips import Clip  # noqa: E402
from prefgym.label._painter import (  # noqa: E402
    ACCENT,
    BACKGROUND,
    DIM,
    PANEL,
    PROMPT_TITLE,
    TEXT,
    WARN,
    ClipPainter,
)
from tests.label.windows import cartpole_segments, panel_pixels  # noqa: E402

LINE_COLOUR = (110, 180, 255)
"""The colour of the first observation's line in a plot."""


class RecordingFont:
    """A pygame font that remembers what it rendered, and in which colour."""

    def __init__(self, font: Any) -> None:
        self.font = font
        self.rendered: list[tuple[str, tuple[int, int, int]]] = []

    def render(self, text: str, antialias: bool, colour: tuple[int, int, int]) -> Any:
        self.rendered.append((text, tuple(colour)))  # type: ignore[arg-type]
        return self.font.render(text, antialias, colour)

    def size(self, text: str) -> tuple[int, int]:
        return self.font.size(text)

    def get_linesize(self) -> int:
        return self.font.get_linesize()

    def texts(self) -> list[str]:
        return [text for text, _ in self.rendered]


@pytest.fixture
def fonts() -> tuple[RecordingFont, RecordingFont]:
    """The window's text and label fonts, recording what they render."""
    pygame.font.init()
    path = pygame.font.match_font("dejavusans")
    return RecordingFont(pygame.font.Font(path, 17)), RecordingFont(pygame.font.Font(path, 14))


@pytest.fixture
def painter(fonts: tuple[RecordingFont, RecordingFont]) -> ClipPainter:
    return ClipPainter(*fonts)


def surface(size: tuple[int, int] = (640, 480)) -> Any:
    screen = pygame.Surface(size)
    screen.fill(BACKGROUND)
    return screen


def pixels(screen: Any, area: Any) -> np.ndarray:
    """The pixels of ``area``, ``(width, height, 3)``."""
    return pygame.surfarray.array3d(screen)[area.left : area.right, area.top : area.bottom]


def is_colour(region: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (region == np.array(colour)).all(axis=-1)


# ------------------------------------------------------------------ moved here


def test_without_frames_a_labelled_plot_is_drawn(open_window: Callable[..., LabelWindow]) -> None:
    window = open_window(cartpole_segments(4, frames=False))
    pair = window.session.pair
    assert pair is not None and pair.left.kind == "observations"
    assert window.draw()
    for side in ("left", "right"):
        assert len(np.unique(panel_pixels(window, side).reshape(-1, 3), axis=0)) > 20


def test_responses_wrap_to_the_panel_and_long_words_break(painter: ClipPainter) -> None:
    width = 548  # a text panel's area in a 1200-pixel window, less its margins
    text = "the soup was good . " * 30 + "x" * 400
    lines = painter.wrap(text, width)
    assert len(lines) > 5 and all(painter.font.size(line)[0] <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


# ------------------------------------------------------------------ frames


def frames_clip(*colours: tuple[int, int, int], height: int = 10, width: int = 20) -> Clip:
    frames = np.zeros((len(colours), height, width, 3), dtype=np.uint8)
    for step, colour in enumerate(colours):
        frames[step] = colour
    return Clip("frames", len(colours), frames=frames)


def test_a_frame_is_scaled_to_fit_and_centred_on_the_panel(painter: ClipPainter) -> None:
    screen, area = surface(), pygame.Rect(40, 30, 200, 200)
    clip = frames_clip((200, 0, 0), (0, 0, 200))  # 20 x 10: 200 x 100 in the area
    painter.paint(screen, area, clip, step=0, scroll=0)
    region = pixels(screen, area)
    assert is_colour(region[:, 55:145], (200, 0, 0)).all()  # the frame, full width
    assert is_colour(region[:, :45], PANEL).all() and is_colour(region[:, 155:], PANEL).all()
    assert is_colour(pixels(screen, pygame.Rect(0, 0, 40, 480)), BACKGROUND).all()  # outside
    painter.paint(screen, area, clip, step=1, scroll=0)
    assert is_colour(pixels(screen, area)[:, 55:145], (0, 0, 200)).all()


def test_frames_are_cached_until_reset(painter: ClipPainter) -> None:
    screen, area = surface(), pygame.Rect(0, 0, 100, 100)
    clip = frames_clip((200, 0, 0))
    painter.paint(screen, area, clip, step=0, scroll=0)
    assert clip.frames is not None
    clip.frames[:] = (0, 200, 0)
    painter.paint(screen, area, clip, step=0, scroll=0)
    assert is_colour(pixels(screen, area)[50:51, 50:51], (200, 0, 0)).all()  # the cached frame
    painter.reset()
    painter.paint(screen, area, clip, step=0, scroll=0)
    assert is_colour(pixels(screen, area)[50:51, 50:51], (0, 200, 0)).all()


# ------------------------------------------------------------------ plots


def observation_clip(values: np.ndarray) -> Clip:
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    names = tuple(f"dim {i}" for i in range(values.shape[1]))
    return Clip("observations", len(values), observations=values, names=names)


def line_rows(screen: Any, area: Any) -> np.ndarray:
    """Rows (relative to ``area``) of the first observation's line, right of the labels."""
    region = pixels(screen, area)[150:]
    return np.nonzero(is_colour(region, LINE_COLOUR).any(axis=0))[0]


def test_a_plot_shares_its_scale_with_the_clips_beside_it(painter: ClipPainter) -> None:
    area = pygame.Rect(0, 0, 600, 230)  # one row: its box spans rows 34 to 224
    small = observation_clip(np.linspace(0.0, 1.0, 12))
    large = observation_clip(np.linspace(0.0, 10.0, 12))
    alone = surface()
    painter.paint(alone, area, small, step=0, scroll=0)
    rows = line_rows(alone, area)
    assert rows.min() < 40 and rows.max() > 218  # its own range fills the box
    painter.reset()
    beside = surface()
    painter.paint(beside, area, small, step=0, scroll=0, others=(large,))
    rows = line_rows(beside, area)
    assert rows.min() > 200 and rows.max() > 218  # a tenth of the shared range, at the bottom


def test_a_plot_names_its_rows_shows_the_values_at_the_step_and_counts_the_rest(
    painter: ClipPainter, fonts: tuple[RecordingFont, RecordingFont]
) -> None:
    _, small = fonts
    values = np.arange(30 * 10, dtype=np.float64).reshape(30, 10) / 100
    clip = observation_clip(values)
    painter.paint(surface(), pygame.Rect(0, 0, 600, 400), clip, step=3, scroll=0)
    texts = small.texts()
    assert texts[0] == "each observation over the clip (a plot: no picture was stored)"
    assert small.rendered[0][1] == WARN
    assert [f"dim {i}" for i in range(8)] == [t for t in texts if t.startswith("dim")]
    assert "... and 2 more" in texts  # 10 dimensions, 8 rows
    assert texts[-8:] == [f"{values[3, row]:+.3f}" for row in range(8)]
    assert texts[-8] == "+0.300"


def test_the_step_marker_moves_along_the_plot(painter: ClipPainter) -> None:
    area = pygame.Rect(0, 0, 600, 230)
    clip = observation_clip(np.zeros(11))  # a flat line: the marker is the only TEXT column
    columns = []
    for step in (0, 5, 10):
        screen = surface()
        painter.paint(screen, area, clip, step=step, scroll=0)
        marker = is_colour(pixels(screen, area)[150:, 100:200], TEXT).all(axis=1)
        (column,) = np.nonzero(marker)[0]
        columns.append(int(column))
    assert columns == [0, 220, 440]  # the plot is 440 pixels wide


# ------------------------------------------------------------------ text


def text_clip(prompt: str, response: str) -> Clip:
    return Clip("text", 1, prompt=prompt, response=response)


def test_lines_put_the_prompt_above_the_response_or_the_response_alone(
    painter: ClipPainter,
) -> None:
    clip = text_clip("Tell me.\nNow.", "Once upon a time.")
    assert painter.lines(clip, 400) == [
        "PROMPT",
        "Tell me.",
        "Now.",
        "",
        "RESPONSE",
        "Once upon a time.",
    ]
    assert painter.lines(clip, 400, prompt=False) == ["Once upon a time."]
    assert painter.lines(text_clip("Hi.", "  "), 400, prompt=False) == ["(empty response)"]


def test_text_is_drawn_from_the_scrolled_line_in_its_colours(
    painter: ClipPainter, fonts: tuple[RecordingFont, RecordingFont]
) -> None:
    font, small = fonts
    clip = text_clip("Tell me.", "\n".join(f"line {i}" for i in range(30)))
    area = pygame.Rect(0, 0, 400, 10 * font.get_linesize())  # 10 lines: 9 and a note
    assert painter.visible_lines(area) == 10
    painter.paint(surface(), area, clip, step=0, scroll=0)
    assert font.rendered == [
        ("PROMPT", ACCENT),
        ("Tell me.", TEXT),
        ("", TEXT),
        ("RESPONSE", ACCENT),
        *[(f"line {i}", TEXT) for i in range(5)],
    ]
    assert small.rendered == [("more below: page down or the wheel", DIM)]
    font.rendered.clear()
    small.rendered.clear()
    painter.paint(surface(), area, clip, step=0, scroll=26, prompt=True)  # the last 8 lines
    assert font.texts() == [f"line {i}" for i in range(22, 30)]
    assert small.rendered == []  # nothing more below
    font.rendered.clear()
    painter.paint(surface(), area, text_clip("Hi.", ""), step=0, scroll=0, prompt=False)
    assert font.rendered == [("(empty response)", DIM)]


def test_wrap_keeps_paragraphs_expands_tabs_and_fits_each_line(painter: ClipPainter) -> None:
    assert painter.wrap("", 100) == [""]
    assert painter.wrap("one\n\ntwo", 500) == ["one", "", "two"]
    assert painter.wrap("a\tb", 500) == ["a   b"]
    words = " ".join(["word"] * 40)
    width = painter.font.size("word word word")[0]
    lines = painter.wrap(words, width)
    assert lines[:-1] == ["word word word"] * 13 and lines[-1] == "word"


def test_a_prompt_box_cuts_long_prompts_and_says_so(
    painter: ClipPainter, fonts: tuple[RecordingFont, RecordingFont]
) -> None:
    font, small = fonts
    prompt = "\n".join(f"prompt line {i}" for i in range(6))
    line = font.get_linesize()
    assert painter.prompt_height(prompt, 400, max_lines=3) == PROMPT_TITLE + 3 * line + 8
    assert painter.prompt_height(prompt, 400, max_lines=10) == PROMPT_TITLE + 6 * line + 8
    box = pygame.Rect(10, 10, 400, painter.prompt_height(prompt, 400, max_lines=3))
    screen = surface()
    painter.paint_prompt(screen, box, prompt, max_lines=3)
    assert font.texts() == [
        "prompt line 0",
        "prompt line 1",
        "prompt line 2 \N{HORIZONTAL ELLIPSIS}",
    ]
    assert ("PROMPT", ACCENT) in small.rendered
    assert ("3 more line(s) cut", DIM) in small.rendered
    corner = pixels(screen, pygame.Rect(box.x + 8, box.bottom - 3, 4, 2))
    assert is_colour(corner, PANEL).all()  # the box is drawn in the panel colour
    font.rendered.clear()
    small.rendered.clear()
    painter.paint_prompt(screen, box, "short", max_lines=3)
    assert font.texts() == ["short"] and not any("cut" in t for t in small.texts())
