"""The labeling window: a thin pygame loop that turns events into commands and draws the state.

Two clips play side by side, in sync, at the environment's ``render_fps``
(``+``/``-`` change the speed), with a short pause between loops; text pairs
show their prompt once, across the top, and the two responses side by side,
wrapped and scrollable (page up/down, the mouse wheel), with no playback
controls. The pair's number, the labels left in the budget and the key
legend are always on screen. Ranking queries (more than two segments) are not
shown: the window judges pairs only, and says how many rankings it skipped.
Keys and clicks go through the key maps of ``prefgym.label._state`` into a
:class:`prefgym.label._session.LabelingSession`, which commits every judgment to the
store the moment it is made.

The window never calls ``sys.exit``: :func:`run_window` returns a summary when
the person quits (``q``, Esc, the close button, Ctrl-C in the terminal).

One module, longer than most: the event loop, its layout and its drawing calls belong to
one window and change together; the state it drives lives in ``_state`` and the painting
of clips in ``_painter``.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefgym.label._clips import Clip
from prefgym.label._session import LabelingSession
from prefgym.label._state import (
    LEGEND,
    TEXT_LEGEND,
    Choose,
    Command,
    Mode,
    Quit,
    Scroll,
    Tick,
    command_for_click,
    command_for_key,
    command_for_text,
)
from prefgym.store import PreferenceStore

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_VIDEO_X11_WMCLASS", "prefgym")  # the window's class on X11
try:  # the window needs pygame-ce; the rest of prefgym does not
    import pygame
except ImportError as error:  # pragma: no cover
    raise ImportError(
        "the labeling window needs pygame-ce: pip install pygame-ce (a prefgym dependency)"
    ) from error

from prefgym.label._painter import ACCENT, BACKGROUND, DIM, PANEL, TEXT, WARN, ClipPainter  # noqa: E402

_LOOP_SECONDS = 1 / 120  # how often events are read: clips up to 120 fps stay smooth
_PROMPT_LINES = 4  # the most lines of a shared prompt shown above two responses
_ARROWS = {
    "\N{LEFTWARDS ARROW}": "Left",
    "\N{RIGHTWARDS ARROW}": "Right",
    "\N{UPWARDS ARROW}": "Up",
    "\N{DOWNWARDS ARROW}": "Down",
}


@dataclass(frozen=True)
class WindowSummary:
    """What a labeling session did, returned when the window closes."""

    labeler: str
    """Whose judgments they are."""
    judged: int
    """Judgments made in this window that still stand (all are in the store)."""
    undone: int
    """Judgments undone."""
    quit_reason: str
    """``quit key``, ``window closed``, ``interrupted`` or ``time limit``."""
    seconds: float
    """How long the window was open."""
    frames_drawn: int
    """Screen updates."""
    target_fps: float
    """Clip steps per second asked for (``render_fps`` x speed) at the end; NaN if none shown."""
    playback_fps: float
    """Clip steps per second measured while playing (NaN if none)."""
    switch_ms_max: float
    """Longest time from a judgment's key press to the next pair on screen (NaN if none)."""
    switch_ms_mean: float
    """Mean of the same."""


