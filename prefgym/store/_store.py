"""The preference store: segments, queries and judgments in one SQLite file.

The store is the run's memory. A labeling window and a trainer may use one
store at once from two processes: the file is in WAL mode (readers never block
the writer), every write is its own ``BEGIN IMMEDIATE`` transaction, and a
waiting writer retries for ``timeout`` seconds.

Durability: each judgment is committed before :meth:`PreferenceStore.add_judgment`
returns, so neither a SIGKILL of the process nor a power cut can lose it (see
:mod:`prefgym.store._file`, which also holds the schema and the array encoding).
Queries and their leases are :mod:`prefgym.store._queries`; the records the store
hands out are :mod:`prefgym.store._records`.
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Sequence
from typing import Any

from prefgym.judgments import Preference
from prefgym.segments import Segment
from prefgym.store._file import (
    CHUNK,
    StoreError,
    decode_array,
    encode_array,
)
from prefgym.store._queries import QueryQueue
from prefgym.store._records import (
    Judgeable,
    StoredJudgment,
    check_answer,
    check_name,
    check_round,
    integer_ids,
)


class PreferenceStore(QueryQueue):
    """Segments, queries and judgments of one run, in a SQLite file.

    Opening an existing store resumes it; opening a path that does not exist
    creates a store there. Use it as a context manager, or call :meth:`close`.
    The queries and their leases come from :class:`~prefgym.store._queries.QueryQueue`.
    """

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
        round = check_round(round)
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
                    encode_array("observations", segment.observations),
                    encode_array("actions", segment.actions),
                    encode_array("true_rewards", segment.true_rewards),
                    None if frames is None else encode_array("frames", frames),
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
        ids = integer_ids(ids, "segment ids")
        column = "frames" if frames else "NULL"
        found: dict[int, Segment] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.connection.execute(
                f"SELECT id, env_id, observations, actions, true_rewards, {column}, info"
                f" FROM segments WHERE id IN ({marks})",
                chunk,
            ):
                found[row[0]] = Segment(
                    observations=decode_array(row[2]),
                    actions=decode_array(row[3]),
                    true_rewards=decode_array(row[4]),
                    frames=None if row[5] is None else decode_array(row[5]),
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
        return self.add_judgments([(query_id, integer_ids(order, "a ranking"))], judge)[0]

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
        check_name(judge)
        answers: list[tuple[int, Preference | None, tuple[int, ...] | None]] = []
        for query_id, answer in items:
            if isinstance(answer, str):
                answers.append((operator.index(query_id), Preference.parse(answer), None))
            else:
                answers.append((operator.index(query_id), None, integer_ids(answer, "a ranking")))
        now = self.clock()
        ids = []
        with self._write() as conn:
            for query_id, preference, order in answers:
                segment_ids = self._query_ids(conn, query_id)
                check_answer(query_id, segment_ids, preference, order)
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
