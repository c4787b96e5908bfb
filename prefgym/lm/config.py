"""The settings of a language reward model.

Cheap to import (no torch or transformers): the CLI builds its flags from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Backbone = Literal["sft", "minilm"]


@dataclass(frozen=True)
class TextRewardConfig:
    """The shape of a language reward model."""

    backbone: Backbone = "sft"
    """``sft``: a copy of the policy's own trunk (the default); ``minilm``: the packaged encoder."""
    n_members: int = 1
    """Ensemble members, each a full copy of the backbone (disagreement selection needs >= 2)."""

    def __post_init__(self) -> None:
        if self.backbone not in ("sft", "minilm"):
            raise ValueError(f"backbone must be 'sft' or 'minilm', got {self.backbone!r}")
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members}")
