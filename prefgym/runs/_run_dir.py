"""The run directory: everything a run leaves behind, at fixed paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefgym.files import read_json, settle_directory, write_json

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
        """The agent checkpoint (a directory of safetensors and JSON)."""
        return self.path / "agent"

    @property
    def legacy_agent(self) -> Path:
        """Where earlier releases kept the agent: Stable-Baselines3's zip, which holds pickles."""
        return self.path / "agent.zip"

    def saved_agent(self) -> Path | None:
        """The agent checkpoint if the run has saved one, else None (a fresh run).

        An interrupted save is settled first, so a kill mid-save never passes for
        a run without an agent.

        Raises:
            ValueError: The run's agent is only in Stable-Baselines3's zip, which
                prefgym no longer opens; the message names the convert command.
        """
        if settle_directory(self.agent).exists():
            return self.agent
        if self.legacy_agent.exists():
            raise ValueError(self.legacy_message())
        return None

    def legacy_message(self) -> str:
        """Why the run's ``agent.zip`` is not opened, and the command that converts it."""
        return (
            f"{self.legacy_agent} is Stable-Baselines3's pickle format, which prefgym no longer "
            f"opens (it can run code); if you trust whoever made {self.path}, convert it with "
            f"`prefgym convert {self.path} --trust`"
        )

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
                f"{run.path} already holds a run; continue it with `{run.resume_command()}` "
                "or choose another --out"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        write_json(run.config, config)  # atomic: a crash never leaves half a config
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
        config: dict[str, Any] = read_json(self.config, "the run's config")
        return config

    def resume_command(self) -> str:
        """The command that carries this run on."""
        text = "text" in self.read_config() if self.config.exists() else False
        return f"prefgym {'text ' if text else ''}train --resume {self.path}"

    def settings(self, kind: str) -> dict[str, Any]:
        """The run's settings of ``kind``: ``train`` (a control run) or ``text`` (a text run).

        Raises:
            ValueError: The run is of the other kind; the message names its command.
        """
        config = self.read_config()
        if kind in config and isinstance(config[kind], dict):
            return dict(config[kind])
        other = "text" if kind == "train" else "train"
        command = "prefgym text train" if other == "text" else "prefgym train"
        if other in config:
            raise ValueError(
                f"{self.path} is a {'text' if other == 'text' else 'control'} run; "
                f"use `{command} --resume {self.path}` and `prefgym report {self.path}`"
            )
        raise ValueError(f"{self.config} holds no run settings (no {kind!r} section)")
