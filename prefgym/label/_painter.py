"""The labeling window's panels: one clip drawn into a rectangle (pygame).

Frames are scaled to fit and cached per step; a clip without frames becomes a
plot of its observations, one row per dimension on the same scale in both
panels, marked as a plot; text is wrapped to the panel and scrolled. The
prompt two responses share is drawn once, above both panels
(:meth:`ClipPainter.paint_prompt`). Only the labeling window imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pygame

from prefgym.label._clips import Clip
from prefgym.label._layout import ELLIPSIS, fit, wrap

BACKGROUND = (24, 26, 32)
PANEL = (38, 41, 50)
TEXT = (230, 232, 238)
DIM = (150, 155, 168)
ACCENT = (110, 180, 255)
WARN = (255, 180, 90)
_PLOT_COLOURS = [(110, 180, 255), (255, 150, 110), (140, 220, 140), (230, 200, 90)]
_MAX_ROWS = 8  # observation dimensions plotted; more are listed as "... and N more"
_LABELS = 150  # pixels left of a plot for its name and value
_PROMPT, _RESPONSE = "PROMPT", "RESPONSE"  # headings of a text panel that shows its prompt
_EMPTY = "(empty response)"
PROMPT_TITLE = 30
"""Pixels above a prompt box's first line, for its title."""


