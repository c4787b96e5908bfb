"""The labeling session: judgments into the store, and queries out of it, one ahead.

A :class:`LabelingSession` drives the pure state of ``prefgym.label._state``
against a preference store: it commits each judgment the moment it is made
(with the seconds the person took, and refused if someone else judged the pair
since it was shown), undoes them, renews the leases of what is on screen, reads
the trainer's heartbeat, and feeds the window queries through a
:class:`PairFeed`, which leases pending queries (so two windows never show the
same pair at once) and loads the next one as soon as one is shown, so that a
judgment brings up the next pair at once. How a segment is shown is
``prefgym.label._clips``'s business.

Nothing here imports pygame.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from prefgym.label._clips import Clip, Replayer, clip_for, render_fps
from prefgym.label._keys import MAX_RANKED
from prefgym.label._state import (
    ClipKind,
    Command,
    Commit,
    CommitRanking,
    Committed,
    Effect,
    Failed,
    Fetch,
    LabelState,
    PairView,
    PollTrainer,
    Prefetch,
    Release,
    Renew,
    Revert,
    Reverted,
    Shown,
    TrainerSeen,
    apply,
    initial_state,
)
from prefgym.store import JudgedMeanwhile, PreferenceStore, Query, StoreError

NO_TRAINER = "no trainer has run on this store"


@dataclass(frozen=True, eq=False)
class LoadedPair:
    """A leased query with its clips ready to draw: two for a pair, K for a ranking."""

    query: Query
    clips: tuple[Clip, ...]
    fps: float
    sharper: Future[tuple[Clip, ...] | None] | None = None
    """The clips re-simulated at full size while they are built (None when none could be;
    see ``PairFeed.sharpen``)."""
    version: int = 0
    """Bumped when the sharper clips are swapped in, so the window redraws."""

    @property
    def left(self) -> Clip:
        """The first clip (the left one of a pair)."""
        return self.clips[0]

    @property
    def right(self) -> Clip:
        """The second clip (the right one of a pair)."""
        return self.clips[1]

    @property
    def kind(self) -> ClipKind:
        """``text`` or ``frames`` if every clip is, else ``observations``."""
        kinds = {clip.kind for clip in self.clips}
        return kinds.pop() if len(kinds) == 1 else "observations"


class PairFeed:
    """Leases pending queries and loads their clips, one ahead when asked to.

    Every store call happens on the caller's thread, through the caller's store:
    a second connection to the same file in one process is not safe with
    SQLite's POSIX locks (see ``LabelingSession``). A query is loaded with the
    clips that are quick to make (stored frames), and the window asks for the next
    one (:meth:`prefetch`) once the one on screen is drawn. Re-simulating a clip
    to render it sharp at full size is slower and touches no store, so it runs on
    one loader thread, with the feed's :class:`Replayer`; :meth:`sharpen` swaps the
    sharp clips in when they are ready, so a quick answer never waits for a replay.
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
            lease_seconds: How long a query stays reserved for this window unless
                renewed (:meth:`renew`): after a crash, another window may show it then.
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
        """The query on screen."""
        self.ready: LoadedPair | None = None
        """The next query, leased and loaded ahead of time."""
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefgym-clips")
        self._replayer = Replayer()  # used on the loader thread only
        self.exclusive = judge is None
        """Whether this feed shows only queries nobody answered (not a second opinion)."""
        self._held: set[int] = set()
        self._first: list[int] = []
        self._fps: dict[str, float] = {}
        self._closed = False

    def next(self) -> LoadedPair | None:
        """Give back the query on screen (if still held) and hand over the next one."""
        self._release(self.current)
        _drop(self.current)
        self.current, self.ready = self.ready, None
        if self.current is not None and not self._renew(self.current):
            self._held.discard(self.current.query.id)  # its lease lapsed and another took it
            self.current = None
        if self.current is None:
            self.current = self._load()
        return self.current

    def prefetch(self) -> bool:
        """Lease and load the query after the one on screen unless done; True if one is ready."""
        if self.ready is None and self.current is not None:
            self.ready = self._load()
        return self.ready is not None

    def take_first(self, query_ids: list[int]) -> None:
        """Lease and show ``query_ids`` before any other (a crashed window's of this labeler)."""
        self._first.extend(query_ids)

    def renew(self) -> bool:
        """Extend the leases of the query on screen and the one loaded ahead.

        Returns:
            False if another window took the query on screen meanwhile (its lease
            had lapsed): the caller moves on. A lost query loaded ahead is dropped.
        """
        if self.ready is not None and not self._renew(self.ready):
            self._held.discard(self.ready.query.id)
            self.ready = None
        if self.current is not None and not self._renew(self.current):
            self._held.discard(self.current.query.id)
            self.current = None
            return False
        return True

    def mark_judged(self) -> None:
        """The query on screen was judged: the store ended its lease."""
        if self.current is not None:
            self._held.discard(self.current.query.id)
            _drop(self.current)
            self.current = None

    def release_all(self) -> None:
        """Give back the query on screen and the prefetched one (after an undo)."""
        for pair in (self.ready, self.current):
            self._release(pair)
            _drop(pair)
        self.current = self.ready = None

    def close(self) -> None:
        """Give back every lease this feed holds; calling it again is fine."""
        held, self._held = sorted(self._held), set()
        _drop(self.current)
        _drop(self.ready)
        self.current = self.ready = None
        if not self._closed:
            self._closed = True
            self._loader.submit(self._replayer.close)  # on the thread that made its envs
            self._loader.shutdown(wait=True, cancel_futures=False)
        for query_id in held:
            try:
                self.store.release_query(query_id, self.owner)
            except StoreError:  # the store is closed or gone: the lease expires by itself
                pass

    def pending(self) -> set[int]:
        """Ids of the pending queries (not judged by ``judge``, if set, else by anyone)."""
        return {q.id for q in self.store.pending_queries(judge=self.judge)}

    def _renew(self, pair: LoadedPair) -> bool:
        return self._renew_id(pair.query.id)

    def _release(self, pair: LoadedPair | None) -> None:
        if pair is not None and pair.query.id in self._held:
            self._held.discard(pair.query.id)
            self.store.release_query(pair.query.id, self.owner)

    def _claim(self) -> Query | None:
        """Lease a query of :meth:`take_first`'s if one is left, else the oldest free one."""
        while self._first:
            query_id = self._first.pop(0)
            if (
                query_id in self.pending()
                and query_id not in self._held
                and self._renew_id(query_id)
            ):
                return self.store.get_query(query_id)
        return self.store.claim_query(
            self.owner, lease_seconds=self.lease_seconds, judge=self.judge
        )

    def _renew_id(self, query_id: int) -> bool:
        return self.store.renew_lease(
            query_id, self.owner, lease_seconds=self.lease_seconds, exclusive=self.exclusive
        )

    def sharpen(self) -> bool:
        """Swap in clips re-simulated at full size that are ready; True if the one on screen."""
        self.ready = _sharpened(self.ready)
        before, self.current = self.current, _sharpened(self.current)
        return self.current is not before

    def _load(self) -> LoadedPair | None:
        """Lease the next query, load its quick clips, and start its sharp ones."""
        while True:
            query = self._claim()
            if query is None:
                return None
            self._held.add(query.id)
            if len(query.segment_ids) <= MAX_RANKED:
                break  # a longer ranking has no keys: it stays held until close, for others
        segments = self.store.get_segments(query.segment_ids, frames=True)
        env_id = next((s.env_id for s in segments if s.env_id), "")
        if env_id not in self._fps:
            self._fps[env_id] = self.fps or render_fps(env_id)
        quick = tuple(clip_for(s, replay=False) for s in segments)
        sharper = None
        if any("seed" in s.info for s in segments):  # every replay runs on the loader thread
            sharper = self._loader.submit(self._replayer.clips, segments)
        return LoadedPair(query, quick, self._fps[env_id], sharper=sharper)


