"""The query queue: questions put to judges, and leases so no two windows show the same one.

A query lists two segments (a pair) or more (a ranking query). It is pending
until judged; a labeling window claims a pending query with a lease, so that
another window, perhaps in another process, does not show it too.

The functions here take the open :class:`~prefgym.store._file.StoreFile`; the
methods of :class:`~prefgym.store._store.PreferenceStore` that handle queries
call them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefgym.store._file import CHUNK, StoreError, StoreFile
from prefgym.store._records import Query, check_id, check_name, check_round, integer_ids


def insert_queries(
    file: StoreFile, queries: Sequence[Sequence[int]], *, round: int = 0
) -> list[int]:
    """Store queries in one transaction.

    Args:
        file: The open store file.
        queries: Each a sequence of >= 2 distinct segment ids, left to right.
        round: The loop's round that asked them.

    Returns:
        The new ids, in the order of ``queries``.

    Raises:
        StoreError: A segment id is not in the store (nothing is written).
    """
    round = check_round(round)
    checked = []
    for i, query in enumerate(queries):
        ids = integer_ids(query, f"query {i}")
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise ValueError(f"query {i} needs >= 2 distinct segment ids, got {list(ids)}")
        checked.append(ids)
    wanted = sorted({s for ids in checked for s in ids})
    now = file.clock()
    with file.write() as conn:
        known: set[int] = set()
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id FROM segments WHERE id IN ({marks})"
            known.update(r[0] for r in conn.execute(sql, chunk))
        for i, ids in enumerate(checked):
            missing = [s for s in ids if s not in known]
            if missing:
                raise StoreError(
                    f"unknown segment id(s) {missing} in query {i} {list(ids)}; "
                    f"add the segments to {file.path} first"
                )
        sql = "INSERT INTO queries (segment_ids, round, created) VALUES (?, ?, ?)"
        return [
            int(conn.execute(sql, (json.dumps(ids), round, now)).lastrowid or 0) for ids in checked
        ]


def load_query(file: StoreFile, id: int) -> Query:
    """The query with this id; :class:`StoreError` if there is none."""
    id = check_id(id, "query id")
    row = file.connection.execute(
        "SELECT id, segment_ids, round, created FROM queries WHERE id = ?", (id,)
    ).fetchone()
    if row is None:
        raise StoreError(f"unknown query id {id} in {file.path}")
    return _query(row)


def load_pending(
    file: StoreFile, *, judge: str | None = None, limit: int | None = None
) -> list[Query]:
    """Queries nobody has judged (or ``judge`` has not judged), oldest first."""
    if limit is not None:
        limit = check_id(limit, "limit")
    sql, args = _pending_sql(judge)
    rows = file.connection.execute(
        f"SELECT id, segment_ids, round, created FROM queries q WHERE {sql} ORDER BY id LIMIT ?",
        (*args, -1 if limit is None else limit),
    )
    return [_query(r) for r in rows]


def load_queries(file: StoreFile, *, since_id: int = 0) -> list[Query]:
    """Every query with an id above ``since_id``, oldest first."""
    since_id = check_id(since_id, "since_id")
    rows = file.connection.execute(
        "SELECT id, segment_ids, round, created FROM queries WHERE id > ? ORDER BY id",
        (since_id,),
    )
    return [_query(r) for r in rows]


def count_queries(file: StoreFile) -> int:
    """Number of stored queries."""
    return int(file.connection.execute("SELECT COUNT(*) FROM queries").fetchone()[0])


def claim(
    file: StoreFile, labeler: str, *, lease_seconds: float = 300.0, judge: str | None = None
) -> Query | None:
    """Lease the oldest pending query that no one holds, so no other window shows it.

    The claim is atomic: two processes claiming at once never get the same
    query. A lease ends when it expires, when it is released, or when the
    query is judged. Queries leased by ``labeler`` itself are not handed out again.

    Args:
        file: The open store file.
        labeler: Who holds the lease (a window or session id).
        lease_seconds: How long the lease lasts if never released.
        judge: Pending means "not judged by ``judge``"; None means "not judged at all".

    Returns:
        The leased query, or None if every pending query is leased.
    """
    check_name(labeler, "labeler")
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
    sql, args = _pending_sql(judge)
    with file.write() as conn:
        now = file.clock()
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


def release(file: StoreFile, query_id: int, labeler: str) -> bool:
    """End ``labeler``'s lease on a query; False if it held none (e.g. it had expired)."""
    query_id = check_id(query_id, "query id")
    check_name(labeler, "labeler")
    with file.write() as conn:
        query_segment_ids(conn, file.path, query_id)
        cursor = conn.execute(
            "UPDATE queries SET lease_owner = NULL, lease_expires = NULL"
            " WHERE id = ? AND lease_owner = ?",
            (query_id, labeler),
        )
    return cursor.rowcount > 0


def renew(
    file: StoreFile, query_id: int, labeler: str, *, lease_seconds: float, exclusive: bool = False
) -> bool:
    """Extend ``labeler``'s lease on a query to ``lease_seconds`` from now (a pair on screen).

    A lease that lapsed is taken back if no one else took the query meanwhile.

    Returns:
        False if another labeler holds the query now, or (``exclusive``: a window
        showing only unanswered queries) someone has answered it: the caller moves on.
    """
    query_id = check_id(query_id, "query id")
    check_name(labeler, "labeler")
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
    with file.write() as conn:
        query_segment_ids(conn, file.path, query_id)
        now = file.clock()
        answered = "EXISTS (SELECT 1 FROM judgments j WHERE j.query_id = queries.id)"
        cursor = conn.execute(
            "UPDATE queries SET lease_owner = ?, lease_expires = ? WHERE id = ?"
            " AND (lease_owner = ? OR lease_owner IS NULL OR lease_expires <= ?)"
            + (f" AND NOT {answered}" if exclusive else ""),
            (labeler, now + lease_seconds, query_id, labeler, now),
        )
    return cursor.rowcount > 0


def lease_holders(file: StoreFile) -> dict[str, list[int]]:
    """``{owner: query ids}`` of every lease that has not expired."""
    rows = file.connection.execute(
        "SELECT lease_owner, id FROM queries WHERE lease_owner IS NOT NULL"
        " AND lease_expires > ? ORDER BY id",
        (file.clock(),),
    )
    holders: dict[str, list[int]] = {}
    for owner, query_id in rows:
        holders.setdefault(owner, []).append(query_id)
    return holders


def query_segment_ids(conn: sqlite3.Connection, path: Path, query_id: int) -> tuple[int, ...]:
    """The segment ids of query ``query_id``, read inside the caller's transaction.

    Args:
        conn: The connection, in the transaction that goes on to use the answer.
        path: The store file, for the error message.
        query_id: The query.

    Raises:
        StoreError: There is no such query.
    """
    row = conn.execute("SELECT segment_ids FROM queries WHERE id = ?", (query_id,)).fetchone()
    if row is None:
        raise StoreError(f"unknown query id {query_id} in {path}")
    return tuple(json.loads(row[0]))


def _query(row: tuple[Any, ...]) -> Query:
    return Query(id=row[0], segment_ids=tuple(json.loads(row[1])), round=row[2], created=row[3])


def _pending_sql(judge: str | None) -> tuple[str, tuple[Any, ...]]:
    if judge is not None:
        check_name(judge)
    if judge is None:
        return "NOT EXISTS (SELECT 1 FROM judgments j WHERE j.query_id = q.id)", ()
    sql = "NOT EXISTS (SELECT 1 FROM judgments j WHERE j.query_id = q.id AND j.judge = ?)"
    return sql, (judge,)
