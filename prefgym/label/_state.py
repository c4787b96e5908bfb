"""The labeling window's model: a pure state and the commands that change it.

Nothing here draws or touches the store. :func:`apply` maps a state and a
command to the next state; a command that needs the outside world (commit a
judgment, undo one, fetch the next pair, renew a lease, ask how the trainer is)
leaves an *effect* in ``state.effects``, and whoever drives the state
(``prefgym.label._session.LabelingSession``) performs it and answers with
another command (``Committed``, ``Reverted``, ``Shown``, ``Failed``,
``TrainerSeen``). The next pair is asked for (``Prefetch``) as soon as one is
shown, so that a judgment shows the next pair at once. Time comes in as
``Tick(seconds)``, so playback, lease renewal and the trainer's status are
deterministic under test. What keys mean is ``prefgym.label._keys``'s business;
this module never imports pygame.

A query of two segments is judged (``Mode.LABELING``); a query of K > 2 is
ranked (``Mode.RANKING``): the person picks the best, then the next best, and
the ranking is committed when it is complete.

One module, longer than most: the transition ``apply`` is one table of behaviour,
which tests drive without a display; splitting it would scatter the cases of one
``match``.
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
TRAINER_SECONDS = 2.0
"""How often the window asks the store how the trainer is."""
LOOKING = "looking for a pair to judge..."

ClipKind = Literal["frames", "observations", "text"]


class Mode(enum.Enum):
    """What the window is doing; each mode has its own key map."""

    WAITING = "waiting"
    """No query on screen: the store has none pending (or one is being fetched)."""
    LABELING = "labeling"
    """A pair is on screen and can be judged."""
    RANKING = "ranking"
    """K > 2 segments are on screen and can be ranked, best first."""
    CLOSED = "closed"
    """The person quit; the window is closing."""


@dataclass(frozen=True)
class PairView:
    """What the state knows of the query on screen (the pixels stay with the session)."""

    query_id: int
    """Store id of the query: the "pair N" the window names."""
    number: int
    """Which label of this labeler this is: labels already given + 1."""
    length: int
    """Steps of the longest clip (1 for text)."""
    kind: ClipKind
    """``frames`` (pictures), ``observations`` (a plot, no frames stored) or ``text``."""
    fps: float
    """Steps per second at speed 1: the environment's ``render_fps``."""
    size: int = 2
    """Segments of the query: 2 for a pair, K > 2 for a ranking."""


@dataclass(frozen=True)
class Done:
    """A judgment made in this session, kept so that ``u`` can undo it."""

    query_id: int
    judgment_id: int
    preference: Preference | None
    """The answer to a pair; None for a ranking."""
    order: tuple[int, ...] = ()
    """A ranking: the positions on screen (0-based), best first."""


# ------------------------------------------------------------------ commands


@dataclass(frozen=True)
class Choose:
    """The person judged the pair on screen (a key or a click)."""

    preference: Preference


@dataclass(frozen=True)
class Pick:
    """Ranking: the segment at ``index`` (0-based, as on screen) is the next best."""

    index: int


@dataclass(frozen=True)
class Unpick:
    """Ranking: take back the last pick (backspace)."""


@dataclass(frozen=True)
class Submit:
    """Ranking: commit the order picked; the one segment left is the worst (enter)."""


@dataclass(frozen=True)
class Undo:
    """Take back the last pick of a ranking, else undo this session's last judgment."""


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
    """The session's answer to :class:`Fetch`: the next query (None: nothing pending)."""

    pair: PairView | None
    budget_left: int | None
    """Labels of the run's budget not given yet, or None if the budget is unknown."""
    pending: int
    """Queries waiting besides the one shown."""


@dataclass(frozen=True)
class Committed:
    """The session's answer to :class:`Commit` or :class:`CommitRanking`: it is in the store."""

    query_id: int
    judgment_id: int
    preference: Preference | None
    """The answer to a pair; None for a ranking."""
    order: tuple[int, ...] = ()
    """A ranking's positions on screen, best first."""


@dataclass(frozen=True)
class Reverted:
    """The session's answer to :class:`Revert`: the judgment is gone from the store."""

    judgment_id: int


@dataclass(frozen=True)
class Failed:
    """An effect failed; ``advance`` drops the query on screen (e.g. judged elsewhere)."""

    message: str
    advance: bool = False


@dataclass(frozen=True)
class TrainerSeen:
    """The session's answer to :class:`PollTrainer`: the trainer's status in words."""

    text: str


