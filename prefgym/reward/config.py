"""The settings of reward models and of the learner that fits them.

Cheap to import (no torch): the CLI builds its flags from these dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

Activation = Literal["leaky_relu", "relu", "tanh", "gelu"]
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)


@dataclass(frozen=True)
class RewardModelConfig:
    """Shape of a reward-model ensemble."""

    n_members: int = 3
    """Networks in the ensemble; their disagreement drives active query selection."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of each member; ``()`` gives a linear model."""
    activation: Activation = "leaky_relu"
    """Nonlinearity between hidden layers (Christiano et al. 2017 use leaky ReLU)."""
    use_actions: bool = True
    """Whether members see the action as well as the observation, r(o, a) rather than r(o)."""
    cnn: Literal["christiano", "compact"] = "christiano"
    """Pixel observations only: the convolutions of :mod:`prefgym.reward._cnn`, Christiano et
    al.'s four layers, or two cheaper ones for the arcade games on a CPU."""

    def __post_init__(self) -> None:
        if self.cnn not in ("christiano", "compact"):
            raise ValueError(f"cnn must be 'christiano' or 'compact', got {self.cnn!r}")
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members}")
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if any(int(h) != h or h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")


RankingLoss = Literal["plackett_luce", "pairs"]
"""How a K-wise ranking trains: Plackett-Luce, or its C(K, 2) pairs averaged."""


@dataclass(frozen=True)
class LearnerConfig:
    """How the learner fits a reward model."""

    batch_size: int = 64
    """Judgments per gradient step."""
    lr: float = 1e-3
    """Adam learning rate."""
    max_epochs: int = 100
    """Passes over the training judgments per call, at most (more only to reach ``min_steps``)."""
    min_steps: int = 0
    """Adam steps an ensemble takes, counted over all calls on it, before the held-out loss may
    stop a fit or choose its weights (0: from the first epoch). With few judgments an epoch is a
    single step, and a patience counted in epochs can stop a first fit a few steps from its
    random start; later, warm-started fits stop on the held-out loss alone. The presets set it
    per task (``prefgym.runs`` ``learner_preset``)."""
    label_noise: float = 0.1
    """Probability ``eps`` that the judge answers at random: P' = (1 - eps) P + eps / 2."""
    val_fraction: float = 1 / math.e
    """Fraction of the judgments held out for early stopping and L2 tuning."""
    min_val: int = 2
    """Fewest held-out judgments worth validating on; with fewer, all judgments train."""
    weight_decay: float = 1e-3
    """Initial L2 coefficient (Adam's coupled ``weight_decay``: gradient of 0.5 λ ||θ||²)."""
    tune_weight_decay: bool = True
    """Adjust the L2 coefficient after each call to keep val / train loss in ``ratio_band``."""
    ratio_band: tuple[float, float] = (1.1, 1.5)
    """Band for validation loss / training loss; above it L2 grows, below it L2 shrinks."""
    weight_decay_factor: float = 2.0
    """Factor by which the L2 coefficient grows or shrinks."""
    weight_decay_range: tuple[float, float] = (1e-6, 10.0)
    """Bounds the tuned L2 coefficient stays within."""
    patience: int = 5
    """Epochs without a better validation loss before stopping; the best weights are kept."""
    bootstrap: bool = True
    """Train each member on its own bootstrap resample of the training judgments."""
    ranking_loss: RankingLoss = "plackett_luce"
    """K-wise rankings train with Plackett-Luce, or as their C(K, 2) pairs averaged
    (``pairs``, InstructGPT's reward-model loss)."""
    normalise: bool = True
    """Refit the ensemble's normalisation on the given segments after fitting."""
    standardise_inputs: bool = False
    """Before fitting, standardise MLP members' inputs on the given segments (after the first
    fit the rewards stay as they were; gradients stop favouring the widest inputs). For rewards
    whose parts differ in scale by orders of magnitude; off by default."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs", "patience", "min_val"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_steps < 0:
            raise ValueError(f"min_steps must be >= 0, got {self.min_steps}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.label_noise < 1:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        low, high = self.ratio_band
        if not 1 <= low <= high < math.inf:
            raise ValueError(f"ratio_band must satisfy 1 <= low <= high, got {self.ratio_band}")
        if not 1 < self.weight_decay_factor < math.inf:
            raise ValueError(f"weight_decay_factor must be > 1, got {self.weight_decay_factor}")
        least, most = self.weight_decay_range
        if not 0 <= least <= most < math.inf:
            raise ValueError(f"weight_decay_range must satisfy 0 <= low <= high, got {least, most}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
