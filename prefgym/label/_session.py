"""The labeling session: judgments into the store, and pairs out of it, one ahead.

A :class:`LabelingSession` drives the pure state of ``prefgym.label._state``
against a preference store: it commits each judgment the moment it is made,
undoes them, and feeds the window pairs through a :class:`PairFeed`, which
leases pending queries (so two windows never show the same pair at once) and
loads the next pair ahead, while nothing moves on screen (the pause between
two loops of the clips), so that a judgment brings up the next pair at once.
How a segment is shown is ``prefgym.label._clips``'s business.

Nothing here imports pygame.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace

from prefgym.judgments import Preference
from prefgym.label._clips import Clip, clip_for, render_fps
from prefgym.label._state import (
    ClipKind,
    Command,
    Commit,
    Committed,
    Effect,
    Failed,
    Fetch,
    LabelState,
    PairView,
    Prefetch,
    Release,
    Revert,
    Reverted,
    Shown,
    apply,
    initial_state,
)
from prefgym.store import PreferenceStore, Query, StoreError


@dataclass(frozen=True, eq=False)
class LoadedPair:
    """A leased query with both clips ready to draw."""

    query: Query
    left: Clip
    right: Clip
    fps: float

    @property
    def kind(self) -> ClipKind:
        """``text`` or ``frames`` if both sides are, else ``observations``."""
        if self.left.kind == self.right.kind:
            return self.left.kind
        return "observations"


class PairFeed:
    """Leases pending pair queries and loads their clips, one pair ahead when asked to.

    Ranking queries (K > 2 segments) are skipped: held until :meth:`close`, so
    that they are not handed out again, and left for other judges.

    Every store call happens on the caller's thread, through the caller's store:
    a second connection to the same file in one process is not safe with
    SQLite's POSIX locks (see ``LabelingSession``). Loading the next pair takes
    tens of milliseconds (decompressing frames, or re-simulating), so the
    session calls :meth:`prefetch` while nothing moves on screen.
    """

    def __init__(
        self,
        store: PreferenceStore,
        owner: str,
        *,
        judge: str | None = None,
        lease_seconds: float = 300.0,
        fps: float | None = None,
    ) -> None:
        """Create a feed.

        Args:
            store: The store.
            owner: Lease owner: unique to this window.
            judge: Pending means "not judged by ``judge``"; None: "not judged by anyone".
            lease_seconds: How long a pair stays reserved for this window if it
                never answers (it crashed): then another window may show it.
            fps: Playback rate at speed 1; None reads the environment's ``render_fps``.
        """
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        self.store = store
        self.owner = owner
        self.judge = judge
        self.lease_seconds = lease_seconds
        self.fps = fps
        self.current: LoadedPair | None = None
        """The pair on screen."""
        self.ready: LoadedPair | None = None
        """The next pair, leased and loaded ahead of time."""
        self._held: set[int] = set()
        self._fps: dict[str, float] = {}

    def next(self) -> LoadedPair | None:
        """Give back the pair on screen (if still held) and hand over the next one."""
        self._release(self.current)
        self.current, self.ready = self.ready, None
        if self.current is None:
            self.current = self._load()
        return self.current

    def prefetch(self) -> bool:
        """Lease and load the pair after the one on screen unless done; True if one is ready."""
        if self.ready is None and self.current is not None:
            self.ready = self._load()
        return self.ready is not None

    def mark_judged(self) -> None:
        """The pair on screen was judged: the store ended its lease."""
        if self.current is not None:
            self._held.discard(self.current.query.id)
            self.current = None

    def release_all(self) -> None:
        """Give back the pair on screen and the prefetched one (after an undo)."""
        self._release(self.ready)
        self._release(self.current)
        self.current = self.ready = None

    def close(self) -> None:
        """Give back every lease this feed holds; calling it again is fine."""
        held, self._held = sorted(self._held), set()
        self.current = self.ready = None
        for query_id in held:
            try:
                self.store.release_query(query_id, self.owner)
            except StoreError:  # the store is closed or gone: the lease expires by itself
                pass

    def counts(self) -> tuple[int, int, int]:
        """``(judged, pairs, rankings)``: queries judged (by ``judge``, if set), and pending ones.

        ``pairs`` counts pending pair queries, ``rankings`` pending ranking
        queries (K > 2 segments), which the window does not show.
        """
        pending = self.store.pending_queries(judge=self.judge)
        rankings = sum(len(q.segment_ids) > 2 for q in pending)
        return self.store.n_queries() - len(pending), len(pending) - rankings, rankings

    def _release(self, pair: LoadedPair | None) -> None:
        if pair is not None and pair.query.id in self._held:
            self._held.discard(pair.query.id)
            self.store.release_query(pair.query.id, self.owner)

    def _load(self) -> LoadedPair | None:
        """Lease the oldest free pending pair and load its clips."""
        while True:
            query = self.store.claim_query(
                self.owner, lease_seconds=self.lease_seconds, judge=self.judge
            )
            if query is None:
                return None
            self._held.add(query.id)
            if len(query.segment_ids) == 2:
                break  # a ranking query stays held (so not handed out again) until close
        left, right = self.store.get_segments(query.segment_ids, frames=True)
        env_id = left.env_id or right.env_id
        if env_id not in self._fps:
            self._fps[env_id] = self.fps or render_fps(env_id)
        fps = self._fps[env_id]
        return LoadedPair(query, clip_for(left), clip_for(right), fps)


def window_owner(labeler: str) -> str:
    """A lease owner unique to one window of ``labeler``."""
    return f"{labeler}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LabelingSession:
    """The labeling state, driven against a store: what the window talks to.

    All store work happens on the thread that calls :meth:`handle`, through the
    one connection of ``store`` (a sqlite3 connection belongs to the thread that
    opened it). So no background thread prefetches: the next pair is loaded
    while nothing moves on screen.
    """

    def __init__(
        self,
        store: PreferenceStore,
        labeler: str,
        *,
        budget: int | None = None,
        lease_seconds: float = 300.0,
        fps: float | None = None,
        speed: float = 1.0,
        rejudge: bool = False,
        on_command: Callable[[Command], None] | None = None,
    ) -> None:
        """Open a session and fetch the first pair.

        Args:
            store: The run's preference store.
            labeler: The person's id, recorded with each judgment.
            budget: The run's label budget, to show the labels left (None: not shown).
            lease_seconds: How long a shown pair stays reserved for this window.
            fps: Playback rate at speed 1 (None: the environment's ``render_fps``).
            speed: Initial playback speed (one of ``prefgym.label._state.SPEEDS``).
            rejudge: Also show pairs others judged (to measure agreement); each
                labeler still judges a pair once.
            on_command: Called with every command handled (a log for tests).
        """
        if not isinstance(labeler, str) or not labeler:
            raise ValueError(f"labeler must be a non-empty name, got {labeler!r}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        self.store = store
        self.labeler = labeler
        self.budget = budget
        self.rejudge = rejudge
        self.on_command = on_command
        self.feed = PairFeed(
            store,
            window_owner(labeler),
            judge=labeler if rejudge else None,
            lease_seconds=lease_seconds,
            fps=fps,
        )
        self.state: LabelState = initial_state(speed=speed)
        self._closed = False
        try:
            self._run_effects()
        except BaseException:  # Ctrl-C while fetching the first pair: give it back
            self.close()
            raise

    @property
    def pair(self) -> LoadedPair | None:
        """The pair on screen, with its clips."""
        return self.feed.current if self.state.pair is not None else None

    def handle(self, command: Command) -> LabelState:
        """Apply ``command`` and perform the effects it asks for; returns the new state."""
        if self.on_command is not None:
            self.on_command(command)
        self.state = apply(self.state, command)
        self._run_effects()
        return self.state

    def close(self) -> None:
        """Give back every lease; judgments are already stored. Calling it again is fine."""
        if not self._closed:
            self._closed = True
            self.feed.close()

    def _run_effects(self) -> None:
        while self.state.effects:
            effects = self.state.effects
            self.state = replace(self.state, effects=())
            for effect in effects:
                answer = self._perform(effect)
                if answer is not None:
                    if self.on_command is not None:
                        self.on_command(answer)
                    self.state = apply(self.state, answer)

    def _perform(self, effect: Effect) -> Command | None:
        if isinstance(effect, Commit):
            return self._commit(effect.query_id, effect.preference)
        if isinstance(effect, Revert):
            try:
                self.store.undo(effect.judgment_id)
            except StoreError as error:
                return Failed(f"could not undo: {error}")
            self.feed.release_all()  # the undone pair is the oldest pending: it comes next
            return Reverted(effect.judgment_id)
        if isinstance(effect, Fetch):
            return self._fetch()
        if isinstance(effect, Prefetch):
            self.feed.prefetch()
            return None
        if isinstance(effect, Release):
            self.close()
            return None
        raise TypeError(f"unknown effect {effect!r}")

    def _commit(self, query_id: int, preference: Preference) -> Command:
        try:
            judgment_id = self.store.add_judgment(query_id, preference, self.labeler)
        except StoreError as error:
            pending = self.store.pending_queries(judge=self.labeler)
            if all(q.id != query_id for q in pending):  # judged in another window meanwhile
                return Failed(f"pair {query_id} was already judged by {self.labeler}", True)
            return Failed(f"not saved ({error}); press the key again")
        self.feed.mark_judged()
        return Committed(query_id, judgment_id, preference)

    def _fetch(self) -> Shown:
        pair = self.feed.next()
        judged, pending, rankings = self.feed.counts()
        if self.rejudge:
            judged = self.store.n_judgments(judge=self.labeler)
        budget_left = None if self.budget is None else max(self.budget - judged, 0)
        if pair is None:
            return Shown(None, budget_left, pending, rankings)
        view = PairView(
            query_id=pair.query.id,
            number=judged + 1,
            length=max(pair.left.length, pair.right.length),
            kind=pair.kind,
            fps=pair.fps,
        )
        return Shown(view, budget_left, max(pending - 1, 0), rankings)
