"""The labeling window: a thin pygame loop that turns events into commands and draws the state.

Two clips play side by side, in sync, at the environment's ``render_fps``
(``+``/``-`` change the speed), with a short pause between loops; text pairs
show their prompt once, across the top, and the two responses side by side,
wrapped and scrollable (page up/down, the mouse wheel), with no playback
controls. A query of K > 2 segments (a ranking) shows K panels, numbered; the
person presses the best one's number, then the next best's. What "better" means
for the task is written above the clips; the pair's id, the labels given and
left, what is waiting, the trainer's status and the key legend are always on
screen. The window is resizable and lays itself out for any size down to
``MIN_SIZE`` (``prefgym.label._layout``). Keys and clicks go through the key
maps of ``prefgym.label._keys`` into a
:class:`prefgym.label._session.LabelingSession`, which commits every judgment to
the store the moment it is made.

The window never calls ``sys.exit``: :func:`run_window` returns a summary when
the person quits (``q``, Esc, the close button, Ctrl-C in the terminal).

One module, longer than most: the event loop and its drawing calls belong to one
window and change together; the state it drives lives in ``_state``, where things
go in ``_layout``, and the painting of clips in ``_painter``.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefgym.label._clips import Clip
from prefgym.label._keys import (
    LEGEND,
    RANKING_LEGEND,
    TEXT_LEGEND,
    command_for_click,
    command_for_key,
    command_for_text,
)
from prefgym.label._layout import (
    DEFAULT_SIZE,
    MIN_SIZE,
    Box,
    Fonts,
    check_size,
    fit,
    font_points,
    lay_out,
)
from prefgym.label._session import LabelingSession
from prefgym.label._state import (
    Choose,
    Command,
    Mode,
    Pick,
    Quit,
    Scroll,
    Submit,
    Tick,
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
_PROMPT_LINES = 4  # the most lines of a shared prompt shown above the responses
_SHOWING = (Mode.LABELING, Mode.RANKING)
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
        size: tuple[int, int] = DEFAULT_SIZE,
        instructions: str = "",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Open the window (the SDL video driver decides where: X11, Wayland, or ``dummy``).

        Args:
            session: The session it shows.
            size: Width and height in pixels, at least :data:`MIN_SIZE`; the person
                may resize the window afterwards.
            instructions: What "better" means for the task, shown above the clips:
                a one-line criterion, then (after a newline) details such as a rubric.
            clock: Seconds (monotonic), to time the switch from a judgment to the next pair.
        """
        size = check_size(size)
        self.session = session
        session.defer_prefetch = True  # the next pair loads once this one is drawn
        self.instructions = instructions
        self.clock = clock
        pygame.display.init()
        pygame.font.init()
        self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        try:  # the window manager keeps the window readable
            with warnings.catch_warnings():  # pygame-ce would rather own the window itself
                warnings.simplefilter("ignore", DeprecationWarning)
                pygame.Window.from_display_module().minimum_size = MIN_SIZE
        except (AttributeError, pygame.error):  # pragma: no cover (an older pygame-ce)
            pass
        pygame.key.set_repeat()  # no repeated key presses from pygame itself
        pygame.key.start_text_input()  # characters (= + - s u q 1-9) come as TEXTINPUT events
        pygame.display.set_caption(f"prefgym label - {session.labeler}")
        self._font_path = pygame.font.match_font("dejavusans")
        self._arrows = self._font_path is not None  # pygame's default font has no arrows
        self._fonts: dict[int, Any] = {}
        self.frames_drawn = 0
        self.prompt: str | None = None
        """The prompt the responses on screen answer, drawn once above them (text pairs)."""
        self._count = 2
        self._legend: tuple[tuple[str, str], ...] = LEGEND
        self._painted_query = (-1, 0)
        self._typed = False
        self._view: tuple[Any, ...] | None = None
        self._key_time: float | None = None
        self._switches: list[float] = []
        self.pairs_shown: list[tuple[int, float]] = []
        """``(query id, clock)`` when each pair was first on screen (a latency benchmark
        times real key presses against it)."""
        self._last_step: tuple[int, int, float] | None = None
        self._intervals: list[float] = []
        self._target_fps = float("nan")
        self._resize(size)

    # ---------------------------------------------------------------- layout

    def _font(self, points: int) -> Any:
        if points not in self._fonts:
            self._fonts[points] = pygame.font.Font(self._font_path, points)
        return self._fonts[points]

    def _resize(self, size: tuple[int, int]) -> None:
        """Fonts and layout for a window of ``size``."""
        big, text, small = font_points(size)
        self.big, self.font, self.small = self._font(big), self._font(text), self._font(small)
        self.painter = ClipPainter(self.font, self.small)
        self._lay_out()

    def _lay_out(self) -> None:
        """Place everything for the window's size and the query on screen."""
        size = self.screen.get_size()
        width = size[0]
        dot = "  \N{MIDDLE DOT}  "
        header = (
            dot.join(["pair 00000", "label 0000", "0000 left in the budget", "0000 more waiting"]),
            dot.join([self.session.labeler, "speed 0.25x", "paused", "step 0000/0000"]),
        )
        prompt_height = 0
        if self.prompt is not None:
            margin = max(8, self.font.get_linesize() // 2)
            prompt_lines = 2 if size[1] < 700 else _PROMPT_LINES
            self._prompt_lines = prompt_lines
            prompt_height = self.painter.prompt_height(
                self.prompt, width - 2 * margin, prompt_lines
            )
        self.layout = lay_out(
            size,
            Fonts(self.big, self.font, self.small),
            panels=self._count,
            header=header,
            instructions=self.instructions,
            prompt_height=prompt_height,
            legend=[(self._glyphs(k), a) for k, a in self._legend],
            click_note="or click a panel",
        )
        rects = [pygame.Rect(box) for box in self.layout.panels]
        self.panels: dict[str, Any] = dict(zip(self._panel_names(), rects, strict=True))
        self.areas: dict[str, Any] = {
            name: pygame.Rect(box)
            for name, box in zip(self._panel_names(), self.layout.areas, strict=True)
        }
        self.prompt_box = None if self.layout.prompt is None else pygame.Rect(self.layout.prompt)
        self.painter.reset()
        self._view = None

    def _panel_names(self) -> list[str]:
        if self._count == 2:
            return ["left", "right"]
        return [str(i + 1) for i in range(self._count)]

    def _follow_pair(self) -> None:
        """Forget the last query's pictures and lay the window out for the one now on screen."""
        pair = self.session.pair
        painted = (-1, 0) if pair is None else (pair.query.id, pair.version)
        if painted == self._painted_query:
            return
        self._painted_query = painted
        self.painter.reset()
        if pair is None:
            return
        prompts = {clip.prompt for clip in pair.clips}
        prompt = prompts.pop() if pair.kind == "text" and len(prompts) == 1 else None
        legend = LEGEND
        if len(pair.clips) > 2:
            legend = RANKING_LEGEND
        elif pair.kind == "text":
            legend = TEXT_LEGEND
        if (prompt, len(pair.clips), legend) != (self.prompt, self._count, self._legend):
            self.prompt, self._count, self._legend = prompt, len(pair.clips), legend
            self._lay_out()

    # ---------------------------------------------------------------- events

    def handle_event(self, event: Any) -> None:
        """Turn one pygame event into a command (if it means one) and hand it to the session.

        A held key repeats: pygame drops the repeated key presses, but SDL's text
        input types the character again and again. A character counts only when a
        fresh key press that types one came just before it, so a held ``s`` stores
        one answer, even while other keys are pressed.
        """
        mode = self.session.state.mode
        self._follow_pair()
        command: Command | None = None
        if event.type == pygame.QUIT:
            command = Quit("window closed")
        elif event.type == pygame.KEYDOWN:
            if getattr(event, "repeat", False):
                return
            self._typed = bool(getattr(event, "unicode", "x"))  # it may type one character
            name = pygame.key.name(event.key)
            if name in ("page up", "page down") and mode in _SHOWING:
                page = max(self.painter.visible_lines(self._first_area()) - 2, 1)
                command = Scroll(-page if name == "page up" else page, self._scroll_limit())
            else:
                command = command_for_key(mode, name)
        elif event.type == pygame.TEXTINPUT:
            if not self._typed:
                return  # typed again by a held key
            self._typed = False
            command = command_for_text(mode, event.text)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            for panel, rect in self.panels.items():
                if rect.collidepoint(event.pos):
                    command = command_for_click(mode, panel)
        elif event.type == pygame.MOUSEWHEEL and mode in _SHOWING:
            command = Scroll(-3 * event.y, self._scroll_limit())
        elif event.type in (pygame.VIDEORESIZE, pygame.WINDOWRESIZED, pygame.WINDOWSIZECHANGED):
            self.screen = pygame.display.get_surface() or self.screen
            self._resize(self.screen.get_size())
        elif event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
            self._view = None  # redraw
        if command is not None:
            self.handle(command)

    def handle(self, command: Command) -> None:
        """Hand a command to the session, timing judgments until the next pair shows."""
        before, pressed = self.session.state.pair, self.clock()
        self.session.handle(command)
        answered = isinstance(command, Choose | Pick | Submit)
        if answered and self._key_time is None and self.session.state.pair is not before:
            self._key_time = pressed  # a judgment took the query off the screen

    def resize(self, size: tuple[int, int]) -> None:
        """Resize the window to ``size`` (as the person dragging its border would)."""
        self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        self._resize(self.screen.get_size())

    # --------------------------------------------------------------- drawing

    def draw(self) -> bool:
        """Redraw if anything visible changed; returns whether it drew."""
        state = self.session.state
        pair = self.session.pair
        query_id = -1 if pair is None else pair.query.id
        view = (
            state.mode,
            query_id,
            -1 if pair is None else pair.version,
            state.frame,
            state.hold > 0,
            state.paused,
            state.speed,
            state.scroll,
            state.order,
            state.message,
            state.trainer,
            state.budget_left,
            state.pending,
            self.screen.get_size(),
        )
        if view == self._view:
            return False
        self._follow_pair()
        self._view = view
        self.screen.fill(BACKGROUND)
        self._draw_header()
        self._draw_instructions()
        if pair is not None and self.prompt is not None and self.prompt_box is not None:
            self.painter.paint_prompt(self.screen, self.prompt_box, self.prompt, self._prompt_lines)
        for index, rect in enumerate(self.panels.values()):
            pygame.draw.rect(self.screen, PANEL, rect, border_radius=6)
            if pair is not None and len(pair.clips) == len(self.panels):
                self._draw_panel(index, pair.clips)
        if pair is None:
            self._draw_waiting()
        self._draw_footer()
        pygame.display.flip()
        self.frames_drawn += 1
        self._measure(query_id)
        return True

    def _draw_waiting(self) -> None:
        state = self.session.state
        if state.budget_left == 0:
            text = "the label budget is spent: nothing left to judge (q quits)"
        else:
            trainer = state.trainer or "the trainer's status is not known yet"
            text = f"no pair to judge right now ({trainer})"
        room = self.layout.panels[0]
        for box in self.layout.panels[1:]:
            room = Box(room.x, room.y, box.right - room.x, max(room.bottom, box.bottom) - room.y)
        rect = pygame.Rect(room)
        surface = self.font.render(fit(self.font, text, rect.width - 20), True, DIM)
        self.screen.blit(surface, surface.get_rect(center=rect.center))

    def _measure(self, query_id: int) -> None:
        now = self.clock()
        if query_id >= 0 and (not self.pairs_shown or self.pairs_shown[-1][0] != query_id):
            self.pairs_shown.append((query_id, now))
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
            self._last_step = (query_id, 0, now)
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
        box: Any,
        colour: tuple[int, int, int] = TEXT,
        font: Any = None,
        *,
        right: bool = False,
    ) -> int:
        """Draw ``text`` in ``box`` (a Box or Rect), shortened to fit; returns its width."""
        font = font or self.font
        x, y, width = box[0], box[1], box[2]
        surface = font.render(fit(font, self._glyphs(text), width), True, colour)
        if right:
            x += width - surface.get_width()
        self.screen.blit(surface, (x, y))
        return int(surface.get_width())

    def _glyphs(self, text: str) -> str:
        if self._arrows:
            return text
        for arrow, word in _ARROWS.items():
            text = text.replace(arrow, word)
        return text

    def _draw_header(self) -> None:
        state = self.session.state
        dot = "  \N{MIDDLE DOT}  "
        if state.pair is not None:
            parts = [f"pair {state.pair.query_id}", f"label {state.pair.number}"]
        else:
            parts = ["no pair on screen"]
        if state.budget_left is not None:
            parts.append(f"{state.budget_left} left in the budget")
        parts.append(f"{state.pending} more waiting")
        self._text(dot.join(parts), self.layout.header, TEXT, self.big)
        right = self.session.labeler
        if state.pair is not None and state.pair.kind != "text":
            playing = "paused" if state.paused else "playing"
            right += f"{dot}speed {state.speed:g}x{dot}{playing}"
            right += f"{dot}step {state.frame + 1}/{state.pair.length}"
        header_right = self.layout.header_right
        self._text(right, header_right, DIM, right=header_right.x > self.layout.margin)

    def _draw_instructions(self) -> None:
        for line, box, first in self.layout.instructions:
            if first:
                self._text(line, box, ACCENT, self.font)
            else:
                self._text(line, box, DIM, self.small)

    def _draw_footer(self) -> None:
        state = self.session.state
        layout = self.layout
        status = layout.status
        judged = f"judged in this window: {state.judged}"
        width = self._text(judged, status, DIM, right=True)
        message = Box(status.x, status.y, status.width - width - layout.margin, status.height)
        self._text(state.message, message, ACCENT)
        trainer = state.trainer
        colour = WARN if trainer.startswith(("trainer stopped", "no trainer")) else DIM
        self._text(trainer, layout.trainer, colour, self.small)
        for entry in layout.legend:
            box = pygame.Rect(entry.key_box)
            pygame.draw.rect(self.screen, TEXT, box, border_radius=4)
            self.screen.blit(self.font.render(entry.keys, True, BACKGROUND), (box.x + 6, box.y + 3))
            action = Box(*entry.action_at, entry.action_width + 2, box.height)
            self._text(entry.action, action, TEXT)
        self._text("or click a panel", layout.click_note, DIM, self.small)

    def _draw_panel(self, index: int, clips: tuple[Clip, ...]) -> None:
        layout = self.layout
        title, area = layout.titles[index], layout.areas[index]
        clip = clips[index]
        others = tuple(c for i, c in enumerate(clips) if i != index)
        state = self.session.state
        if len(clips) == 2:
            side = ("left", "right")[index]
            arrow = "\N{LEFTWARDS ARROW}" if side == "left" else "\N{RIGHTWARDS ARROW}"
            width = self._text(side.upper(), title, TEXT, self.big)
            hint = Box(title.x + width + 12, title.y + 4, title.width - width - 12, title.height)
            self._text(f"{arrow} or click", hint, DIM, self.small)
            if clip.kind == "text" and clip.response == others[0].response:
                self._text("the same text on both sides", hint, WARN, self.small, right=True)
        else:
            width = self._text(str(index + 1), title, TEXT, self.big)
            hint = Box(title.x + width + 12, title.y + 4, title.width - width - 12, title.height)
            if index in state.order:
                rank = state.order.index(index) + 1
                words = "best" if rank == 1 else "worst" if rank == len(clips) else f"#{rank}"
                self._text(f"ranked {words}", hint, ACCENT, self.font)
            else:
                self._text(f"press {index + 1} or click", hint, DIM, self.small)
        step = min(state.frame, clip.length - 1)
        self.painter.paint(
            self.screen,
            pygame.Rect(area),
            clip,
            step=step,
            scroll=state.scroll,
            others=others,
            prompt=self.prompt is None,
        )
        note = layout.notes[index]
        note_colour = WARN if clip.kind == "observations" else DIM
        self._text(clip.note, note, note_colour, self.small)
        if clip.kind != "text":
            bar = pygame.Rect(note.x + 4, note.bottom - 6, note.width - 8, 4)
            pygame.draw.rect(self.screen, BACKGROUND, bar)
            done = bar.copy()
            done.width = int(bar.width * (step + 1) / clip.length)
            pygame.draw.rect(self.screen, ACCENT, done)

    def _first_area(self) -> Any:
        return pygame.Rect(self.layout.areas[0])

    def _scroll_limit(self) -> int:
        """The last first line of text worth scrolling to."""
        pair = self.session.pair
        if pair is None or pair.kind != "text":
            return 0
        self._follow_pair()
        area, prompt = self._first_area(), self.prompt is None
        lines = max(len(self.painter.lines(c, area.width - 8, prompt=prompt)) for c in pair.clips)
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
    size: tuple[int, int] = DEFAULT_SIZE,
    instructions: str = "",
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
        size: Window size in pixels, at least ``prefgym.label._layout.MIN_SIZE``.
        instructions: What "better" means for the task, shown above the clips (a
            one-line criterion; details such as a rubric after a newline).
        clock: Seconds (monotonic); drives playback.
        sleep: Waits between two passes of the loop.
        max_seconds: Close by itself after this long (None: never).
        on_frame: Called once per pass of the loop (tests post events here).

    Returns:
        A summary; every judgment is already in the store.
    """
    size = check_size(size)
    start = clock()
    session: LabelingSession | None = None
    window: LabelWindow | None = None
    # Ctrl-C asks the loop to quit rather than raising inside a store write or a lock
    interrupted = threading.Event()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        # SDL starts on this thread before the session's loader thread renders clips
        # (gymnasium's classic-control renderers call pygame.init() themselves)
        pygame.init()
        session = LabelingSession(
            store,
            labeler,
            budget=budget,
            lease_seconds=lease_seconds,
            fps=fps,
            speed=speed,
            rejudge=rejudge,
            clock=clock,
        )
        window = LabelWindow(session, size=size, instructions=instructions, clock=clock)
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
            session.sharpen()
            window.draw()
            session.run_deferred()  # the next pair loads once this one is on screen
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
