"""Where everything goes in the labeling window, for any window size down to :data:`MIN_SIZE`.

:func:`lay_out` places the header, the task's instructions, a text pair's
prompt, the panels, the status lines and the key legend, top to bottom, from
the window's size and the fonts' measures; it returns plain boxes, so tests
check that everything lies inside the window without drawing it. Text that
does not fit its box wraps (:func:`wrap`) or is shortened (:func:`fit`).
Nothing here imports pygame: a font is anything with ``size(text)`` and
``get_linesize()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

DEFAULT_SIZE = (1200, 760)
"""The window's size in pixels unless told otherwise."""
MIN_SIZE = (800, 600)
"""The smallest window whose text stays readable."""
_BASE = DEFAULT_SIZE
_POINTS = (22, 17, 14)  # big, text and small fonts at the default size
_SHRINK, _GROW = 0.85, 1.8  # how far fonts follow the window's size
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


class Font(Protocol):
    """What the layout needs of a font (``pygame.font.Font`` is one)."""

    def size(self, text: str, /) -> tuple[int, int]:
        """Pixels ``(width, height)`` of ``text`` on one line."""
        ...

    def get_linesize(self) -> int:
        """Pixels from one line of text to the next."""
        ...


class Box(NamedTuple):
    """A rectangle ``(x, y, width, height)``; ``pygame.Rect(box)`` makes it a Rect."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        """The first column right of the box."""
        return self.x + self.width

    @property
    def bottom(self) -> int:
        """The first row below the box."""
        return self.y + self.height

    def inside(self, width: int, height: int) -> bool:
        """Whether the box lies within a ``width`` x ``height`` surface."""
        return self.x >= 0 and self.y >= 0 and self.right <= width and self.bottom <= height


def parse_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` as pixels, checked by :func:`check_size`.

    Raises:
        ValueError: ``text`` is not two whole numbers joined by ``x``, or is too small.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX\N{MULTIPLICATION SIGN}]\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(
            f"window size must be WIDTHxHEIGHT in pixels (at least "
            f"{MIN_SIZE[0]}x{MIN_SIZE[1]}, e.g. {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}), got {text!r}"
        )
    return check_size((int(match[1]), int(match[2])))


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(width, height)`` if it is at least :data:`MIN_SIZE`; else ValueError."""
    if len(size) != 2 or not all(isinstance(v, int) for v in size):
        raise ValueError(f"window size must be two whole numbers (width, height), got {size!r}")
    width, height = size
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise ValueError(
            f"window size {width}x{height} is below the minimum {MIN_SIZE[0]}x{MIN_SIZE[1]}; "
            f"give at least {MIN_SIZE[0]}x{MIN_SIZE[1]}"
        )
    return width, height


def font_points(size: tuple[int, int]) -> tuple[int, int, int]:
    """Pixel sizes of the big, text and small fonts for a window of ``size``."""
    scale = min(size[0] / _BASE[0], size[1] / _BASE[1])
    scale = min(max(scale, _SHRINK), _GROW)
    big, text, small = (round(p * scale) for p in _POINTS)
    return big, text, small


