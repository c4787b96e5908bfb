"""The preference store: segments, queries and judgments in one SQLite file.

The store is the run's memory. A labeling window and a trainer may use one
store at once from two processes: the file is in WAL mode (readers never block
the writer), every write is its own ``BEGIN IMMEDIATE`` transaction, and a
waiting writer retries for ``timeout`` seconds.

Durability: each judgment is committed before :meth:`PreferenceStore.add_judgment`
returns, so neither a SIGKILL of the process nor a power cut can lose it (see
:mod:`prefgym.store._file`, which also holds the schema, the write transaction,
the array encoding and the ``meta`` table).

:class:`PreferenceStore` is the one class: it holds the open
:class:`~prefgym.store._file.StoreFile` and hands each call to the functions of
the table modules: :mod:`prefgym.store._segments`, :mod:`prefgym.store._queries`
(with the leases) and :mod:`prefgym.store._judgments`. The records it hands out
are :mod:`prefgym.store._records`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prefgym.judgments import Preference
from prefgym.segments import Segment
from prefgym.store._file import StoreFile, read_meta, write_meta
from prefgym.store._heartbeat import TrainerState, TrainerStatus, read_beat, write_beat
from prefgym.store._judgments import (
    count_judgments,
    delete_judgment,
    insert_judgments,
    load_judgments,
)
from prefgym.store._queries import (
    claim,
    count_queries,
    insert_queries,
    lease_holders,
    load_pending,
    load_queries,
    load_query,
    release,
    renew,
)
from prefgym.store._records import (
    Judgeable,
    Query,
    StoredJudgment,
    TrainingData,
    collect_training_data,
    integer_ids,
)
from prefgym.store._segments import (
    count_segments,
    insert_segments,
    list_segment_ids,
    load_segments,
)

_Self = TypeVar("_Self", bound="PreferenceStore")


class PreferenceStore:
    """Segments, queries and judgments of one run, in a SQLite file.

    Opening an existing store resumes it; opening a path that does not exist
    creates a store there. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        """Open or create a store.

        Args:
            path: The store file; its directory must exist.
            clock: Returns the current time in seconds; stamps rows and times leases.
            timeout: Seconds a write waits for another process's write to finish.

        Raises:
            StoreError: ``path`` is not a SQLite database, is a SQLite database
                that is not a prefgym store, or was written by a newer prefgym.
        """
        self._file = StoreFile(path, clock=clock, timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def path(self) -> Path:
        """The store file."""
        return self._file.path

    @property
    def clock(self) -> Callable[[], float]:
        """Returns the current time in seconds; stamps rows and times leases."""
        return self._file.clock

    @property
    def timeout(self) -> float:
        """Seconds a write waits for another process's write to finish."""
        return self._file.timeout

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; writes go through ``BEGIN IMMEDIATE``)."""
        return self._file.connection

    def close(self) -> None:
        """Close the file; further calls raise :class:`StoreError`. Closing twice is fine."""
        self._file.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- segments

    def add_segments(
        self, segments: Sequence[Segment], *, round: int = 0, keep_frames: bool = True
    ) -> list[int]:
        """Store segments in one transaction.

        Args:
            segments: The segments; their ``info`` must be JSON-serialisable (it
                comes back as JSON does: tuples as lists, keys as strings).
            round: The loop's round that produced them.
            keep_frames: Store the frames (when a segment has them); frames are
                most of a segment's bytes, so leave them out when no person will look.

        Returns:
            The new ids, in the order of ``segments``.
        """
        return insert_segments(self._file, segments, round=round, keep_frames=keep_frames)

    def get_segments(self, ids: Sequence[int], *, frames: bool = True) -> list[Segment]:
        """Load segments, in the order of ``ids`` (an id may repeat).

        Args:
            ids: Store ids.
            frames: Load the stored frames; False skips reading them (faster).

        Raises:
            StoreError: An id is not in the store.
        """
        return load_segments(self._file, ids, frames=frames)

    def segment_ids(self, *, round: int | None = None) -> list[int]:
        """Ids of all segments, or of one round's, ascending."""
        return list_segment_ids(self._file, round=round)

    def n_segments(self) -> int:
        """Number of stored segments."""
        return count_segments(self._file)

    # ----------------------------------------------------------------- queries

    def add_queries(self, queries: Sequence[Sequence[int]], *, round: int = 0) -> list[int]:
        """Store queries in one transaction.

        Args:
            queries: Each a sequence of >= 2 distinct segment ids, left to right.
            round: The loop's round that asked them.

        Returns:
            The new ids, in the order of ``queries``.

        Raises:
            StoreError: A segment id is not in the store (nothing is written).
        """
        return insert_queries(self._file, queries, round=round)

    def get_query(self, id: int) -> Query:
        """The query with this id; :class:`StoreError` if there is none."""
        return load_query(self._file, id)

    def pending_queries(self, *, judge: str | None = None, limit: int | None = None) -> list[Query]:
        """Queries nobody has judged (or ``judge`` has not judged), oldest first."""
        return load_pending(self._file, judge=judge, limit=limit)

    def queries(self, *, since_id: int = 0) -> list[Query]:
        """Every query with an id above ``since_id``, oldest first."""
        return load_queries(self._file, since_id=since_id)

    def n_queries(self) -> int:
        """Number of stored queries."""
        return count_queries(self._file)

    def claim_query(
        self, labeler: str, *, lease_seconds: float = 300.0, judge: str | None = None
    ) -> Query | None:
        """Lease the oldest pending query that no one holds, so no other window shows it.

        The claim is atomic: two processes claiming at once never get the same
        query. A lease ends when it expires, when it is released, or when the
        query is judged. Queries leased by ``labeler`` itself are not handed out again.

        Args:
            labeler: Who holds the lease (a window or session id).
            lease_seconds: How long the lease lasts if never released.
            judge: Pending means "not judged by ``judge``"; None means "not judged at all".

        Returns:
            The leased query, or None if every pending query is leased.
        """
        return claim(self._file, labeler, lease_seconds=lease_seconds, judge=judge)

    def release_query(self, query_id: int, labeler: str) -> bool:
        """End ``labeler``'s lease on a query; False if it held none (e.g. it had expired)."""
        return release(self._file, query_id, labeler)

    def renew_lease(
        self,
        query_id: int,
        labeler: str,
        *,
        lease_seconds: float = 300.0,
        exclusive: bool = False,
    ) -> bool:
        """Extend ``labeler``'s lease on a query on screen.

        Returns:
            False if another labeler holds it, or (``exclusive``) someone answered it.
        """
        return renew(
            self._file, query_id, labeler, lease_seconds=lease_seconds, exclusive=exclusive
        )

    def lease_owners(self) -> dict[str, list[int]]:
        """``{owner: query ids}`` of the leases that have not expired."""
        return lease_holders(self._file)

    # --------------------------------------------------------------- judgments

    def add_judgment(
        self,
        query_id: int,
        preference: Preference | str,
        judge: str,
        *,
        seconds: float | None = None,
        exclusive: bool = False,
    ) -> int:
        """Record (and commit) a judge's answer to a pair query; returns its id.

        Args:
            query_id: A pair query.
            preference: The answer.
            judge: Who judged.
            seconds: Seconds a person took, from the pair shown to the answer.
            exclusive: Refuse the answer if another judge has answered the pair (a
                window that showed it unanswered; not one asking for a second opinion).

        Raises:
            ValueError: ``preference`` is not one of the four.
            JudgedMeanwhile: ``exclusive`` and another judge answered it meanwhile.
            StoreError: Unknown query, not a pair, or ``judge`` already judged it.
        """
        item = (query_id, Preference.parse(preference))
        return self.add_judgments([item], judge, seconds=seconds, exclusive=exclusive)[0]

    def add_ranking(
        self,
        query_id: int,
        order: Sequence[int],
        judge: str,
        *,
        seconds: float | None = None,
        exclusive: bool = False,
    ) -> int:
        """Record (and commit) a judge's ranking of a K-wise query; returns its id.

        Args:
            query_id: A query of K >= 3 segments.
            order: The query's segment ids, best first.
            judge: Who judged.
            seconds: Seconds a person took, from the query shown to the answer.
            exclusive: Refuse the answer if another judge has answered the query.

        Raises:
            ValueError: ``order`` is not a permutation of the query's segments.
            JudgedMeanwhile: ``exclusive`` and another judge answered it meanwhile.
            StoreError: Unknown query, a pair query, or ``judge`` already judged it.
        """
        item = (query_id, integer_ids(order, "a ranking"))
        return self.add_judgments([item], judge, seconds=seconds, exclusive=exclusive)[0]

    def add_judgments(
        self,
        items: Sequence[tuple[int, Judgeable]],
        judge: str,
        *,
        seconds: float | None = None,
        exclusive: bool = False,
    ) -> list[int]:
        """Record many judgments by one judge in one transaction: all or none are stored.

        Args:
            items: ``(query_id, answer)`` pairs; the answer is a :class:`Preference`
                (or its name) for a pair query, a sequence of segment ids best
                first for a ranking query.
            judge: Who judged.
            seconds: Seconds the judge took for each (a person's).
            exclusive: Refuse them all if another judge has answered one of them.

        Returns:
            The new judgment ids, in the order of ``items``.
        """
        return insert_judgments(self._file, items, judge, seconds=seconds, exclusive=exclusive)

    def undo(self, judgment_id: int) -> StoredJudgment:
        """Delete one judgment (committed at once); its query is pending again.

        Returns:
            The judgment that was removed.
        """
        return delete_judgment(self._file, judgment_id)

    def judgments(self, *, judge: str | None = None, since_id: int = 0) -> list[StoredJudgment]:
        """Judgments with id > ``since_id`` (by ``judge`` if given), oldest first."""
        return load_judgments(self._file, judge=judge, since_id=since_id)

    def n_judgments(self, *, judge: str | None = None) -> int:
        """Number of stored judgments (by ``judge`` if given)."""
        return count_judgments(self._file, judge=judge)

    # ---------------------------------------------------------------- trainer

    def beat(self, state: TrainerState, *, waiting_for: int = 0) -> TrainerStatus:
        """Record that this process's trainer is alive and in ``state`` (for the window)."""
        return write_beat(self._file, state, waiting_for=waiting_for)

    def trainer(self) -> TrainerStatus | None:
        """The trainer's last heartbeat, or None if no trainer has run on this store."""
        return read_beat(self._file)

    # -------------------------------------------------------------------- meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        return read_meta(self._file, key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (committed at once)."""
        write_meta(self._file, key, value)


def training_data(store: PreferenceStore, *, judge: str | None = None) -> TrainingData:
    """The store's trainable judgments for the reward-model learner.

    Incomparable judgments are left out; the same query judged by two judges
    gives two rows.

    Args:
        store: The store to read.
        judge: Only this judge's judgments; None takes all.
    """
    return collect_training_data(store.judgments(judge=judge))