class LabelWindow:
    """The pygame window: maps events to commands for a session and draws its state."""

    def __init__(
        self,
        session: LabelingSession,
        *,
        size: tuple[int, int] = (1200, 760),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Open the window (the SDL video driver decides where: X11, Wayland, or ``dummy``)."""
        self.session = session
        self.clock = clock
        pygame.display.init()
        pygame.font.init()
        self.screen = pygame.display.set_mode(size)
        pygame.key.start_text_input()  # characters (= + - s u q) come as TEXTINPUT events
        pygame.display.set_caption(f"prefgym label - {session.labeler}")
        path = pygame.font.match_font("dejavusans")
        self._arrows = path is not None  # pygame's default font has no arrow glyphs
        self.font = pygame.font.Font(path, 17)
        self.small = pygame.font.Font(path, 14)
        self.big = pygame.font.Font(path, 22)
        self.frames_drawn = 0
        self.painter = ClipPainter(self.font, self.small)
        self.prompt: str | None = None
        """The prompt both responses on screen answer, drawn once above them (text pairs)."""
        self._layout(size)
        self._painted_query = -1
        self._text_pair = False
        self._view: tuple[Any, ...] | None = None
        self._key_time: float | None = None
        self._switches: list[float] = []
        self._last_step: tuple[int, int, float] | None = None
        self._intervals: list[float] = []
        self._target_fps = float("nan")

    def _layout(self, size: tuple[int, int]) -> None:
        """Place the panels; a shared prompt (``self.prompt``) gets a box above them."""
        width, height = size
        margin, top, bottom = 16, 64, 118
        self.prompt_box = None
        if self.prompt is not None:
            box_height = self.painter.prompt_height(self.prompt, width - 2 * margin, _PROMPT_LINES)
            self.prompt_box = pygame.Rect(margin, top, width - 2 * margin, box_height)
            top += box_height + 10
        panel_width = (width - 3 * margin) // 2
        self.panels = {
            "left": pygame.Rect(margin, top, panel_width, height - top - bottom),
            "right": pygame.Rect(2 * margin + panel_width, top, panel_width, height - top - bottom),
        }
        below = 50 if self.prompt is not None else 78  # text has no note or progress bar
        self.areas = {  # where the clips go: below a panel's title, above its note
            side: pygame.Rect(r.x + 10, r.y + 40, r.width - 20, r.height - below)
            for side, r in self.panels.items()
        }
        self.status_y = height - bottom + 10
        self.legend_y = height - bottom + 42

    def _follow_pair(self) -> None:
        """Forget the last pair's pictures and lay the window out for the pair now on screen."""
        pair = self.session.pair
        query_id = -1 if pair is None else pair.query.id
        if query_id == self._painted_query:
            return
        self._painted_query = query_id
        self.painter.reset()
        if pair is not None:
            self._text_pair = pair.kind == "text"
        prompt = None
        if pair is not None and pair.kind == "text" and pair.left.prompt == pair.right.prompt:
            prompt = pair.left.prompt
        if prompt != self.prompt:
            self.prompt = prompt
            self._layout(self.screen.get_size())

    # ---------------------------------------------------------------- events

    def handle_event(self, event: Any) -> None:
        """Turn one pygame event into a command (if it means one) and hand it to the session."""
        mode = self.session.state.mode
        self._follow_pair()
        command: Command | None = None
        if event.type == pygame.QUIT:
            command = Quit("window closed")
        elif event.type == pygame.KEYDOWN:
            name = pygame.key.name(event.key)
            if name in ("page up", "page down") and mode is Mode.LABELING:
                page = max(self.painter.visible_lines(self.areas["left"]) - 2, 1)
                command = Scroll(-page if name == "page up" else page, self._scroll_limit())
            else:
                command = command_for_key(mode, name)
        elif event.type == pygame.TEXTINPUT:
            command = command_for_text(mode, event.text)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            for panel, rect in self.panels.items():
                if rect.collidepoint(event.pos):
                    command = command_for_click(mode, panel)
        elif event.type == pygame.MOUSEWHEEL and mode is Mode.LABELING:
            command = Scroll(-3 * event.y, self._scroll_limit())
        elif event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
            self._view = None  # redraw
        if command is not None:
            self.handle(command)

    def handle(self, command: Command) -> None:
        """Hand a command to the session, timing judgments until the next pair shows."""
        if isinstance(command, Choose) and self._key_time is None:
            self._key_time = self.clock()
        self.session.handle(command)

    # --------------------------------------------------------------- drawing

    def draw(self) -> bool:
        """Redraw if anything visible changed; returns whether it drew."""
        state = self.session.state
        pair = self.session.pair
        query_id = -1 if pair is None else pair.query.id
        view = (
            state.mode,
            query_id,
            state.frame,
            state.hold > 0,
            state.paused,
            state.speed,
            state.scroll,
            state.message,
            state.budget_left,
            state.pending,
            state.rankings,
        )
        if view == self._view:
            return False
        self._view = view
        self._follow_pair()
        self.screen.fill(BACKGROUND)
        self._draw_header()
        if pair is not None and self.prompt is not None and self.prompt_box is not None:
            self.painter.paint_prompt(self.screen, self.prompt_box, self.prompt, _PROMPT_LINES)
        for side, rect in self.panels.items():
            pygame.draw.rect(self.screen, PANEL, rect, border_radius=6)
            if pair is not None:
                clip, other = (pair.left, pair.right) if side == "left" else (pair.right, pair.left)
                self._draw_panel(side, clip, other)
        if pair is None:
            if state.budget_left == 0:
                text = "the label budget is spent: nothing left to judge (q quits)"
            elif state.rankings:
                text = (
                    f"only ranking queries are waiting ({state.rankings}): "
                    "this window judges pairs only (q quits)"
                )
            else:
                text = "waiting for pairs to judge (the trainer asks for more as it goes)"
            self._centred(text, self.panels["left"].union(self.panels["right"]))
        self._draw_footer()
        pygame.display.flip()
        self.frames_drawn += 1
        self._measure(query_id)
        return True

    def _measure(self, query_id: int) -> None:
        now = self.clock()
        state = self.session.state
        if query_id >= 0 and self._key_time is not None:
            if self._last_step is None or self._last_step[0] != query_id:
                self._switches.append(now - self._key_time)
                self._key_time = None
        if state.mode is Mode.WAITING:
            self._key_time = None  # nothing pending: not a stall of the window
        if query_id < 0 or state.paused or state.hold > 0 or state.pair is None:
            self._last_step = None
            return
        if state.pair.kind == "text":  # nothing plays
            return
        self._target_fps = state.pair.fps * state.speed
        if (
            self._last_step is not None
            and self._last_step[0] == query_id
            and state.frame == self._last_step[1] + 1
        ):
            self._intervals.append(now - self._last_step[2])
        if self._last_step is None or self._last_step[:2] != (query_id, state.frame):
            self._last_step = (query_id, state.frame, now)

    def _text(
        self,
        text: str,
        position: tuple[int, int],
        colour: tuple[int, int, int] = TEXT,
        font: Any = None,
    ) -> int:
        surface = (font or self.font).render(self._glyphs(text), True, colour)
        self.screen.blit(surface, position)
        return int(surface.get_width())

    def _glyphs(self, text: str) -> str:
        if self._arrows:
            return text
        for arrow, word in _ARROWS.items():
            text = text.replace(arrow, word)
        return text

    def _centred(self, text: str, rect: Any, colour: tuple[int, int, int] = DIM) -> None:
        surface = self.font.render(text, True, colour)
        self.screen.blit(surface, surface.get_rect(center=rect.center))

    def _draw_header(self) -> None:
        state = self.session.state
        if state.pair is not None:
            parts = [f"pair {state.pair.number}"]
        else:
            parts = ["no pair on screen"]
        if state.budget_left is not None:
            parts.append(f"{state.budget_left} labels left in the budget")
        parts.append(f"{state.pending} more waiting")
        self._text("  \N{MIDDLE DOT}  ".join(parts), (16, 12), TEXT, self.big)
        playing = "paused" if state.paused else "playing"
        dot = "  \N{MIDDLE DOT}  "
        right = self.session.labeler
        if state.pair is not None and state.pair.kind != "text":
            right += f"{dot}speed {state.speed:g}x{dot}{playing}"
            right += f"{dot}step {state.frame + 1}/{state.pair.length}"
        surface = self.font.render(right, True, DIM)
        self.screen.blit(surface, (self.screen.get_width() - surface.get_width() - 16, 16))

    def _draw_footer(self) -> None:
        state = self.session.state
        judged = f"judged in this window: {state.judged}"
        self._text(judged, (16, self.status_y), DIM)
        self._text(state.message, (260, self.status_y), ACCENT)
        if state.rankings:
            skipped = f"{state.rankings} ranking quer{'y' if state.rankings == 1 else 'ies'}"
            skipped += " not shown: this window judges pairs only"
            surface = self.small.render(skipped, True, WARN)
            x = self.screen.get_width() - surface.get_width() - 16
            self.screen.blit(surface, (x, self.status_y + 3))
        x, y = 16, self.legend_y
        for keys, action in TEXT_LEGEND if self._text_pair else LEGEND:
            key_surface = self.font.render(self._glyphs(keys), True, BACKGROUND)
            box = key_surface.get_rect(topleft=(x + 6, y + 4)).inflate(12, 6)
            pygame.draw.rect(self.screen, TEXT, box, border_radius=4)
            self.screen.blit(key_surface, (x + 6, y + 4))
            x = box.right + 6
            x += self._text(action, (x, y + 4), TEXT) + 22
            if x > self.screen.get_width() - 200:
                x, y = 16, y + 34
        self._text("or click a panel", (x, y + 4), DIM, self.small)

    def _draw_panel(self, side: str, clip: Clip, other: Clip) -> None:
        rect, area = self.panels[side], self.areas[side]
        arrow = "\N{LEFTWARDS ARROW}" if side == "left" else "\N{RIGHTWARDS ARROW}"
        self._text(side.upper(), (rect.x + 12, rect.y + 8), TEXT, self.big)
        self._text(f"{arrow} or click", (rect.x + 100, rect.y + 12), DIM, self.small)
        state = self.session.state
        step = min(state.frame, clip.length - 1)
        shared = self.prompt is not None
        self.painter.paint(
            self.screen,
            area,
            clip,
            step=step,
            scroll=state.scroll,
            others=(other,),
            prompt=not shared,
        )
        if clip.kind == "text" and clip.response == other.response:
            same = self.small.render("the same text on both sides", True, WARN)
            self.screen.blit(same, (rect.right - same.get_width() - 12, rect.y + 12))
        note_colour = WARN if clip.kind == "observations" else DIM
        self._text(clip.note, (rect.x + 12, rect.bottom - 32), note_colour, self.small)
        if clip.kind != "text":
            bar = pygame.Rect(rect.x + 12, rect.bottom - 12, rect.width - 24, 4)
            pygame.draw.rect(self.screen, BACKGROUND, bar)
            done = bar.copy()
            done.width = int(bar.width * (step + 1) / clip.length)
            pygame.draw.rect(self.screen, ACCENT, done)

    def _scroll_limit(self) -> int:
        """The last first line of text worth scrolling to."""
        pair = self.session.pair
        if pair is None or pair.kind != "text":
            return 0
        self._follow_pair()
        area, prompt = self.areas["left"], self.prompt is None
        lines = max(
            len(self.painter.lines(c, area.width - 8, prompt=prompt))
            for c in (pair.left, pair.right)
        )
        return max(0, lines - (self.painter.visible_lines(area) - 1))

    # ---------------------------------------------------------------- summary

    def summary(self, seconds: float) -> WindowSummary:
        """What this window did."""
        state = self.session.state
        nan = float("nan")
        return WindowSummary(
            labeler=self.session.labeler,
            judged=state.judged,
            undone=state.undone,
            quit_reason=state.quit_reason or "quit",
            seconds=seconds,
            frames_drawn=self.frames_drawn,
            target_fps=self._target_fps,
            playback_fps=1 / statistics.mean(self._intervals) if self._intervals else nan,
            switch_ms_max=1000 * max(self._switches) if self._switches else nan,
            switch_ms_mean=1000 * statistics.mean(self._switches) if self._switches else nan,
        )

    def close(self) -> None:
        """Close the window (pygame's display only; the store stays open)."""
        pygame.display.quit()


def run_window(
    store: PreferenceStore,
    labeler: str,
    *,
    budget: int | None = None,
    lease_seconds: float = 300.0,
    fps: float | None = None,
    speed: float = 1.0,
    rejudge: bool = False,
    size: tuple[int, int] = (1200, 760),
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
    max_seconds: float | None = None,
    on_frame: Callable[[LabelWindow], None] | None = None,
) -> WindowSummary:
    """Open the labeling window on ``store`` and run it until the person quits.

    Args:
        store: The run's preference store.
        labeler: The person's id, stored with each judgment.
        budget: The run's label budget, to show the labels left (None: not shown).
        lease_seconds: How long a pair on screen stays reserved for this window.
        fps: Playback rate at speed 1 (None: the environment's ``render_fps``).
        speed: Initial speed, one of ``prefgym.label._state.SPEEDS``.
        rejudge: Also show pairs others judged (to measure agreement).
        size: Window size in pixels.
        clock: Seconds (monotonic); drives playback.
        sleep: Waits between two passes of the loop.
        max_seconds: Close by itself after this long (None: never).
        on_frame: Called once per pass of the loop (tests post events here).

    Returns:
        A summary; every judgment is already in the store.
    """
    start = clock()
    session: LabelingSession | None = None
    window: LabelWindow | None = None
    # Ctrl-C asks the loop to quit rather than raising inside a store write or a lock
    interrupted = threading.Event()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        session = LabelingSession(
            store,
            labeler,
            budget=budget,
            lease_seconds=lease_seconds,
            fps=fps,
            speed=speed,
            rejudge=rejudge,
        )
        window = LabelWindow(session, size=size, clock=clock)
        last = start
        while session.state.mode is not Mode.CLOSED:
            if interrupted.is_set():
                session.handle(Quit("interrupted"))
                break
            for event in pygame.event.get():
                window.handle_event(event)
            now = clock()
            session.handle(Tick(max(now - last, 0.0)))
            last = now
            window.draw()
            if on_frame is not None:
                on_frame(window)
            if max_seconds is not None and now - start >= max_seconds:
                session.handle(Quit("time limit"))
            sleep(max(0.0, _LOOP_SECONDS - (clock() - now)))
    except KeyboardInterrupt:  # Ctrl-C in the terminal: close as if the person quit
        if session is not None:
            session.handle(Quit("interrupted"))
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        if session is not None:
            session.close()
        if window is not None:
            window.close()
    if window is None:  # interrupted before the window opened
        nan = float("nan")
        return WindowSummary(labeler, 0, 0, "interrupted", clock() - start, 0, nan, nan, nan, nan)
    return window.summary(clock() - start)


def describe_summary(summary: WindowSummary) -> str:
    """A few lines for the terminal after the window closed."""
    undone = f", {summary.undone} undone" if summary.undone else ""
    lines = [
        f"{summary.labeler} judged {summary.judged} pair(s) in this window{undone}; "
        f"all are stored ({summary.quit_reason})."
    ]
    if summary.switch_ms_max == summary.switch_ms_max:  # not NaN
        line = (
            f"next pair on screen {summary.switch_ms_mean:.0f} ms after a judgment "
            f"(longest {summary.switch_ms_max:.0f} ms)"
        )
        if summary.playback_fps == summary.playback_fps:  # clips played (text does not)
            line += f"; playback {summary.playback_fps:.1f} of {summary.target_fps:.1f} steps/s"
        lines.append(line)
    return "\n".join(lines)