def _sharpened(pair: LoadedPair | None) -> LoadedPair | None:
    """``pair`` with its re-simulated clips if they are ready (a failed replay keeps it)."""
    if pair is None or pair.sharper is None or not pair.sharper.done():
        return pair
    try:
        clips = pair.sharper.result()
    except Exception:  # a replay that failed: the stored frames stay
        clips = None
    if clips is None:
        return replace(pair, sharper=None)
    return replace(pair, clips=clips, sharper=None, version=pair.version + 1)


def _drop(pair: LoadedPair | None) -> None:
    """Stop building the sharp clips of a pair that leaves the screen (if not begun)."""
    if pair is not None and pair.sharper is not None:
        pair.sharper.cancel()


def window_owner(labeler: str) -> str:
    """A lease owner unique to one window of ``labeler``: ``labeler@host:pid:token``."""
    return f"{labeler}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def orphaned_leases(store: PreferenceStore, labeler: str) -> dict[str, list[int]]:
    """Leases of ``labeler``'s windows on this host whose process is gone: ``{owner: ids}``."""
    prefix = f"{labeler}@{socket.gethostname()}:"
    orphans = {}
    for owner, query_ids in store.lease_owners().items():
        if not owner.startswith(prefix):
            continue
        pid = owner[len(prefix) :].split(":", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            orphans[owner] = query_ids
    return orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process, or not a pid
        return True
    return True


class LabelingSession:
    """The labeling state, driven against a store: what the window talks to.

    All store work happens on the thread that calls :meth:`handle`, through the
    one connection of ``store`` (a sqlite3 connection belongs to the thread that
    opened it). So no background thread prefetches: the next query is loaded
    right after one is shown; a window sets :attr:`defer_prefetch` so that this
    waits until the query on screen is drawn (:meth:`run_deferred`).
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
        clock: Callable[[], float] = time.monotonic,
        on_command: Callable[[Command], None] | None = None,
    ) -> None:
        """Open a session, take back this labeler's leases from a crashed window, fetch a query.

        Args:
            store: The run's preference store.
            labeler: The person's id, recorded with each judgment.
            budget: The run's label budget, to show the labels left (None: not shown).
            lease_seconds: How long a shown query stays reserved for this window
                unless renewed; it is renewed every third of it while the window runs.
            fps: Playback rate at speed 1 (None: the environment's ``render_fps``).
            speed: Initial playback speed (one of ``prefgym.label._state.SPEEDS``).
            rejudge: Also show pairs others judged (to measure agreement); each
                labeler still judges a pair once.
            clock: Seconds (monotonic): times each judgment from its pair shown.
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
        self.clock = clock
        self.on_command = on_command
        self.defer_prefetch = False
        """Load the next query only when :meth:`run_deferred` is called (after a draw)."""
        self.feed = PairFeed(
            store,
            window_owner(labeler),
            judge=labeler if rejudge else None,
            lease_seconds=lease_seconds,
            fps=fps,
        )
        self.state: LabelState = initial_state(speed=speed, renew_every=lease_seconds / 3)
        self._shown_at = 0.0  # when the query was shown (the session's clock)
        self._prefetch_wanted = False
        self._closed = False
        try:
            for owner, query_ids in orphaned_leases(store, labeler).items():
                for query_id in query_ids:
                    store.release_query(query_id, owner)
                self.feed.take_first(query_ids)
            self._run_effects()
        except BaseException:  # Ctrl-C while fetching the first pair: give it back
            self.close()
            raise

    @property
    def pair(self) -> LoadedPair | None:
        """The query on screen, with its clips."""
        return self.feed.current if self.state.pair is not None else None

    def handle(self, command: Command) -> LabelState:
        """Apply ``command`` and perform the effects it asks for; returns the new state."""
        if self.on_command is not None:
            self.on_command(command)
        self.state = apply(self.state, command)
        self._run_effects()
        return self.state

    def sharpen(self) -> None:
        """Show the pair's clips re-simulated at full size once they are ready."""
        if not self._closed:
            self.feed.sharpen()

    def run_deferred(self) -> None:
        """Load the next query if one was asked for while :attr:`defer_prefetch` is set."""
        if self._prefetch_wanted and not self._closed:
            self._prefetch_wanted = False
            self.feed.prefetch()

    def close(self) -> None:
        """Give back every lease; judgments are already stored. Calling it again is fine."""
        if not self._closed:
            self._closed = True
            self.feed.close()

    def _run_effects(self) -> None:
        """Perform the state's effects, and those of the answers, in the order asked."""
        queue = list(self.state.effects)
        self.state = replace(self.state, effects=())
        while queue:
            answer = self._perform(queue.pop(0))
            if answer is not None:
                if self.on_command is not None:
                    self.on_command(answer)
                self.state = apply(self.state, answer)
                queue.extend(self.state.effects)
                self.state = replace(self.state, effects=())

    def _perform(self, effect: Effect) -> Command | None:
        if isinstance(effect, Commit | CommitRanking):
            return self._commit(effect)
        if isinstance(effect, Revert):
            try:
                undone = self.store.undo(effect.judgment_id)
            except StoreError as error:
                return Failed(f"could not undo: {error}")
            self.feed.release_all()
            self.feed.take_first([undone.query_id])  # the undone pair comes back next
            return Reverted(effect.judgment_id)
        if isinstance(effect, Fetch):
            return self._fetch()
        if isinstance(effect, Prefetch):
            if self.defer_prefetch:
                self._prefetch_wanted = True
            else:
                self.feed.prefetch()
            return None
        if isinstance(effect, Renew):
            on_screen = self.state.pair
            if not self.feed.renew() and on_screen is not None:
                return Failed(f"pair {on_screen.query_id} was taken by another window; next", True)
            return None
        if isinstance(effect, PollTrainer):
            return TrainerSeen(self._trainer())
        if isinstance(effect, Release):
            self.close()
            return None
        raise TypeError(f"unknown effect {effect!r}")

    def _trainer(self) -> str:
        try:
            status = self.store.trainer()
        except StoreError as error:
            return f"trainer unknown ({error})"
        return NO_TRAINER if status is None else status.describe(self.store.clock())

    def _commit(self, effect: Commit | CommitRanking) -> Command:
        query_id = effect.query_id
        pair = self.feed.current
        seconds = max(self.clock() - self._shown_at, 0.0)
        exclusive = self.feed.exclusive  # a rejudging window asks a second opinion
        try:
            if isinstance(effect, Commit):
                judgment_id = self.store.add_judgment(
                    query_id, effect.preference, self.labeler, seconds=seconds, exclusive=exclusive
                )
            else:
                if pair is None or pair.query.id != query_id:
                    return Failed(f"pair {query_id} is no longer on screen", True)
                ids = [pair.query.segment_ids[i] for i in effect.order]
                judgment_id = self.store.add_ranking(
                    query_id, ids, self.labeler, seconds=seconds, exclusive=exclusive
                )
        except JudgedMeanwhile:
            self.feed.mark_judged()
            return Failed(f"pair {query_id} was judged by someone else meanwhile; next pair", True)
        except StoreError as error:
            pending = self.store.pending_queries(judge=self.labeler)
            if all(q.id != query_id for q in pending):  # judged in another window meanwhile
                return Failed(f"pair {query_id} was already judged by {self.labeler}", True)
            again = "press Enter" if isinstance(effect, CommitRanking) else "press the key again"
            return Failed(f"not saved ({error}); {again}")
        self.feed.mark_judged()
        if isinstance(effect, Commit):
            return Committed(query_id, judgment_id, effect.preference)
        return Committed(query_id, judgment_id, None, effect.order)

    def _fetch(self) -> Shown:
        pair = self.feed.next()
        pending_ids = self.feed.pending()
        while pair is not None and pair.query.id not in pending_ids:
            self.feed.mark_judged()  # judged elsewhere while it waited to be shown
            pair = self.feed.next()
            pending_ids = self.feed.pending()
        pending = len(pending_ids)
        judged = self.store.n_queries() - pending
        if self.rejudge:
            judged = self.store.n_judgments(judge=self.labeler)
        budget_left = None if self.budget is None else max(self.budget - judged, 0)
        if pair is None:
            return Shown(None, budget_left, pending)
        self._shown_at = self.clock()
        view = PairView(
            query_id=pair.query.id,
            number=judged + 1,
            length=max(clip.length for clip in pair.clips),
            kind=pair.kind,
            fps=pair.fps,
            size=len(pair.clips),
        )
        return Shown(view, budget_left, max(pending - 1, 0))