def wrap(font: Font, text: str, width: int) -> list[str]:
    """``text`` as lines at most ``width`` pixels wide, broken between words.

    Paragraphs (lines of ``text``) stay apart; a word wider than a line is broken
    between characters.
    """
    lines = []
    for paragraph in text.expandtabs(4).splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if font.size(trial)[0] <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            while font.size(word)[0] > width and len(word) > 1:
                cut = _longest_prefix(font, word, width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _longest_prefix(font: Font, word: str, width: int) -> int:
    """Characters of ``word`` (at least one) that fit in ``width`` pixels."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if font.size(word[:middle])[0] <= width:
            low = middle
        else:
            high = middle - 1
    return low


def fit(font: Font, text: str, width: int) -> str:
    """``text`` if it fits ``width`` pixels, else its longest start that fits with an ellipsis."""
    if font.size(text)[0] <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.size(text[:middle].rstrip() + ELLIPSIS)[0] <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


def wrap_lines(font: Font, text: str, width: int, most: int) -> list[str]:
    """:func:`wrap`, cut to ``most`` lines; a cut ends with an ellipsis."""
    lines = wrap(font, text, width)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = fit(font, lines[-1] + " " + ELLIPSIS, width)
    return lines


@dataclass(frozen=True)
class Fonts:
    """The window's three fonts."""

    big: Font
    text: Font
    small: Font


@dataclass(frozen=True)
class LegendEntry:
    """One key of the legend: the box its keys are drawn in, and where its words go."""

    keys: str
    action: str
    key_box: Box
    action_at: tuple[int, int]
    action_width: int


@dataclass(frozen=True)
class Layout:
    """Every box of the window, top to bottom."""

    size: tuple[int, int]
    margin: int
    header: Box
    """The pair, the labels left and what is waiting."""
    header_right: Box
    """The labeler and playback: beside the header, or on a row below it when narrow."""
    instructions: tuple[tuple[str, Box, bool], ...]
    """The task's instructions as lines: (text, where, whether in the text font)."""
    prompt: Box | None
    """A text pair's shared prompt."""
    panels: tuple[Box, ...]
    """One per segment on screen, in the order of the keys (left, right; or 1, 2, 3...)."""
    titles: tuple[Box, ...]
    """Each panel's title row."""
    areas: tuple[Box, ...]
    """Where each panel's clip goes: below its title, above its note."""
    notes: tuple[Box, ...]
    """Each panel's note (where its picture comes from) and progress bar."""
    status: Box
    """The status line: what just happened."""
    trainer: Box
    """How the trainer is."""
    legend: tuple[LegendEntry, ...]
    click_note: Box
    """Where "or click a panel" goes."""

    def boxes(self) -> Iterator[Box]:
        """Every box, for checks that they all lie inside the window."""
        yield self.header
        yield self.header_right
        yield from (box for _, box, _ in self.instructions)
        if self.prompt is not None:
            yield self.prompt
        yield from self.panels
        yield from self.titles
        yield from self.areas
        yield from self.notes
        yield self.status
        yield self.trainer
        for entry in self.legend:
            yield entry.key_box
            yield Box(*entry.action_at, entry.action_width, entry.key_box.height)
        yield self.click_note


def lay_out(
    size: tuple[int, int],
    fonts: Fonts,
    *,
    panels: int = 2,
    header: tuple[str, str] = ("", ""),
    instructions: str = "",
    prompt_height: int = 0,
    legend: Sequence[tuple[str, str]] = (),
    click_note: str = "",
) -> Layout:
    """Place everything in a window of ``size``.

    Args:
        size: The window's ``(width, height)``.
        fonts: The fonts text is drawn in.
        panels: Segments on screen: 2 for a pair, K for a ranking.
        header: The longest left and right header texts expected (they share a row
            when both fit, else the right one goes on a row below).
        instructions: What "better" means: the first line in the text font, further
            lines (a rubric) in the small font, cut to what the window can spare.
        prompt_height: Pixels of a shared prompt box above the panels (0: none).
        legend: ``(keys, action)`` entries, laid out in rows that wrap.
        click_note: Words after the legend.
    """
    width, height = size
    big, text, small = fonts.big, fonts.text, fonts.small
    margin = max(8, text.get_linesize() // 2)
    inner = width - 2 * margin
    y = margin

    left_width, right_width = big.size(header[0])[0], text.size(header[1])[0]
    header_box = Box(margin, y, inner, big.get_linesize())
    if left_width + 2 * margin + right_width <= inner:
        right_box = Box(width - margin - right_width, y + 2, right_width, text.get_linesize())
        header_box = Box(margin, y, inner - right_width - 2 * margin, big.get_linesize())
        y += big.get_linesize()
    else:
        y += big.get_linesize()
        right_box = Box(margin, y, inner, text.get_linesize())
        y += text.get_linesize()
    y += margin // 2

    # the footer, from the bottom up: legend rows, trainer line, status line
    key_height = text.get_linesize() + 6
    rows: list[list[tuple[str, str, int, int]]] = [[]]
    x = margin
    for keys, action in legend:
        key_width = text.size(keys)[0] + 12
        action_width = text.size(action)[0]
        need = key_width + 6 + action_width
        if rows[-1] and x + need > width - margin:
            rows.append([])
            x = margin
        rows[-1].append((keys, action, key_width, action_width))
        x += need + 2 * margin
    note_width = small.size(click_note)[0] if click_note else 0
    note_on_new_row = x + note_width > width - margin
    row_height = key_height + 6
    legend_height = (len(rows) + note_on_new_row) * row_height
    footer_top = height - margin - legend_height - small.get_linesize() - text.get_linesize() - 4
    status = Box(margin, footer_top, inner, text.get_linesize())
    trainer = Box(margin, status.bottom, inner, small.get_linesize())
    entries = []
    ly = trainer.bottom + 4
    for row in rows:
        x = margin
        for keys, action, key_width, action_width in row:
            key_box = Box(x, ly, key_width, key_height)
            action_at = (key_box.right + 6, ly + 3)
            entries.append(LegendEntry(keys, action, key_box, action_at, action_width))
            x = action_at[0] + action_width + 2 * margin
        ly += row_height
    if note_on_new_row:
        x = margin
    else:
        ly -= row_height
    click = Box(
        x, ly + 3 + (text.get_linesize() - small.get_linesize()), note_width, small.get_linesize()
    )

    # the instructions, as many lines as leave the panels room
    room = footer_top - margin - y - prompt_height - 160  # panels need a title, a clip, a note
    lines: list[tuple[str, Box, bool]] = []
    if instructions.strip():
        first, _, rest = instructions.strip().partition("\n")
        most = max(1, min(2, room // text.get_linesize()))
        for line in wrap_lines(text, first, inner, most):
            lines.append((line, Box(margin, y, inner, text.get_linesize()), True))
            y += text.get_linesize()
            room -= text.get_linesize()
        if rest.strip():
            most = max(0, min(room // small.get_linesize(), height // (4 * small.get_linesize())))
            for line in wrap_lines(small, " ".join(rest.split()), inner, most) if most else []:
                lines.append((line, Box(margin, y, inner, small.get_linesize()), False))
                y += small.get_linesize()
        y += margin // 2

    prompt = None
    if prompt_height:
        prompt = Box(margin, y, inner, prompt_height)
        y += prompt_height + margin // 2

    panel_boxes, titles, areas, notes = _panels(
        Box(margin, y, inner, footer_top - margin // 2 - y), panels, margin, big, small
    )
    return Layout(
        size=size,
        margin=margin,
        header=header_box,
        header_right=right_box,
        instructions=tuple(lines),
        prompt=prompt,
        panels=panel_boxes,
        titles=titles,
        areas=areas,
        notes=notes,
        status=status,
        trainer=trainer,
        legend=tuple(entries),
        click_note=click,
    )


def _panels(
    room: Box, count: int, margin: int, big: Font, small: Font
) -> tuple[tuple[Box, ...], tuple[Box, ...], tuple[Box, ...], tuple[Box, ...]]:
    """``count`` panels in ``room``: side by side, in two rows when there are more than four."""
    columns = count if count <= 4 else math.ceil(count / 2)
    rows = math.ceil(count / columns)
    width = (room.width - (columns - 1) * margin) // columns
    height = (room.height - (rows - 1) * margin) // rows
    title = big.get_linesize() + 8
    note = small.get_linesize() + 16  # the note and the progress bar below it
    panels, titles, areas, notes = [], [], [], []
    for i in range(count):
        row, column = divmod(i, columns)
        x = room.x + column * (width + margin)
        y = room.y + row * (height + margin)
        panels.append(Box(x, y, width, height))
        titles.append(Box(x + 8, y + 4, width - 16, title - 4))
        areas.append(Box(x + 8, y + title, width - 16, max(height - title - note, 1)))
        notes.append(Box(x + 8, y + height - note, width - 16, note - 2))
    return tuple(panels), tuple(titles), tuple(areas), tuple(notes)
