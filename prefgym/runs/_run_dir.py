"""The run directory: everything a run leaves behind, at fixed paths."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefgym import __version__
from prefgym.errors import RunInUse
from prefgym.files import create_atomic, read_json, readable_directory, settle_directory
from prefgym.runs.config import TextTrainConfig, TrainConfig
from prefgym.schema import from_json

if TYPE_CHECKING:
    from prefgym.store import PreferenceStore

CONFIG_FILE = "config.json"
POLICY_DIR = "policy"
"""A text run's trainer checkpoint (policy, optimizer, generator)."""
FINISHED_KEY = "finished"
"""Store meta key of a finished run: what it reached and when."""
VERSION_KEY = "config_version"
CONFIG_VERSION = 2
"""The version of ``config.json`` this prefgym writes. A change to a settings dataclass
that old files cannot be read as (a new field without which an old run would change)
bumps it and adds a step to :data:`CONFIG_MIGRATIONS`."""


def _add_reward_source(config: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: control runs gained ``reward`` (a version-1 run learned its reward)."""
    train = config.get("train")
    if isinstance(train, dict) and "reward" not in train:
        config = {**config, "train": {**train, "reward": "learned"}}
    return {**config, VERSION_KEY: 2}


CONFIG_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _add_reward_source,
}
"""``{version: step}``: each step turns a config of ``version`` into one of ``version + 1``."""


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

        A save interrupted by a kill is found as its complete version, so a kill
        mid-save never passes for a run without an agent; nothing is changed.

        Raises:
            ValueError: The run's agent is only in Stable-Baselines3's zip, which
                prefgym no longer opens; the message names the convert command.
        """
        if readable_directory(self.agent).exists():
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
    def lock_file(self) -> Path:
        """Held (``flock``) by the one process that trains the run; names its pid."""
        return self.path / "trainer.lock"

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

        ``config`` is ``{"train": {...}}`` or ``{"text": {...}}``; the prefgym and
        config versions are added.

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
        text = json.dumps({**config, VERSION_KEY: CONFIG_VERSION, "prefgym": __version__}, indent=2)
        try:  # atomic (never half a config) and exclusive (two starts at once: one wins)
            create_atomic(run.config, text + "\n")
        except FileExistsError:
            raise FileExistsError(
                f"{run.path} already holds a run; continue it with `{run.resume_command()}` "
                "or choose another --out"
            ) from None
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
        """The run's ``config.json`` as written, brought to :data:`CONFIG_VERSION`.

        Raises:
            ValueError: The file is not a JSON object, or was written by a newer prefgym.
        """
        config = read_json(self.config, "the run's config")
        if not isinstance(config, dict):
            raise ValueError(f"{self.config} must hold a JSON object; it is not a run's config")
        version = config.get(VERSION_KEY, 1)  # runs before the version was written: version 1
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{self.config}: {VERSION_KEY} must be a positive integer")
        if version > CONFIG_VERSION:
            raise ValueError(
                f"{self.config} was written by a newer prefgym (config version {version}; "
                f"this prefgym reads up to {CONFIG_VERSION}); upgrade prefgym to use this run"
            )
        for step in range(version, CONFIG_VERSION):
            if step not in CONFIG_MIGRATIONS:
                raise ValueError(f"{self.config}: config version {version} cannot be read")
            config = CONFIG_MIGRATIONS[step](config)
        return config

    def train_config(self) -> TrainConfig:
        """The settings of a control run, each field checked (see :mod:`prefgym.schema`).

        Raises:
            ValueError: The run is a text run, or a setting is missing, unknown or wrong.
        """
        return from_json(TrainConfig, self._section("train"), f"{self.config}: train")

    def text_config(self) -> TextTrainConfig:
        """The settings of a text run, each field checked (see :mod:`prefgym.schema`).

        Raises:
            ValueError: The run is a control run, or a setting is missing, unknown or wrong.
        """
        return from_json(TextTrainConfig, self._section("text"), f"{self.config}: text")

    def is_text(self) -> bool:
        """Whether the run is a text run (``prefgym text train``)."""
        return "text" in self.read_config()

    def resume_command(self) -> str:
        """The command that carries this run on."""
        text = self.config.exists() and "text" in read_json(self.config, "the run's config")
        return f"prefgym {'text ' if text else ''}train --resume {self.path}"

    def settle_checkpoints(self) -> None:
        """Finish or undo the checkpoint saves a kill interrupted (call under the trainer lock)."""
        for directory in (self.agent, self.reward_model, self.path / POLICY_DIR):
            settle_directory(directory)

    @contextmanager
    def trainer_lock(self) -> Iterator[None]:
        """Hold the run for this process while it trains; a second trainer is refused.

        The lock is an advisory ``flock`` on :attr:`lock_file`: the kernel drops it
        when the process ends however it ends, so the lock of a killed trainer is
        taken over by the next one without any cleanup.

        Raises:
            RunInUse: Another live process trains the run; the message names its pid.
        """
        handle = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 (held to the end)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunInUse(
                    f"run {self.path} is being trained by {holder}; a second trainer would "
                    "duplicate its work: wait for it, or stop it first"
                ) from None
            handle.seek(0)
            handle.truncate()
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
            handle.flush()
            self.settle_checkpoints()
            yield
        finally:
            handle.close()  # releases the lock

    def check_store(self) -> None:
        """Refuse a run whose store is gone or empty while its checkpoints remain.

        An empty or missing file would otherwise be taken for a new store, and the
        run would start its judgments afresh beside an agent trained on others.

        Raises:
            ValueError: The store is missing or empty but the run has begun.
        """
        begun = self.metrics.is_file() or self.agent.exists() or self.reward_model.exists()
        state = "missing" if not self.store.is_file() else "empty"
        if begun and (state == "missing" or self.store.stat().st_size == 0):
            raise ValueError(
                f"{self.store} is {state} but {self.path} has checkpoints: the run's "
                "judgments are gone; restore the store from a copy or start a new run"
            )

    def finished(self) -> dict[str, Any] | None:
        """What the run reached when it finished (``steps``, ``labels``, ``at``), or None."""
        from prefgym.store import PreferenceStore

        self.check_store()
        if not self.store.is_file():
            return None
        with PreferenceStore(self.store) as store:
            note = store.get_meta(FINISHED_KEY)
        return note if isinstance(note, dict) else None

    def mark_finished(self, store: PreferenceStore, **reached: int) -> None:
        """Record in ``store`` (the run's) that the run is done, with what it ``reached``."""
        store.set_meta(FINISHED_KEY, {**reached, "at": time.strftime("%Y-%m-%d %H:%M:%S")})

    def finished_message(self, note: dict[str, Any]) -> str:
        """What ``--resume`` of a finished run says."""
        reached = ", ".join(f"{v} {k}" for k, v in note.items() if k != "at")
        return (
            f"run {self.path} finished at {note.get('at', '?')} ({reached}); nothing to do. "
            f"`prefgym report {self.path}` shows it; to train longer, start a new run"
        )

    def _section(self, kind: str) -> dict[str, Any]:
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
        raise ValueError(f"{self.config} holds no run settings (no {kind!r} object)")
