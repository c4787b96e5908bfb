"""The settings of the control loop: label budget, rounds, segments and query selection.

Cheap to import (no torch): the CLI builds its flags from these dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from prefgym.loop._schedule import LabelSchedule

Selection = Literal["uniform", "disagreement", "entropy"]
"""How query pairs are chosen: at random, by ensemble disagreement, or by entropy."""
SELECTIONS: tuple[Selection, ...] = get_args(Selection)


@dataclass(frozen=True)
class LoopConfig:
    """Settings of the preference loop."""

    labels: int = 100
    """Label budget of the run."""
    steps: int = 100_000
    """Agent environment steps of the run."""
    segment_length: int = 25
    """Steps per segment shown to the judge."""
    initial_fraction: float = 0.25
    """Share of the labels asked about the initial policy."""
    label_t0: float | None = None
    """Decay constant ``T0`` of the label rate ``∝ T0 / (T + T0)``, in agent steps; None means
    ``steps / 5``. Christiano et al.'s Atari runs used ``prefgym.loop.ATARI_T0`` (5e6)."""
    round_steps: int = 5_000
    """Agent steps between two refits of the reward model."""
    selection: Selection = "disagreement"
    """How pairs are chosen from the candidates."""
    oversample: int = 10
    """Candidates drawn per query for active selection."""
    pool_size: int = 400
    """The most recent segments that queries are drawn from."""
    initial_segments_per_label: float = 4.0
    """Segments rolled out from the initial policy per initial label."""
    rollout_envs: int = 4
    """Vector envs stepped together in rollouts outside training (the initial segments): more
    envs means fewer policy calls, each on a bigger batch, and another random stream for the rest
    of the run. Rollouts that keep rendered frames use at most 4, one renderer each."""
    poll_seconds: float = 0.5
    """How often to look for people's judgments while the loop waits for them."""
    keep_frames: bool = False
    """Show a person real clips: queries come from fresh rollouts of the current policy with
    rendered frames (kept in the store), not from the frameless training rollouts."""
    frame_stride: int = 3
    """With ``keep_frames``, keep every ``frame_stride``-th pixel of a frame in each direction."""

    def __post_init__(self) -> None:
        names = (
            "labels",
            "steps",
            "segment_length",
            "round_steps",
            "oversample",
            "pool_size",
            "rollout_envs",
        )
        for name in (*names, "frame_stride"):
            if getattr(self, name) < (0 if name == "labels" else 1):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.label_t0 is not None and not (math.isfinite(self.label_t0) and self.label_t0 > 0):
            raise ValueError(f"label_t0 must be a finite number of steps > 0, got {self.label_t0}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        self.schedule()  # checks initial_fraction

    def schedule(self) -> LabelSchedule:
        """The label schedule these settings describe."""
        return LabelSchedule(self.labels, self.steps, self.initial_fraction, t0=self.label_t0)
