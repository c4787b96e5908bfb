"""The labeling window's model: a pure state, the commands that change it, and the key maps.

Nothing here draws or touches the store. :func:`apply` maps a state and a
command to the next state; a command that needs the outside world (commit a
judgment, undo one, fetch the next pair) leaves an *effect* in
``state.effects``, and whoever drives the state (``prefgym.label._session.LabelingSession``)
performs it and answers with another command (``Committed``, ``Reverted``,
``Shown``, ``Failed``). The state also says when the screen is still (the
pause between two loops, a paused clip, a text pair), so that the next pair is
loaded then (``Prefetch``) and a judgment shows the next pair at once. Time
comes in as ``Tick(seconds)``, so playback is deterministic under test. Named
keys come in as names (``pygame.key.name``) and characters as the text typed, so
this module never imports pygame.

One module, longer than most: the transition ``apply`` and the key maps it reads are one
table of behaviour, which tests drive without a display; splitting it would scatter the
cases of one ``match``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import Literal

from prefgym.judgments import Preference

SPEEDS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Playback speeds, as multiples of ``render_fps``; ``+`` and ``-`` step through them."""
LOOP_PAUSE = 0.6
"""Seconds the last frame stays on screen before the clips start again."""
POLL_SECONDS = 0.5
"""How often a window with nothing to show asks the store for a new pair."""
LOOKING = "looking for a pair to judge..."

ClipKind = Literal["frames", "observations", "text"]


class Mode(enum.Enum):
    """What the window is doing; each mode has its own key map."""

    WAITING = "waiting"
    """No pair on screen: the store has none pending (or one is being fetched)."""
    LABELING = "labeling"
    """A pair is on screen and can be judged."""
    CLOSED = "closed"
    """The person quit; the window is closing."""


@dataclass(frozen=True)
class PairView:
    """What the state knows of the pair on screen (the pixels stay with the session)."""

    query_id: int
    """Store id of the query."""
    number: int
    """Which label of the budget this is: labels already given + 1."""
    length: int
    """Steps of the longer of the two clips (1 for text)."""
    kind: ClipKind
    """``frames`` (pictures), ``observations`` (a plot, no frames stored) or ``text``."""
    fps: float
    """Steps per second at speed 1: the environment's ``render_fps``."""


@dataclass(frozen=True)
class Done:
    """A judgment made in this session, kept so that ``u`` can undo it."""

    query_id: int
    judgment_id: int
    preference: Preference


# ------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Choose:
    """The person judged the pair on screen (a key or a click)."""

    preference: Preference


@dataclass(frozen=True)
class Undo:
    """Undo this session's last judgment; its pair comes back."""


@dataclass(frozen=True)
class TogglePause:
    """Pause or resume playback."""


@dataclass(frozen=True)
class ChangeSpeed:
    """Step through :data:`SPEEDS`: +1 faster, -1 slower."""

    step: int


@dataclass(frozen=True)
class Scroll:
    """Scroll text pairs by ``lines``; ``limit`` is the last first-line the window can show."""

    lines: int
    limit: int


@dataclass(frozen=True)
class Quit:
    """Close the window (``q``, Esc, the window's close button, Ctrl-C)."""

    reason: str = "quit"


@dataclass(frozen=True)
class Tick:
    """``seconds`` of wall-clock time passed."""

    seconds: float


@dataclass(frozen=True)
class Shown:
    """The session's answer to :class:`Fetch`: the next pair (None: nothing pending)."""

    pair: PairView | None
    budget_left: int | None
    """Labels of the run's budget not given yet, or None if the budget is unknown."""
    pending: int
    """Pairs waiting besides the one shown."""
    rankings: int = 0
    """Ranking queries (K > 2 segments) waiting: the window judges pairs only."""


@dataclass(frozen=True)
class Committed:
    """The session's answer to :class:`Commit`: the judgment is in the store."""

    query_id: int
    judgment_id: int
    preference: Preference


@dataclass(frozen=True)
class Reverted:
    """The session's answer to :class:`Revert`: the judgment is gone from the store."""

    judgment_id: int


@dataclass(frozen=True)
class Failed:
    """An effect failed; ``advance`` drops the pair on screen (e.g. judged elsewhere)."""

    message: str
    advance: bool = False


Command = (
    Choose
    | Undo
    | TogglePause
    | ChangeSpeed
    | Scroll
    | Quit
    | Tick
    | Shown
    | Committed
    | Reverted
    | Failed
)

# ------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Commit:
    """Store the judgment ``preference`` of query ``query_id`` now."""

    query_id: int
    preference: Preference


@dataclass(frozen=True)
class Revert:
    """Delete judgment ``judgment_id`` from the store."""

    judgment_id: int


@dataclass(frozen=True)
class Fetch:
    """Put the next pending pair on screen."""


@dataclass(frozen=True)
class Prefetch:
    """Load the next pair now: nothing moves on screen, so a short stall is not seen."""


@dataclass(frozen=True)
class Release:
    """Give back every pair this window holds (it is closing)."""


Effect = Commit | Revert | Fetch | Prefetch | Release


# --------------------------------------------------------------------- state


