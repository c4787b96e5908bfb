"""The preference store: segments, queries and judgments in one SQLite file.

The store is the run's memory. A labeling window and a trainer may use one
store at once from two processes: the file is in WAL mode (readers never block
the writer), every write is its own ``BEGIN IMMEDIATE`` transaction, and a
waiting writer retries for ``timeout`` seconds.

Durability: each judgment is committed before :meth:`PreferenceStore.add_judgment`
returns. Under WAL a commit appends the transaction to the ``-wal`` file with
``write()`` before it returns, so once a call has returned the data is in the
operating system's page cache and a SIGKILL of the process cannot lose it (the
next open replays the WAL). ``synchronous=FULL`` also fsyncs the WAL on each
commit, so a committed judgment survives a power cut or a kernel crash too; a
person labels a pair every few seconds and synthetic labels come in batches
(one transaction, one fsync), so the cost is negligible.

Arrays are stored as ``np.save`` bytes (``allow_pickle=False``) compressed with
zlib level 1; nothing is ever pickled.
"""

from __future__ import annotations

import io
import json
import operator
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from prefgym.judgments import Preference
from prefgym.segments import Segment

APPLICATION_ID = 0x50524647
"""``PRAGMA application_id`` of every prefgym store (the bytes ``PRFG``)."""
SCHEMA_VERSION = 1
"""``PRAGMA user_version`` this module writes and reads."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_CHUNK = 500  # ids per ``IN (...)`` clause, far below SQLite's variable limit
_SCHEMA = """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    created REAL NOT NULL,
    length INTEGER NOT NULL,
    observations BLOB NOT NULL,
    actions BLOB NOT NULL,
    true_rewards BLOB NOT NULL,
    frames BLOB,
    info TEXT NOT NULL
);
CREATE INDEX segments_round ON segments (round);
CREATE TABLE queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_ids TEXT NOT NULL,
    round INTEGER NOT NULL,
    created REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE TABLE judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query_id INTEGER NOT NULL REFERENCES queries (id),
    preference TEXT CHECK (preference IN ('left', 'right', 'equal', 'incomparable')),
    ranking TEXT,
    judge TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (query_id, judge),
    CHECK ((preference IS NULL) <> (ranking IS NULL))
);
CREATE INDEX judgments_judge ON judgments (judge);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(Exception):
    """A store file that cannot be used, or a request that conflicts with its contents."""


@dataclass(frozen=True)
class Query:
    """A question put to judges: which of these segments is better?"""

    id: int
    """Store id of the query."""
    segment_ids: tuple[int, ...]
    """Segments shown, left to right: 2 for a pair, K >= 3 for a ranking query."""
    round: int
    """Round of the loop that asked it."""
    created: float
    """When it was added (the store's clock)."""


@dataclass(frozen=True)
class StoredJudgment:
    """A judgment as stored: exactly one of ``preference`` and ``order`` is set."""

    id: int
    """Store id of the judgment; ids only grow, an undone id is never reused."""
    query_id: int
    """The query it answers."""
    segment_ids: tuple[int, ...]
    """The query's segments, left to right."""
    preference: Preference | None
    """The answer to a pair query, else None."""
    order: tuple[int, ...] | None
    """The answer to a ranking query: segment ids best first, else None."""
    judge: str
    """Who judged: an oracle preset name or a person's id."""
    created: float
    """When it was made (the store's clock)."""


class TrainingData(NamedTuple):
    """Trainable judgments, indexed by position into ``segment_ids``."""

    segment_ids: list[int]
    """Every segment some trainable judgment refers to, ascending."""
    pairs: np.ndarray
    """Positions ``(n, 2)`` int64 of the left and right segment of each pair judgment."""
    targets: np.ndarray
    """Probability ``(n,)`` float64 that the left segment is preferred: 1, 0 or 0.5."""
    rankings: list[tuple[int, ...]]
    """Positions of each ranking's segments, best first."""


Judgeable = Preference | str | Sequence[int]
"""A preference (for a pair query) or an order of segment ids (for a ranking query)."""