class ClipPainter:
    """Draws clips into panel areas, caching what does not change between frames."""

    def __init__(self, font: Any, small: Any) -> None:
        """Paint with ``font`` (text) and ``small`` (labels): ``pygame.font.Font`` objects."""
        self.font = font
        self.small = small
        self._frames: dict[tuple[int, int], Any] = {}
        self._plots: dict[int, Any] = {}
        self._lines: dict[tuple[int, int, bool], list[str]] = {}

    def reset(self) -> None:
        """Forget the cached pictures (a new pair is on screen)."""
        self._frames.clear()
        self._plots.clear()
        self._lines.clear()

    def paint(
        self,
        screen: Any,
        area: Any,
        clip: Clip,
        *,
        step: int,
        scroll: int,
        others: tuple[Clip, ...] = (),
        prompt: bool = True,
    ) -> None:
        """Draw ``clip`` at ``step`` (text from line ``scroll``) into ``area`` of ``screen``.

        Args:
            screen: The surface to draw on.
            area: A ``pygame.Rect`` inside ``screen``.
            clip: What to draw.
            step: The step on screen.
            scroll: The first text line shown.
            others: Clips shown beside this one: observation plots share their scale.
            prompt: Text clips: draw the prompt above the response (False when
                the window shows the prompt once, above both panels).
        """
        if clip.kind == "frames" and clip.frames is not None:
            screen.blit(self._frame(clip, clip.frames, step, area), area.topleft)
        elif clip.kind == "observations" and clip.observations is not None:
            self._observations(screen, area, clip, clip.observations, step, others)
        else:
            self._text(screen, area, clip, scroll, prompt)

    def paint_prompt(self, screen: Any, rect: Any, text: str, max_lines: int) -> None:
        """Draw a prompt into the box ``rect``: a title, then at most ``max_lines`` lines."""
        pygame.draw.rect(screen, PANEL, rect, border_radius=6)
        screen.blit(self.small.render("PROMPT", True, ACCENT), (rect.x + 12, rect.y + 8))
        lines = self.wrap(text, rect.width - 24)
        shown = lines[:max_lines]
        if len(lines) > max_lines:
            shown[-1] = fit(self.font, f"{shown[-1]} {ELLIPSIS}", rect.width - 24)
            cut = self.small.render(f"{len(lines) - max_lines} more line(s) cut", True, DIM)
            screen.blit(cut, (rect.right - cut.get_width() - 12, rect.y + 8))
        y = rect.y + PROMPT_TITLE
        for line in shown:
            screen.blit(self.font.render(line, True, TEXT), (rect.x + 12, y))
            y += self.font.get_linesize()

    def prompt_height(self, text: str, width: int, max_lines: int) -> int:
        """Pixels a prompt box ``width`` wide needs for ``text`` (see :meth:`paint_prompt`)."""
        lines = min(len(self.wrap(text, width - 24)), max_lines)
        return PROMPT_TITLE + lines * self.font.get_linesize() + 8

    def visible_lines(self, area: Any) -> int:
        """Text lines that fit in ``area``."""
        return max(1, area.height // self.font.get_linesize())

    def lines(self, clip: Clip, width: int, *, prompt: bool = True) -> list[str]:
        """The clip's prompt (if ``prompt``) and response as lines at most ``width`` pixels wide."""
        key = (id(clip), width, prompt)
        if key not in self._lines:
            response = self.wrap(clip.response, width) if clip.response.strip() else [_EMPTY]
            if prompt:
                lines = [_PROMPT, *self.wrap(clip.prompt, width), "", _RESPONSE, *response]
            else:
                lines = response
            self._lines[key] = lines
        return self._lines[key]

    def _frame(self, clip: Clip, frames: np.ndarray, step: int, area: Any) -> Any:
        key = (id(clip), step)
        if key not in self._frames:
            frame = np.ascontiguousarray(frames[step])
            height, width = frame.shape[:2]
            surface = pygame.image.frombuffer(frame.tobytes(), (width, height), "RGB")
            scale = min(area.width / width, area.height / height)
            size = (max(1, int(width * scale)), max(1, int(height * scale)))
            scaled = pygame.Surface(area.size)
            scaled.fill(PANEL)
            image = pygame.transform.smoothscale(surface, size)
            scaled.blit(image, image.get_rect(center=(area.width // 2, area.height // 2)))
            self._frames[key] = scaled
        return self._frames[key]

    def _observations(
        self,
        screen: Any,
        area: Any,
        clip: Clip,
        observations: np.ndarray,
        step: int,
        others: tuple[Clip, ...],
    ) -> None:
        if id(clip) not in self._plots:
            self._plots[id(clip)] = self._plot(clip, observations, others, area)
        screen.blit(self._plots[id(clip)], area.topleft)
        rows = min(observations.shape[1], _MAX_ROWS)
        row_height = (area.height - 30) // max(rows, 1)
        plot_width = area.width - _LABELS - 10
        x = area.x + _LABELS + int(plot_width * step / max(clip.length - 1, 1))
        pygame.draw.line(screen, TEXT, (x, area.y + 28), (x, area.bottom - 2), 1)
        for row in range(rows):
            y = area.y + 30 + row * row_height + row_height // 2
            value = self.small.render(f"{observations[step, row]:+.3f}", True, TEXT)
            screen.blit(value, (area.x + 8, y))

    def _plot(
        self, clip: Clip, observations: np.ndarray, others: tuple[Clip, ...], area: Any
    ) -> Any:
        """A line per observation dimension, on the scale shared with ``others``."""
        surface = pygame.Surface(area.size)
        surface.fill(PANEL)
        title = "each observation over the clip (a plot: no picture was stored)"
        surface.blit(self.small.render(title, True, WARN), (8, 4))
        shared = [observations] + [c.observations for c in others if c.observations is not None]
        rows = min(observations.shape[1], _MAX_ROWS)
        row_height = (area.height - 30) // max(rows, 1)
        for row in range(rows):
            values = np.concatenate([o[:, row] for o in shared if o.shape[1] > row])
            low, high = float(values.min()), float(values.max())
            if high - low < 1e-9:
                low, high = low - 1.0, high + 1.0
            top = 30 + row * row_height
            colour = _PLOT_COLOURS[row % len(_PLOT_COLOURS)]
            surface.blit(self.small.render(clip.names[row], True, colour), (8, top + 2))
            box = pygame.Rect(_LABELS, top + 4, area.width - _LABELS - 10, row_height - 10)
            pygame.draw.rect(surface, BACKGROUND, box)
            if low < 0 < high:
                zero = box.bottom - int(-low / (high - low) * box.height)
                pygame.draw.line(surface, DIM, (box.x, zero), (box.right, zero), 1)
            series = observations[:, row]
            xs = box.x + np.linspace(0, box.width, len(series))
            ys = box.bottom - (series - low) / (high - low) * box.height
            if len(series) > 1:
                points = [(float(a), float(b)) for a, b in zip(xs, ys, strict=True)]
                pygame.draw.lines(surface, colour, False, points, 2)
        extra = observations.shape[1] - rows
        if extra > 0:
            more = self.small.render(f"... and {extra} more", True, DIM)
            surface.blit(more, (8, area.height - 18))
        return surface

    def _text(self, screen: Any, area: Any, clip: Clip, scroll: int, prompt: bool) -> None:
        lines = self.lines(clip, area.width - 8, prompt=prompt)
        shown = self.visible_lines(area) - 1  # the last line says whether there is more
        y = area.y
        for line in lines[scroll : scroll + shown]:
            colour = {_PROMPT: ACCENT, _RESPONSE: ACCENT, _EMPTY: DIM}.get(line, TEXT)
            screen.blit(self.font.render(line, True, colour), (area.x + 4, y))
            y += self.font.get_linesize()
        if scroll + shown < len(lines):
            more = self.small.render("more below: page down or the wheel", True, DIM)
            screen.blit(more, (area.x + 4, area.bottom - self.small.get_linesize()))

    def wrap(self, text: str, width: int) -> list[str]:
        """``text`` as lines at most ``width`` pixels wide in the text font (``_layout.wrap``)."""
        return wrap(self.font, text, width)
