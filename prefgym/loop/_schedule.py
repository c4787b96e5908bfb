"""The label schedule of Christiano et al. 2017: ask more early, less later.

A share of the budget is asked about the initial policy; the rest arrives at a
rate proportional to ``T0 / (T + T0)`` over the agent's ``T`` steps, so the
cumulative count after ``T`` steps is ``rest * log(1 + T/T0) / log(1 + S/T0)``
for a run of ``S`` steps: it reaches the budget exactly at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ATARI_INITIAL_LABELS = 500
"""Labels asked about the initial policy in Christiano et al.'s Atari runs."""
ATARI_T0 = 5_000_000
"""Decay constant of Christiano et al.'s Atari label rate, in agent steps."""


@dataclass(frozen=True)
class LabelSchedule:
    """How many labels should have been asked for after a number of agent steps."""

    budget: int
    """Total number of labels of the run."""
    total_steps: int
    """Agent steps of the run ``S``."""
    initial_fraction: float = 0.25
    """Share of the budget asked about the initial policy, before any training."""
    t0: float | None = None
    """Decay constant ``T0`` in steps; None means ``total_steps / 5``."""

    def __post_init__(self) -> None:
        if self.budget < 0:
            raise ValueError(f"budget must be >= 0 labels, got {self.budget}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if not 0.0 <= self.initial_fraction <= 1.0:
            raise ValueError(f"initial_fraction must be in [0, 1], got {self.initial_fraction}")
        if self.t0 is not None and not (math.isfinite(self.t0) and self.t0 > 0):
            raise ValueError(f"t0 must be a finite number of steps > 0, got {self.t0}")

    @classmethod
    def atari(cls, budget: int = 5_500, total_steps: int = 10_000_000) -> LabelSchedule:
        """Christiano et al.'s Atari schedule: 500 labels first, then a rate ``∝ 5e6 / (T + 5e6)``.

        Args:
            budget: Total labels, at least the 500 initial ones (the paper's runs used 5,500).
            total_steps: Agent steps of the run (the paper's: 10 million).
        """
        if budget < ATARI_INITIAL_LABELS:
            raise ValueError(
                f"the Atari schedule asks {ATARI_INITIAL_LABELS} labels before training, so the "
                f"budget must be >= {ATARI_INITIAL_LABELS}, got {budget}"
            )
        return cls(budget, total_steps, initial_fraction=ATARI_INITIAL_LABELS / budget, t0=ATARI_T0)

    @property
    def initial(self) -> int:
        """Labels asked before training starts."""
        return round(self.budget * self.initial_fraction)

    def due(self, step: int) -> int:
        """Cumulative labels that should have been asked for after ``step`` agent steps."""
        if step <= 0:
            return self.initial
        t0 = self.t0 if self.t0 is not None else self.total_steps / 5
        progress = math.log1p(min(step, self.total_steps) / t0) / math.log1p(self.total_steps / t0)
        return self.initial + math.floor((self.budget - self.initial) * progress + 1e-9)