def _encode(name: str, array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(array), allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"segment {name} must be a numeric array, got dtype {np.asarray(array).dtype}"
        ) from error
    return zlib.compress(buffer.getvalue(), 1)


def _decode(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)


def _ids(values: Sequence[Any], what: str) -> tuple[int, ...]:
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise ValueError(f"{what} must be integer ids, got {list(values)!r}") from None


def _check_round(round: int) -> int:
    if operator.index(round) < 0:
        raise ValueError(f"round must be >= 0, got {round}")
    return operator.index(round)


def _check_name(value: str, what: str = "judge") -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


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
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        self.path = Path(path)
        self.clock = clock
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = _open(self.path, timeout)

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the file; further calls raise :class:`StoreError`. Closing twice is fine."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; writes go through ``BEGIN IMMEDIATE``)."""
        if self._conn is None:
            raise StoreError(f"preference store {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back entirely if anything inside raises."""
        conn = self.connection
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(
                f"could not start a write on {self.path}: {error} (if another process "
                f"held it for longer than timeout={self.timeout} s, retry or raise the timeout)"
            ) from error
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
        round = _check_round(round)
        rows = []
        for i, segment in enumerate(segments):
            try:
                info = json.dumps(dict(segment.info))
            except (TypeError, ValueError) as error:
                raise ValueError(f"info of segment {i} is not JSON-serialisable: {error}") from None
            frames = segment.frames if keep_frames else None
            rows.append(
                (
                    segment.env_id,
                    segment.length,
                    _encode("observations", segment.observations),
                    _encode("actions", segment.actions),
                    _encode("true_rewards", segment.true_rewards),
                    None if frames is None else _encode("frames", frames),
                    info,
                )
            )
        now = self.clock()
        sql = (
            "INSERT INTO segments (env_id, round, created, length, observations, actions,"
            " true_rewards, frames, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        with self._write() as conn:
            return [int(conn.execute(sql, (r[0], round, now, *r[1:])).lastrowid or 0) for r in rows]

    def get_segments(self, ids: Sequence[int], *, frames: bool = True) -> list[Segment]:
        """Load segments, in the order of ``ids`` (an id may repeat).

        Args:
            ids: Store ids.
            frames: Load the stored frames; False skips reading them (faster).

        Raises:
            StoreError: An id is not in the store.
        """
        ids = _ids(ids, "segment ids")
        column = "frames" if frames else "NULL"
        found: dict[int, Segment] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.connection.execute(
                f"SELECT id, env_id, observations, actions, true_rewards, {column}, info"
                f" FROM segments WHERE id IN ({marks})",
                chunk,
            ):
                found[row[0]] = Segment(
                    observations=_decode(row[2]),
                    actions=_decode(row[3]),
                    true_rewards=_decode(row[4]),
                    frames=None if row[5] is None else _decode(row[5]),
                    env_id=row[1],
                    info=json.loads(row[6]),
                )
        missing = [i for i in unique if i not in found]
        if missing:
            raise StoreError(f"unknown segment id(s) {missing} in {self.path}")
        return [found[i] for i in ids]

    def segment_ids(self, *, round: int | None = None) -> list[int]:
        """Ids of all segments, or of one round's, ascending."""
        if round is None:
            rows = self.connection.execute("SELECT id FROM segments ORDER BY id")
        else:
            rows = self.connection.execute(
                "SELECT id FROM segments WHERE round = ? ORDER BY id", (round,)
            )
        return [r[0] for r in rows]

    def n_segments(self) -> int:
        """Number of stored segments."""
        return int(self.connection.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

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
        round = _check_round(round)
        checked = []
        for i, query in enumerate(queries):
            ids = _ids(query, f"query {i}")
            if len(ids) < 2 or len(set(ids)) != len(ids):
                raise ValueError(f"query {i} needs >= 2 distinct segment ids, got {list(ids)}")
            checked.append(ids)
        wanted = sorted({s for ids in checked for s in ids})
        now = self.clock()
        with self._write() as conn:
            known: set[int] = set()
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT id FROM segments WHERE id IN ({marks})"
                known.update(r[0] for r in conn.execute(sql, chunk))
            for i, ids in enumerate(checked):
                missing = [s for s in ids if s not in known]
                if missing:
                    raise StoreError(
                        f"unknown segment id(s) {missing} in query {i} {list(ids)}; "
                        f"add the segments to {self.path} first"
                    )
            sql = "INSERT INTO queries (segment_ids, round, created) VALUES (?, ?, ?)"
            return [
                int(conn.execute(sql, (json.dumps(ids), round, now)).lastrowid or 0)
                for ids in checked
            ]

    def get_query(self, id: int) -> Query:
        """The query with this id; :class:`StoreError` if there is none."""
        row = self.connection.execute(
            "SELECT id, segment_ids, round, created FROM queries WHERE id = ?", (id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"unknown query id {id} in {self.path}")
        return _query(row)

    def pending_queries(self, *, judge: str | None = None, limit: int | None = None) -> list[Query]:
        """Queries nobody has judged (or ``judge`` has not judged), oldest first."""
        sql, args = _pending_sql(judge)
        rows = self.connection.execute(
            f"SELECT id, segment_ids, round, created FROM queries q WHERE {sql}"
            " ORDER BY id LIMIT ?",
            (*args, -1 if limit is None else limit),
        )
        return [_query(r) for r in rows]

    def queries(self, *, since_id: int = 0) -> list[Query]:
        """Every query with an id above ``since_id``, oldest first."""
        rows = self.connection.execute(
            "SELECT id, segment_ids, round, created FROM queries WHERE id > ? ORDER BY id",
            (since_id,),
        )
        return [_query(r) for r in rows]

    def n_queries(self) -> int:
        """Number of stored queries."""
        return int(self.connection.execute("SELECT COUNT(*) FROM queries").fetchone()[0])

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
        _check_name(labeler, "labeler")
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        sql, args = _pending_sql(judge)
        with self._write() as conn:
            now = self.clock()
            row = conn.execute(
                "SELECT id, segment_ids, round, created FROM queries q"
                f" WHERE (lease_owner IS NULL OR lease_expires <= ?) AND {sql}"
                " ORDER BY id LIMIT 1",
                (now, *args),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE queries SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                (labeler, now + lease_seconds, row[0]),
            )
        return _query(row)

    def release_query(self, query_id: int, labeler: str) -> bool:
        """End ``labeler``'s lease on a query; False if it held none (e.g. it had expired)."""
        with self._write() as conn:
            self._query_ids(conn, query_id)
            cursor = conn.execute(
                "UPDATE queries SET lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (query_id, labeler),
            )
        return cursor.rowcount > 0

    def _query_ids(self, conn: sqlite3.Connection, query_id: int) -> tuple[int, ...]:
        row = conn.execute("SELECT segment_ids FROM queries WHERE id = ?", (query_id,)).fetchone()
        if row is None:
            raise StoreError(f"unknown query id {query_id} in {self.path}")
        return tuple(json.loads(row[0]))

    # --------------------------------------------------------------- judgments

    def add_judgment(self, query_id: int, preference: Preference | str, judge: str) -> int:
        """Record (and commit) a judge's answer to a pair query; returns its id.

        Raises:
            ValueError: ``preference`` is not one of the four.
            StoreError: Unknown query, not a pair, or ``judge`` already judged it.
        """
        return self.add_judgments([(query_id, Preference.parse(preference))], judge)[0]

    def add_ranking(self, query_id: int, order: Sequence[int], judge: str) -> int:
        """Record (and commit) a judge's ranking of a K-wise query; returns its id.

        Args:
            query_id: A query of K >= 3 segments.
            order: The query's segment ids, best first.
            judge: Who judged.

        Raises:
            ValueError: ``order`` is not a permutation of the query's segments.
            StoreError: Unknown query, a pair query, or ``judge`` already judged it.
        """
        return self.add_judgments([(query_id, _ids(order, "a ranking"))], judge)[0]

    def add_judgments(self, items: Sequence[tuple[int, Judgeable]], judge: str) -> list[int]:
        """Record many judgments by one judge in one transaction: all or none are stored.

        Args:
            items: ``(query_id, answer)`` pairs; the answer is a :class:`Preference`
                (or its name) for a pair query, a sequence of segment ids best
                first for a ranking query.
            judge: Who judged.

        Returns:
            The new judgment ids, in the order of ``items``.
        """
        _check_name(judge)
        answers: list[tuple[int, Preference | None, tuple[int, ...] | None]] = []
        for query_id, answer in items:
            if isinstance(answer, str):
                answers.append((operator.index(query_id), Preference.parse(answer), None))
            else:
                answers.append((operator.index(query_id), None, _ids(answer, "a ranking")))
        now = self.clock()
        ids = []
        with self._write() as conn:
            for query_id, preference, order in answers:
                segment_ids = self._query_ids(conn, query_id)
                _check_answer(query_id, segment_ids, preference, order)
                row = conn.execute(
                    "SELECT id FROM judgments WHERE query_id = ? AND judge = ?", (query_id, judge)
                ).fetchone()
                if row is not None:
                    raise StoreError(
                        f"query {query_id} already has judgment {row[0]} by judge {judge!r}; "
                        "a judge answers a query once (undo that judgment to change it)"
                    )
                cursor = conn.execute(
                    "INSERT INTO judgments (query_id, preference, ranking, judge, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        query_id,
                        None if preference is None else preference.value,
                        None if order is None else json.dumps(order),
                        judge,
                        now,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
                conn.execute(
                    "UPDATE queries SET lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                    (query_id,),
                )
        return ids

    def undo(self, judgment_id: int) -> StoredJudgment:
        """Delete one judgment (committed at once); its query is pending again.

        Returns:
            The judgment that was removed.
        """
        with self._write() as conn:
            found = self._judgments(conn, "j.id = ?", (judgment_id,))
            if not found:
                raise StoreError(f"unknown judgment id {judgment_id} in {self.path}")
            conn.execute("DELETE FROM judgments WHERE id = ?", (judgment_id,))
        return found[0]

    def judgments(self, *, judge: str | None = None, since_id: int = 0) -> list[StoredJudgment]:
        """Judgments with id > ``since_id`` (by ``judge`` if given), oldest first."""
        if judge is None:
            return self._judgments(self.connection, "j.id > ?", (since_id,))
        return self._judgments(self.connection, "j.id > ? AND j.judge = ?", (since_id, judge))

    def _judgments(
        self, conn: sqlite3.Connection, where: str, args: tuple[Any, ...]
    ) -> list[StoredJudgment]:
        rows = conn.execute(
            "SELECT j.id, j.query_id, q.segment_ids, j.preference, j.ranking, j.judge, j.created"
            f" FROM judgments j JOIN queries q ON q.id = j.query_id WHERE {where} ORDER BY j.id",
            args,
        )
        return [
            StoredJudgment(
                id=r[0],
                query_id=r[1],
                segment_ids=tuple(json.loads(r[2])),
                preference=None if r[3] is None else Preference(r[3]),
                order=None if r[4] is None else tuple(json.loads(r[4])),
                judge=r[5],
                created=r[6],
            )
            for r in rows
        ]

    def n_judgments(self, *, judge: str | None = None) -> int:
        """Number of stored judgments (by ``judge`` if given)."""
        if judge is None:
            row = self.connection.execute("SELECT COUNT(*) FROM judgments").fetchone()
        else:
            sql = "SELECT COUNT(*) FROM judgments WHERE judge = ?"
            row = self.connection.execute(sql, (judge,)).fetchone()
        return int(row[0])

    # -------------------------------------------------------------------- meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (committed at once)."""
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"meta value for {key!r} is not JSON-serialisable: {error}") from None
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, text),
            )


def training_data(store: PreferenceStore, *, judge: str | None = None) -> TrainingData:
    """The store's trainable judgments for the reward-model learner.

    Incomparable judgments are left out; the same query judged by two judges
    gives two rows.

    Args:
        store: The store to read.
        judge: Only this judge's judgments; None takes all.
    """
    pairs: list[tuple[int, int]] = []
    targets: list[float] = []
    orders: list[tuple[int, ...]] = []
    for j in store.judgments(judge=judge):
        if j.order is not None:
            orders.append(j.order)
        elif j.preference is not None and j.preference.target is not None:
            pairs.append((j.segment_ids[0], j.segment_ids[1]))
            targets.append(j.preference.target)
    segment_ids = sorted({s for p in pairs for s in p} | {s for o in orders for s in o})
    position = {s: i for i, s in enumerate(segment_ids)}
    return TrainingData(
        segment_ids=segment_ids,
        pairs=np.array([[position[s] for s in p] for p in pairs], dtype=np.int64).reshape(-1, 2),
        targets=np.array(targets, dtype=np.float64),
        rankings=[tuple(position[s] for s in o) for o in orders],
    )


def _query(row: tuple[Any, ...]) -> Query:
    return Query(id=row[0], segment_ids=tuple(json.loads(row[1])), round=row[2], created=row[3])


def _pending_sql(judge: str | None) -> tuple[str, tuple[Any, ...]]:
    if judge is None:
        return "NOT EXISTS (SELECT 1 FROM judgments j WHERE j.query_id = q.id)", ()
    sql = "NOT EXISTS (SELECT 1 FROM judgments j WHERE j.query_id = q.id AND j.judge = ?)"
    return sql, (judge,)


def _check_answer(
    query_id: int,
    segment_ids: tuple[int, ...],
    preference: Preference | None,
    order: tuple[int, ...] | None,
) -> None:
    if preference is not None and len(segment_ids) != 2:
        raise StoreError(
            f"query {query_id} ranks {len(segment_ids)} segments {list(segment_ids)}; "
            f"answer it with a ranking (add_ranking), not the preference {preference.value!r}"
        )
    if order is not None:
        if len(segment_ids) == 2:
            raise StoreError(
                f"query {query_id} is a pair {list(segment_ids)}; answer it with a "
                f"preference (add_judgment), not the ranking {list(order)}"
            )
        if sorted(order) != sorted(segment_ids):
            raise ValueError(
                f"ranking {list(order)} is not a permutation of query {query_id}'s "
                f"segments {list(segment_ids)}"
            )


def _open(path: Path, timeout: float) -> sqlite3.Connection:
    """Open ``path`` as a prefgym store, creating one if the file is missing or empty."""
    if path.exists():
        if not path.is_file():
            raise StoreError(f"{path} is not a file; give the path of a preference store file")
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
        if head and head != _SQLITE_HEADER:
            raise StoreError(
                f"{path} is not a SQLite database, so not a preference store; "
                "it was left untouched (choose another path)"
            )
    elif not path.parent.is_dir():
        raise StoreError(f"cannot create preference store {path}: {path.parent} is not a directory")
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open preference store {path}: {error}") from error
    try:
        new = _identify(conn, path)  # before any write: a foreign file is never changed
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path} cannot use write-ahead logging (journal mode {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if new:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _identify(conn, path):  # still new: no other process created it meanwhile
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreError(f"{path} is not a usable preference store: {error}") from error
    except BaseException:
        conn.close()
        raise
    return conn


def _identify(conn: sqlite3.Connection, path: Path) -> bool:
    """True for an empty database, False for a store this module reads; else raise."""
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        n_objects = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a readable SQLite database ({error}); it was left untouched"
        ) from error
    if application_id == 0 and version == 0 and n_objects == 0:
        return True
    if application_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is a SQLite database but not a prefgym preference store "
            f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x}); "
            "it was left untouched (choose another path)"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer prefgym (store schema version {version}; "
            f"this prefgym reads up to version {SCHEMA_VERSION}); upgrade prefgym to open it"
        )
    if version != SCHEMA_VERSION:
        raise StoreError(f"{path} has unknown store schema version {version}")
    return False