Command = (
    Choose
    | Pick
    | Unpick
    | Submit
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
    | TrainerSeen
)

# ------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Commit:
    """Store the judgment ``preference`` of pair query ``query_id`` now."""

    query_id: int
    preference: Preference


@dataclass(frozen=True)
class CommitRanking:
    """Store the ranking ``order`` (positions on screen, best first) of query ``query_id``."""

    query_id: int
    order: tuple[int, ...]


@dataclass(frozen=True)
class Revert:
    """Delete judgment ``judgment_id`` from the store."""

    judgment_id: int


@dataclass(frozen=True)
class Fetch:
    """Put the next pending query on screen."""


@dataclass(frozen=True)
class Prefetch:
    """Load the query after the one on screen now, so that a judgment shows it at once."""


@dataclass(frozen=True)
class Renew:
    """Extend the leases of the queries this window holds (a slow person keeps them)."""


@dataclass(frozen=True)
class PollTrainer:
    """Read the trainer's heartbeat from the store; answered by :class:`TrainerSeen`."""


@dataclass(frozen=True)
class Release:
    """Give back every query this window holds (it is closing)."""


Effect = Commit | CommitRanking | Revert | Fetch | Prefetch | Renew | PollTrainer | Release


# --------------------------------------------------------------------- state


@dataclass(frozen=True)
class LabelState:
    """Everything the window shows, apart from the pixels."""

    mode: Mode = Mode.WAITING
    pair: PairView | None = None
    """The query on screen (``Mode.LABELING`` or ``Mode.RANKING``)."""
    history: tuple[Done, ...] = ()
    """This session's judgments that still stand, oldest first."""
    undone: int = 0
    """Judgments undone in this session."""
    budget_left: int | None = None
    """Labels of the budget not given yet (None: unknown)."""
    pending: int = 0
    """Queries waiting besides the one on screen."""
    order: tuple[int, ...] = ()
    """Ranking in progress: positions on screen picked so far, best first."""
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
    renew_every: float = math.inf
    """Seconds between two lease renewals."""
    since_renew: float = 0.0
    since_poll: float = 0.0
    """Seconds since the trainer's status was last read."""
    trainer: str = ""
    """The trainer's status in words ("" until read)."""
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


def initial_state(*, speed: float = 1.0, renew_every: float = math.inf) -> LabelState:
    """A fresh window's state: waiting, with a fetch and the trainer's status requested.

    Args:
        speed: Initial playback speed, one of :data:`SPEEDS`.
        renew_every: Seconds between two renewals of the leases held (a third of the
            lease is a good choice); ``inf`` never renews.
    """
    if speed not in SPEEDS:
        raise ValueError(f"speed must be one of {SPEEDS}, got {speed}")
    if not renew_every > 0:
        raise ValueError(f"renew_every must be > 0 seconds, got {renew_every}")
    return LabelState(speed=speed, renew_every=renew_every, effects=(Fetch(), PollTrainer()))


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
    if isinstance(command, Pick | Unpick | Submit):
        return _rank(state, command)
    if isinstance(command, Committed):
        done = Done(command.query_id, command.judgment_id, command.preference, command.order)
        budget = None if state.budget_left is None else max(0, state.budget_left - 1)
        return replace(
            _waiting(state, f"saved: {_what(done)} on pair {command.query_id}"),
            history=(*state.history, done),
            budget_left=budget,
        )
    if isinstance(command, Undo):
        if state.busy:
            return state
        if state.mode is Mode.RANKING and state.order:
            return _rank(state, Unpick())
        if not state.history:
            return replace(state, message="nothing to undo: no judgment made in this window yet")
        return replace(state, busy=True, effects=(Revert(state.history[-1].judgment_id),))
    if isinstance(command, Reverted):
        kept = tuple(d for d in state.history if d.judgment_id != command.judgment_id)
        undone = [d for d in state.history if d.judgment_id == command.judgment_id]
        if undone:
            what = f"undid: {_what(undone[0])} on pair {undone[0].query_id}; it is back"
        else:
            what = f"undid judgment {command.judgment_id}"
        return replace(_waiting(state, what), history=kept, undone=state.undone + 1)
    if isinstance(command, Shown):
        return _show(state, command)
    if isinstance(command, Failed):
        if command.advance:
            return _waiting(state, command.message)
        return replace(state, busy=False, message=command.message)
    if isinstance(command, TrainerSeen):
        return replace(state, trainer=command.text)
    if isinstance(command, TogglePause):
        return replace(state, paused=not state.paused)
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


