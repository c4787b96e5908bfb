"""The preference store's records: queries, judgments, training data, and what they may hold.

The checks here turn a caller's arguments into valid fields, or raise an error
that names the value received. Nothing here reads the store: the table modules
build these records from rows, and :mod:`prefgym.store._store` hands them out.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from prefgym.judgments import Preference
from prefgym.store._file import StoreError


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
    seconds: float | None = None
    """Seconds the judge took, from the query shown to the answer (a person's; None for an
    oracle, and for judgments stored before version 2 of the store)."""


Judgeable = Preference | str | Sequence[int]
"""A preference (for a pair query) or an order of segment ids (for a ranking query)."""


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


def collect_training_data(judgments: Iterable[StoredJudgment]) -> TrainingData:
    """The trainable part of ``judgments``, as the reward-model learner takes it.

    :func:`prefgym.store.training_data` reads a store's judgments and hands them
    here; this function only reshapes them, so it needs no store. Incomparable
    judgments are left out; the same query judged by two judges gives two rows.

    Args:
        judgments: Stored judgments, in the order their rows should have.
    """
    pairs: list[tuple[int, int]] = []
    targets: list[float] = []
    orders: list[tuple[int, ...]] = []
    for j in judgments:
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


MAX_ID = 2**63 - 1
"""The largest id SQLite holds (a signed 64-bit integer)."""


def check_id(value: Any, what: str) -> int:
    """An id (or count) as SQLite holds it: an int in ``0..2**63 - 1``; ``what`` names it."""
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{what} must be >= 0, got {number}")
    if number > MAX_ID:
        raise ValueError(f"{what} must be <= 2**63 - 1 (SQLite's largest integer), got {number}")
    return number


def integer_ids(values: Sequence[Any], what: str) -> tuple[int, ...]:
    """``values`` as a tuple of ints in ``0..2**63 - 1``; ``what`` names them in the error."""
    try:
        ids = tuple(operator.index(v) for v in values)
    except TypeError:
        raise ValueError(f"{what} must be integer ids, got {list(values)!r}") from None
    for i in ids:
        if not 0 <= i <= MAX_ID:
            raise ValueError(
                f"{what}: id {i} is out of range; ids are in 0..2**63 - 1 (SQLite's integers)"
            )
    return ids


def check_round(round: int) -> int:
    """A round of the loop: an int in ``0..2**63 - 1``."""
    return check_id(round, "round")


def check_name(value: str, what: str = "judge") -> str:
    """A judge's or labeler's name: a non-empty string that UTF-8 can encode."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} {value!r} cannot be stored: {error.object[error.start : error.end]!r} at "
            f"position {error.start} is not encodable as UTF-8 (a lone surrogate?); "
            "name it with valid text"
        ) from None
    return value


def check_answer(
    query_id: int,
    segment_ids: tuple[int, ...],
    preference: Preference | None,
    order: tuple[int, ...] | None,
) -> None:
    """Check that an answer fits its query: a preference for a pair, a ranking of its segments."""
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
