"""The judgments of a store: each judge's answer to a query, a preference or a ranking.

A judge answers a query once; recording a judgment ends any lease on its query,
and undoing one makes the query pending again. The functions here take the open
:class:`~prefgym.store._file.StoreFile`; the methods of
:class:`~prefgym.store._store.PreferenceStore` that handle judgments call them.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from prefgym.judgments import Preference
from prefgym.store._file import StoreError, StoreFile
from prefgym.store._queries import query_segment_ids
from prefgym.store._records import (
    Judgeable,
    StoredJudgment,
    check_answer,
    check_id,
    check_name,
    integer_ids,
)


class JudgedMeanwhile(StoreError):
    """Another judge answered the query while it was shown to this one; nothing was stored."""


def insert_judgments(
    file: StoreFile,
    items: Sequence[tuple[int, Judgeable]],
    judge: str,
    *,
    seconds: float | None = None,
    exclusive: bool = False,
) -> list[int]:
    """Record many judgments by one judge in one transaction: all or none are stored.

    Args:
        file: The open store file.
        items: ``(query_id, answer)`` pairs; the answer is a :class:`Preference`
            (or its name) for a pair query, a sequence of segment ids best
            first for a ranking query.
        judge: Who judged.
        seconds: Seconds the judge took (a person, from the query shown to the answer).
        exclusive: The judge was shown queries nobody had answered (a labeling window
            that does not ask for second opinions): if another judge has answered one
            of them meanwhile, :class:`JudgedMeanwhile` is raised and nothing is stored,
            so two windows never both answer a pair by accident. Decided inside the
            write transaction, with no clock involved.

    Returns:
        The new judgment ids, in the order of ``items``.
    """
    check_name(judge)
    if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    answers: list[tuple[int, Preference | None, tuple[int, ...] | None]] = []
    for query_id, answer in items:
        if isinstance(answer, str):
            answers.append((check_id(query_id, "query id"), Preference.parse(answer), None))
        else:
            ranking = integer_ids(answer, "a ranking")
            answers.append((check_id(query_id, "query id"), None, ranking))
    now = file.clock()
    ids = []
    with file.write() as conn:
        for query_id, preference, order in answers:
            segment_ids = query_segment_ids(conn, file.path, query_id)
            check_answer(query_id, segment_ids, preference, order)
            _check_unjudged(conn, query_id, judge, exclusive)
            cursor = conn.execute(
                "INSERT INTO judgments (query_id, preference, ranking, judge, created, seconds)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    query_id,
                    None if preference is None else preference.value,
                    None if order is None else json.dumps(order),
                    judge,
                    now,
                    seconds,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
            conn.execute(
                "UPDATE queries SET lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                (query_id,),
            )
    return ids


def _check_unjudged(conn: sqlite3.Connection, query_id: int, judge: str, exclusive: bool) -> None:
    """Raise unless ``judge`` has not answered the query (nor anyone else, if ``exclusive``)."""
    row = conn.execute(
        "SELECT id FROM judgments WHERE query_id = ? AND judge = ?", (query_id, judge)
    ).fetchone()
    if row is not None:
        raise StoreError(
            f"query {query_id} already has judgment {row[0]} by judge {judge!r}; "
            "a judge answers a query once (undo that judgment to change it)"
        )
    if not exclusive:
        return
    other = conn.execute(
        "SELECT judge FROM judgments WHERE query_id = ? ORDER BY id LIMIT 1", (query_id,)
    ).fetchone()
    if other is not None:
        raise JudgedMeanwhile(
            f"query {query_id} was judged by {other[0]!r} while it was shown to "
            f"{judge!r}; nothing was stored (ask for a second opinion with --rejudge)"
        )


def delete_judgment(file: StoreFile, judgment_id: int) -> StoredJudgment:
    """Delete one judgment (committed at once); its query is pending again.

    Args:
        file: The open store file.
        judgment_id: The judgment to delete.

    Returns:
        The judgment that was removed.

    Raises:
        StoreError: There is no such judgment.
    """
    judgment_id = check_id(judgment_id, "judgment id")
    with file.write() as conn:
        found = _judgments(conn, "j.id = ?", (judgment_id,))
        if not found:
            raise StoreError(f"unknown judgment id {judgment_id} in {file.path}")
        conn.execute("DELETE FROM judgments WHERE id = ?", (judgment_id,))
    return found[0]


def load_judgments(
    file: StoreFile, *, judge: str | None = None, since_id: int = 0
) -> list[StoredJudgment]:
    """Judgments with id > ``since_id`` (by ``judge`` if given), oldest first."""
    since_id = check_id(since_id, "since_id")
    if judge is None:
        return _judgments(file.connection, "j.id > ?", (since_id,))
    return _judgments(file.connection, "j.id > ? AND j.judge = ?", (since_id, check_name(judge)))


def count_judgments(file: StoreFile, *, judge: str | None = None) -> int:
    """Number of stored judgments (by ``judge`` if given)."""
    if judge is not None:
        check_name(judge)
    if judge is None:
        row = file.connection.execute("SELECT COUNT(*) FROM judgments").fetchone()
    else:
        sql = "SELECT COUNT(*) FROM judgments WHERE judge = ?"
        row = file.connection.execute(sql, (judge,)).fetchone()
    return int(row[0])


def _judgments(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[StoredJudgment]:
    rows = conn.execute(
        "SELECT j.id, j.query_id, q.segment_ids, j.preference, j.ranking, j.judge, j.created,"
        " j.seconds FROM judgments j JOIN queries q ON q.id = j.query_id"
        f" WHERE {where} ORDER BY j.id",
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
            seconds=r[7],
        )
        for r in rows
    ]