def _rank(state: LabelState, command: Pick | Unpick | Submit) -> LabelState:
    """A ranking's picks: each adds the next best; complete, the ranking is committed."""
    if state.mode is not Mode.RANKING or state.pair is None or state.busy:
        return state
    size = state.pair.size
    order = state.order
    if isinstance(command, Unpick):
        if not order:
            return replace(state, message="nothing picked yet: press the best response's number")
        order = order[:-1]
    elif isinstance(command, Pick):
        if not 0 <= command.index < size:
            return replace(state, message=f"there are {size} responses: press 1 to {size}")
        if command.index in order:
            return replace(state, message=f"{command.index + 1} is ranked already")
        order = (*order, command.index)
    elif len(order) < size - 1:
        return replace(state, message=f"rank {size - 1 - len(order)} more before enter")
    else:  # enter: the one left is the worst
        order = (*order, *(i for i in range(size) if i not in order))
    if len(order) == size:
        return replace(
            state, order=order, busy=True, effects=(CommitRanking(state.pair.query_id, order),)
        )
    return replace(state, order=order, message=_ranking_prompt(order, size))


def _ranking_prompt(order: tuple[int, ...], size: int) -> str:
    if not order:
        return f"rank the {size} responses: press the best one's number first"
    picked = " > ".join(str(i + 1) for i in order)
    if len(order) == size - 1:
        return f"so far {picked}: press the last one or enter to save (backspace takes one back)"
    return f"so far {picked}: press the next best (backspace takes one back)"


def _what(done: Done) -> str:
    if done.preference is not None:
        return describe(done.preference)
    return "ranked " + " > ".join(str(i + 1) for i in done.order)


def _waiting(state: LabelState, message: str) -> LabelState:
    """No query on screen any more; fetch the next one."""
    return replace(
        state,
        mode=Mode.WAITING,
        pair=None,
        order=(),
        busy=False,
        waited=0.0,
        message=message,
        effects=(Fetch(),),
    )


def _show(state: LabelState, shown: Shown) -> LabelState:
    state = replace(state, budget_left=shown.budget_left, pending=shown.pending, waited=0.0)
    if shown.pair is None:
        if state.mode is Mode.WAITING:
            return state  # keep the message ("saved: ...") on screen
        return replace(state, mode=Mode.WAITING, pair=None, order=())
    keep = state.mode is Mode.WAITING and state.message != LOOKING
    pair = shown.pair
    if pair.size > 2:
        mode, question = Mode.RANKING, _ranking_prompt((), pair.size)
    else:
        mode = Mode.LABELING
        question = "which response is better?" if pair.kind == "text" else "which is better?"
    return replace(
        state,
        mode=mode,
        pair=pair,
        order=(),
        message=state.message if keep else question,
        position=0.0,
        hold=0.0,
        scroll=0,
        paused=False,
        busy=False,
        effects=(Prefetch(),),  # the next query is loaded while this one is looked at
    )


def _tick(state: LabelState, seconds: float) -> LabelState:
    if not seconds >= 0 or math.isinf(seconds):
        raise ValueError(f"Tick needs a finite number of seconds >= 0, got {seconds}")
    effects: list[Effect] = []
    since_renew, since_poll = state.since_renew + seconds, state.since_poll + seconds
    if since_renew >= state.renew_every:
        since_renew = 0.0
        effects.append(Renew())
    if since_poll >= TRAINER_SECONDS:
        since_poll = 0.0
        effects.append(PollTrainer())
        if state.pair is not None:  # queries may have arrived since the last prefetch found none
            effects.append(Prefetch())
    state = replace(state, since_renew=since_renew, since_poll=since_poll)
    if state.mode is Mode.WAITING:
        waited = state.waited + seconds
        if waited >= POLL_SECONDS and not state.busy:
            return replace(state, waited=0.0, effects=(*effects, Fetch()))
        return replace(state, waited=waited, effects=tuple(effects))
    state = replace(state, effects=tuple(effects))
    pair = state.pair
    if pair is None or state.paused or pair.kind == "text" or seconds == 0:
        return state
    position, hold = state.position, state.hold
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
    return replace(state, position=position, hold=hold)


def describe(preference: Preference) -> str:
    """A preference in the words of the legend."""
    return _WORDS[preference]


_WORDS = {
    Preference.LEFT: "left better",
    Preference.RIGHT: "right better",
    Preference.EQUAL: "equal",
    Preference.INCOMPARABLE: "can't tell",
}