@dataclass(frozen=True)
class LabelState:
    """Everything the window shows, apart from the pixels."""

    mode: Mode = Mode.WAITING
    pair: PairView | None = None
    """The pair on screen (``Mode.LABELING``)."""
    history: tuple[Done, ...] = ()
    """This session's judgments that still stand, oldest first."""
    undone: int = 0
    """Judgments undone in this session."""
    budget_left: int | None = None
    """Labels of the budget not given yet (None: unknown)."""
    pending: int = 0
    """Pairs waiting besides the one on screen."""
    rankings: int = 0
    """Ranking queries (K > 2 segments) waiting, which the window does not show."""
    position: float = 0.0
    """Playback position in steps, ``0 <= position < pair.length``."""
    hold: float = 0.0
    """Seconds left of the pause between two loops (0 while playing)."""
    paused: bool = False
    speed: float = 1.0
    """Multiple of ``pair.fps``; one of :data:`SPEEDS`."""
    scroll: int = 0
    """First text line shown (text pairs)."""
    waited: float = 0.0
    """Seconds since the last fetch while waiting."""
    busy: bool = False
    """A commit or undo is in flight; choices wait for its answer."""
    message: str = LOOKING
    """The status line."""
    quit_reason: str | None = None
    effects: tuple[Effect, ...] = ()
    """What the driver must do after this state was made (consumed at once)."""

    @property
    def frame(self) -> int:
        """Index of the step on screen."""
        if self.pair is None:
            return 0
        return min(int(self.position), self.pair.length - 1)

    @property
    def judged(self) -> int:
        """Judgments this session made that still stand."""
        return len(self.history)


def initial_state(*, speed: float = 1.0) -> LabelState:
    """A fresh window's state: waiting, with a fetch requested."""
    if speed not in SPEEDS:
        raise ValueError(f"speed must be one of {SPEEDS}, got {speed}")
    return LabelState(speed=speed, effects=(Fetch(),))


def apply(state: LabelState, command: Command) -> LabelState:
    """The state after ``command``; a pure function (effects are returned, not done)."""
    if state.effects:
        state = replace(state, effects=())
    if state.mode is Mode.CLOSED:
        return state
    if isinstance(command, Tick):
        return _tick(state, command.seconds)
    if isinstance(command, Choose):
        if state.mode is not Mode.LABELING or state.pair is None or state.busy:
            return state
        effect = Commit(state.pair.query_id, command.preference)
        return replace(state, busy=True, effects=(effect,))
    if isinstance(command, Committed):
        done = Done(command.query_id, command.judgment_id, command.preference)
        budget = None if state.budget_left is None else max(0, state.budget_left - 1)
        return replace(
            _waiting(state, f"saved: {describe(command.preference)} (pair {command.query_id})"),
            history=(*state.history, done),
            budget_left=budget,
        )
    if isinstance(command, Undo):
        if state.busy:
            return state
        if not state.history:
            return replace(state, message="nothing to undo: no judgment made in this window yet")
        return replace(state, busy=True, effects=(Revert(state.history[-1].judgment_id),))
    if isinstance(command, Reverted):
        kept = tuple(d for d in state.history if d.judgment_id != command.judgment_id)
        undone = [d for d in state.history if d.judgment_id == command.judgment_id]
        what = f"pair {undone[0].query_id}" if undone else f"judgment {command.judgment_id}"
        return replace(
            _waiting(state, f"undone: {what} is back for judging"),
            history=kept,
            undone=state.undone + 1,
        )
    if isinstance(command, Shown):
        return _show(state, command)
    if isinstance(command, Failed):
        if command.advance:
            return _waiting(state, command.message)
        return replace(state, busy=False, message=command.message)
    if isinstance(command, TogglePause):
        quiet = (Prefetch(),) if not state.paused and state.mode is Mode.LABELING else ()
        return replace(state, paused=not state.paused, effects=quiet)
    if isinstance(command, ChangeSpeed):
        index = SPEEDS.index(state.speed) if state.speed in SPEEDS else SPEEDS.index(1.0)
        index = min(max(index + command.step, 0), len(SPEEDS) - 1)
        return replace(state, speed=SPEEDS[index])
    if isinstance(command, Scroll):
        return replace(state, scroll=min(max(state.scroll + command.lines, 0), command.limit))
    if isinstance(command, Quit):
        return replace(
            state,
            mode=Mode.CLOSED,
            quit_reason=command.reason,
            message="closing: every judgment is stored",
            effects=(Release(),),
        )
    raise TypeError(f"unknown command {command!r}")


def _waiting(state: LabelState, message: str) -> LabelState:
    """No pair on screen any more; fetch the next one."""
    return replace(
        state,
        mode=Mode.WAITING,
        pair=None,
        busy=False,
        waited=0.0,
        message=message,
        effects=(Fetch(),),
    )


