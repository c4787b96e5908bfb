"""Plans: how many queries are due after so much training, and where each round ends.

The control loop follows the label schedule of Christiano et al. 2017 with a
refit every ``round_steps`` agent steps; the text game labels in a few rounds
at fixed iterations (iterated RLHF), and a round lasts until the next one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from prefgym.loop._schedule import LabelSchedule


@dataclass(frozen=True)
class StepRounds:
    """The control loop's plan: labels due by the label schedule, a refit every ``round_steps``."""

    schedule: LabelSchedule
    """Queries due after a number of agent steps."""
    round_steps: int
    """Agent steps between two refits."""

    @property
    def total(self) -> int:
        """Agent steps of the run."""
        return self.schedule.total_steps

    def due(self, progress: int) -> int:
        """Queries that should have been asked after ``progress`` agent steps."""
        return self.schedule.due(progress)

    def round_end(self, progress: int) -> int:
        """Where the round that starts at ``progress`` steps ends."""
        return min(progress + self.round_steps, self.total)


@dataclass(frozen=True)
class LabelRounds:
    """Labelling rounds at fixed points: ``counts[r]`` queries are asked at ``starts[r]``."""

    counts: tuple[int, ...]
    """Queries of each round."""
    starts: tuple[int, ...]
    """Where each round starts, strictly increasing from 0."""
    total: int
    """Progress at which the run ends."""

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.starts) or not self.starts or self.starts[0] != 0:
            raise ValueError(
                f"rounds need one count per start and a first start at 0, got counts "
                f"{list(self.counts)} and starts {list(self.starts)}"
            )
        if any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)):
            raise ValueError(f"round starts must increase strictly, got {list(self.starts)}")
        if min(self.counts) < 0:
            raise ValueError(f"round counts must be >= 0, got {list(self.counts)}")

    @classmethod
    def merged(cls, counts: list[int], starts: list[int], total: int) -> LabelRounds:
        """The rounds, those that start at the same point merged (a run shorter than its rounds).

        A round that would start when the run ends is never asked.
        """
        merged: dict[int, int] = {}
        for count, start in zip(counts, starts, strict=True):
            if start < total or start == 0:
                merged[start] = merged.get(start, 0) + count
        return cls(tuple(merged.values()), tuple(merged), total)

    def round_of(self, progress: int) -> int:
        """The round that ``progress`` falls in."""
        return bisect.bisect_right(self.starts, progress) - 1

    def due(self, progress: int) -> int:
        """Queries of every round that has started by ``progress``."""
        return sum(self.counts[: self.round_of(progress) + 1])

    def round_end(self, progress: int) -> int:
        """The next round's start, or the end of the run."""
        later = self.round_of(progress) + 1
        return min(self.starts[later], self.total) if later < len(self.starts) else self.total
