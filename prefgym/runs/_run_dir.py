"""The run directory: everything a run leaves behind, at fixed paths."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path
    """The directory itself."""

    @property
    def config(self) -> Path:
        """The resolved configuration of the run (JSON)."""
        return self.path / CONFIG_FILE

    @property
    def store(self) -> Path:
        """The preference store (SQLite)."""
        return self.path / "store.sqlite"

    @property
    def reward_model(self) -> Path:
        """The reward-model checkpoint (safetensors and JSON)."""
        return self.path / "reward_model"

    @property
    def agent(self) -> Path:
        """The agent checkpoint (Stable-Baselines3's zip)."""
        return self.path / "agent.zip"

    @property
    def metrics(self) -> Path:
        """One row per round (CSV)."""
        return self.path / "metrics.csv"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files."""
        return self.path / "tensorboard"

    @property
    def plots(self) -> Path:
        """PNG plots drawn by ``prefgym report``."""
        return self.path / "plots"

    @classmethod
    def create(cls, path: str | os.PathLike[str], config: dict[str, Any]) -> RunDir:
        """Start a new run in ``path``, writing its resolved config.

        Raises:
            FileExistsError: If ``path`` already holds a run.
        """
        run = cls(Path(path))
        if run.config.exists():
            raise FileExistsError(
                f"{run.path} already holds a run; continue it with `prefgym train --resume "
                f"{run.path}` or choose another --out"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        tmp = run.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        tmp.replace(run.config)  # atomic: a crash never leaves half a config
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunDir:
        """Open an existing run.

        Raises:
            FileNotFoundError: If ``path`` holds no run.
        """
        run = cls(Path(path))
        if not run.config.exists():
            raise FileNotFoundError(
                f"{run.path} is not a prefgym run directory (no {CONFIG_FILE}); "
                "start one with `prefgym train --out PATH`"
            )
        return run

    def read_config(self) -> dict[str, Any]:
        """The resolved configuration the run was started with."""
        config: dict[str, Any] = json.loads(self.config.read_text())
        return config