def _show(state: LabelState, shown: Shown) -> LabelState:
    state = replace(
        state,
        budget_left=shown.budget_left,
        pending=shown.pending,
        rankings=shown.rankings,
        waited=0.0,
    )
    if shown.pair is None:
        if state.mode is Mode.WAITING:
            return state  # keep the message ("saved: ...") on screen
        return replace(state, mode=Mode.WAITING, pair=None)
    keep = state.mode is Mode.WAITING and state.message != LOOKING
    question = "which response is better?" if shown.pair.kind == "text" else "which is better?"
    return replace(
        state,
        mode=Mode.LABELING,
        pair=shown.pair,
        message=state.message if keep else question,
        position=0.0,
        hold=0.0,
        scroll=0,
        paused=False,
        busy=False,
        effects=(Prefetch(),) if shown.pair.kind == "text" else (),  # text does not move
    )


def _tick(state: LabelState, seconds: float) -> LabelState:
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"Tick needs a finite number of seconds >= 0, got {seconds}")
    if state.mode is Mode.WAITING:
        waited = state.waited + seconds
        if waited >= POLL_SECONDS and not state.busy:
            return replace(state, waited=0.0, effects=(Fetch(),))
        return replace(state, waited=waited)
    pair = state.pair
    if pair is None or state.paused or pair.kind == "text" or seconds == 0:
        return state
    position, hold = state.position, state.hold
    was_holding = hold > 0
    rate = pair.fps * state.speed
    while seconds > 0:
        if hold > 0:  # between two loops
            used = min(hold, seconds)
            hold -= used
            seconds -= used
            if hold <= 0:
                hold, position = 0.0, 0.0
            continue
        to_end = (pair.length - position) / rate  # seconds until the last step has been shown
        if seconds < to_end:
            position += seconds * rate
            seconds = 0
        else:
            seconds -= to_end
            position = pair.length - 1e-9  # the last frame stays up during the pause
            hold = LOOP_PAUSE
    effects = (Prefetch(),) if hold > 0 and not was_holding else ()  # a pause between loops began
    return replace(state, position=position, hold=hold, effects=effects)


def describe(preference: Preference) -> str:
    """A preference in the words of the legend."""
    return _WORDS[preference]


_WORDS = {
    Preference.LEFT: "left is better",
    Preference.RIGHT: "right is better",
    Preference.EQUAL: "equally good",
    Preference.INCOMPARABLE: "can't tell",
}

# ------------------------------------------------------------------ key maps

_QUIT = Quit("quit key")
KEYMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {
        "left": Choose(Preference.LEFT),
        "right": Choose(Preference.RIGHT),
        "up": Choose(Preference.EQUAL),
        "down": Choose(Preference.INCOMPARABLE),
        "space": TogglePause(),
        "escape": _QUIT,
    },
    Mode.WAITING: {"escape": _QUIT},
    Mode.CLOSED: {},
}
"""Per mode: named key (as ``pygame.key.name`` gives it) -> command.
Scrolling (page up/down, the wheel) needs the window's layout, so the window makes it."""

TEXTMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {
        "=": Choose(Preference.EQUAL),
        "s": Choose(Preference.INCOMPARABLE),
        "u": Undo(),
        "+": ChangeSpeed(+1),
        "-": ChangeSpeed(-1),
        "q": _QUIT,
    },
    Mode.WAITING: {"u": Undo(), "q": _QUIT},
    Mode.CLOSED: {},
}
"""Per mode: typed character -> command. Characters come from what a key typed
(SDL's text input), not from the key: Shift+= is ``+`` on a US keyboard, the keypad's
``+`` is ``+`` too, and ``=`` is ``=`` wherever a layout puts it."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("\N{LEFTWARDS ARROW}", "left better"),
    ("\N{RIGHTWARDS ARROW}", "right better"),
    ("\N{UPWARDS ARROW} or =", "equal"),
    ("\N{DOWNWARDS ARROW} or s", "can't tell"),
    ("u", "undo"),
    ("space", "pause"),
    ("+ -", "speed"),
    ("q Esc", "quit"),
)
"""The key legend the window always shows: (keys, what they do)."""

TEXT_LEGEND: tuple[tuple[str, str], ...] = (
    *(entry for entry in LEGEND if entry[1] not in ("pause", "speed", "quit")),
    ("PgUp PgDn", "scroll"),
    LEGEND[-1],
)
"""The legend for text pairs: nothing plays, so no pause or speed; long responses scroll."""

CLICKMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {"left": Choose(Preference.LEFT), "right": Choose(Preference.RIGHT)},
    Mode.WAITING: {},
    Mode.CLOSED: {},
}
"""Per mode: the panel clicked (``"left"`` or ``"right"``) -> command."""


def command_for_click(mode: Mode, panel: str) -> Command | None:
    """The command a click on ``panel`` (``"left"``/``"right"``) means in ``mode``, or None."""
    return CLICKMAPS[mode].get(panel)


def command_for_key(mode: Mode, name: str) -> Command | None:
    """The command a named key (``pygame.key.name(event.key)``: ``"left"``, ``"escape"``) means."""
    return KEYMAPS[mode].get(name)


def command_for_text(mode: Mode, text: str) -> Command | None:
    """The command a typed character (a ``TEXTINPUT`` event's text) means; case is ignored."""
    return TEXTMAPS[mode].get(text.lower())
