"""The segments of a store: what judges compare, with their arrays encoded as bytes.

The functions here take the open :class:`~prefgym.store._file.StoreFile`; the
methods of :class:`~prefgym.store._store.PreferenceStore` that handle segments
call them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from prefgym.segments import Segment, first_non_finite
from prefgym.store._file import CHUNK, StoreError, StoreFile, decode_array, encode_array
from prefgym.store._records import check_round, integer_ids


def insert_segments(
    file: StoreFile, segments: Sequence[Segment], *, round: int = 0, keep_frames: bool = True
) -> list[int]:
    """Store segments in one transaction.

    Args:
        file: The open store file.
        segments: The segments; their ``info`` must be JSON-serialisable (it
            comes back as JSON does: tuples as lists, keys as strings).
        round: The loop's round that produced them.
        keep_frames: Store the frames (when a segment has them); frames are
            most of a segment's bytes, so leave them out when no person will look.

    Returns:
        The new ids, in the order of ``segments``.

    Raises:
        ValueError: A segment's observations, actions or true rewards hold NaN
            or an infinity, or its info is not JSON; nothing of the batch is stored.
    """
    round = check_round(round)
    rows = []
    for i, segment in enumerate(segments):
        _check_finite(i, segment)
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
    now = file.clock()
    sql = (
        "INSERT INTO segments (env_id, round, created, length, observations, actions,"
        " true_rewards, frames, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    with file.write() as conn:
        return [int(conn.execute(sql, (r[0], round, now, *r[1:])).lastrowid or 0) for r in rows]


def _check_finite(index: int, segment: Segment) -> None:
    """Refuse a segment whose numbers are not finite: a NaN stored is a NaN in every fit."""
    bad = first_non_finite(segment)
    if bad is not None:
        raise ValueError(
            f"segment {index} of the batch (env_id {segment.env_id!r}) has "
            f"{bad.value} in its {bad.array} at index {list(bad.index)} ({bad.count} "
            "non-finite values in all); the store holds finite numbers only, so nothing "
            "of the batch was stored: find where the NaN or inf came from (the env, or a "
            "wrapper), or drop the segment"
        )


def load_segments(file: StoreFile, ids: Sequence[int], *, frames: bool = True) -> list[Segment]:
    """Load segments, in the order of ``ids`` (an id may repeat).

    Args:
        file: The open store file.
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
        for row in file.connection.execute(
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
        raise StoreError(f"unknown segment id(s) {missing} in {file.path}")
    return [found[i] for i in ids]


def list_segment_ids(file: StoreFile, *, round: int | None = None) -> list[int]:
    """Ids of all segments, or of one round's, ascending."""
    if round is None:
        rows = file.connection.execute("SELECT id FROM segments ORDER BY id")
    else:
        rows = file.connection.execute(
            "SELECT id FROM segments WHERE round = ? ORDER BY id", (round,)
        )
    return [r[0] for r in rows]


def count_segments(file: StoreFile) -> int:
    """Number of stored segments."""
    return int(file.connection.execute("SELECT COUNT(*) FROM segments").fetchone()[0])
