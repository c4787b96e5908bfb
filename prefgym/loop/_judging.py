"""The loop's dealings with the store: segments kept at hand, and pending queries judged.

Both halves of the suite go through here: a control run's pairs and a text run's
K-wise ranking queries are judged by the same step, so a judge that ranks is
asked to rank wherever the query has more than two segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefgym.judges import Oracle
from prefgym.segments import Segment
from prefgym.store import PreferenceStore


class SegmentCache:
    """Segments of a store, kept in memory without their frames once loaded or added."""

    def __init__(self, store: PreferenceStore) -> None:
        """Cache segments of ``store``."""
        self.store = store
        self._segments: dict[int, Segment] = {}

    def add(self, segments: Sequence[Segment], *, round: int) -> list[int]:
        """Store ``segments`` (frames and all) and keep them at hand; returns their ids."""
        if not segments:
            return []
        ids = self.store.add_segments(segments, round=round)
        light = [replace(s, frames=None) for s in segments]  # frames live in the store only
        self._segments.update(zip(ids, light, strict=True))
        return ids

    def load(self, ids: Sequence[int]) -> list[Segment]:
        """The segments with these ids, in order, without frames."""
        missing = [i for i in ids if i not in self._segments]
        if missing:
            loaded = self.store.get_segments(missing, frames=False)
            self._segments.update(zip(missing, loaded, strict=True))
        return [self._segments[i] for i in ids]


def judge_pending(store: PreferenceStore, oracle: Oracle, segments: SegmentCache) -> None:
    """Let ``oracle`` answer every query it has not answered yet, in one transaction.

    Pairs are judged together (one vectorised call), then each K-wise query is
    ranked; a ranking the oracle skips (None) stays pending.
    """
    pending = store.pending_queries(judge=oracle.name)
    if not pending:
        return
    pairs = [q for q in pending if len(q.segment_ids) == 2]
    answers: list[tuple[int, Any]] = []
    if pairs:
        left = segments.load([q.segment_ids[0] for q in pairs])
        right = segments.load([q.segment_ids[1] for q in pairs])
        answers += zip([q.id for q in pairs], oracle.judge(left, right), strict=True)
    for query in (q for q in pending if len(q.segment_ids) > 2):
        order = oracle.rank(segments.load(query.segment_ids))
        if order is not None:
            answers.append((query.id, [query.segment_ids[i] for i in order]))
    if answers:
        store.add_judgments(answers, oracle.name)
