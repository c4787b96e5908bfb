"""The sweep directory: ``sweep.json``, one run directory per trial, and each trial's result.

Everything the sweep needs to resume is JSON written here by prefgym: the spec
(checked field by field on read) and one ``result.json`` per finished trial.
Ray Tune's own files (``tune/``) are written but never read back: Tune's
restore unpickles them, and nothing from disk is unpickled here.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from prefgym import __version__
from prefgym.files import create_atomic, read_json_object, write_json
from prefgym.schema import from_json
from prefgym.sweeps.config import (
    SWEEP_FILE,
    SWEEP_FORMAT,
    SWEEP_VERSION,
    TRIALS_DIR,
    SweepSpec,
    Trial,
    expand,
    spec_from_json,
)

RESULT_FILE = "result.json"
"""A finished trial's result, in its run directory."""
RESULT_FORMAT = "prefgym-trial-result"
ERROR_FILE = "trial_error.txt"
"""The last error of a trial's attempt, one line, in its run directory."""


@dataclass(frozen=True)
class TrialResult:
    """What a finished trial scored."""

    name: str
    score: float
    """The true return of the deterministic policy (control) or the final true score (text)."""
    score_std: float
    """Its standard deviation over evaluation episodes (control; 0 for text)."""
    train_seconds: float
    """Wall seconds the trial's training took (every attempt that ended; no evaluation)."""
    steps: int
    """Agent steps (control) or iterations (text) trained."""
    judgments: int
    cpu_seconds: float = 0.0
    """CPU seconds of the same (``time.process_time`` of the worker: waits for a core
    that another trial holds are not in it)."""


@dataclass(frozen=True)
class SweepDir:
    """A sweep's directory."""

    path: Path

    @property
    def file(self) -> Path:
        """``sweep.json``."""
        return self.path / SWEEP_FILE

    @property
    def trials_dir(self) -> Path:
        """Where the trials' run directories are."""
        return self.path / TRIALS_DIR

    @property
    def tune_dir(self) -> Path:
        """Ray Tune's storage (written by Tune, never read by prefgym)."""
        return self.path / "tune"

    @property
    def plots(self) -> Path:
        """The sweep's PNG plots."""
        return self.path / "plots"

    def trial_path(self, name: str) -> Path:
        """The run directory of trial ``name``."""
        return self.trials_dir / name

    @classmethod
    def create(cls, path: str | os.PathLike[str], spec: SweepSpec) -> SweepDir:
        """Start a sweep in ``path``: check every trial, then write ``sweep.json``.

        Raises:
            FileExistsError: ``path`` holds a sweep already.
            ValueError: The spec has no trial or an invalid one.
        """
        trials = expand(spec)  # every trial is checked before the directory is made
        sweep = cls(Path(path))
        message = (
            f"{sweep.path} already holds a sweep; carry it on with "
            f"`prefgym sweep --resume {sweep.path}` or choose another --out"
        )
        if sweep.file.exists():
            raise FileExistsError(message)
        sweep.path.mkdir(parents=True, exist_ok=True)
        document = {
            "format": SWEEP_FORMAT,
            "version": SWEEP_VERSION,
            "prefgym": __version__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "spec": spec.to_json(),
            "trials": [{"name": t.name, "settings": t.settings} for t in trials],
        }
        try:
            create_atomic(sweep.file, json.dumps(document, indent=2) + "\n")
        except FileExistsError:
            raise FileExistsError(message) from None
        return sweep

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SweepDir:
        """An existing sweep; reads nothing else and changes nothing.

        Raises:
            FileNotFoundError: ``path`` holds no sweep.
        """
        sweep = cls(Path(path))
        if not sweep.file.is_file():
            what = "does not exist" if not sweep.path.exists() else f"has no {SWEEP_FILE}"
            raise FileNotFoundError(
                f"{sweep.path} is not a prefgym sweep ({what}); start one with "
                "`prefgym sweep ... --out DIR`"
            )
        return sweep

    def spec(self) -> SweepSpec:
        """The sweep's settings, checked field by field.

        Raises:
            ValueError: ``sweep.json`` is damaged or of another version.
        """
        document = read_json_object(
            self.file, "the sweep's settings", format=SWEEP_FORMAT, version=SWEEP_VERSION
        )
        return spec_from_json(document.get("spec"), f"{self.file}: spec")

    def trials(self) -> list[Trial]:
        """The sweep's trials, expanded from its spec and checked against the ones it lists.

        Each trial's whole settings are listed, so a prefgym whose defaults changed since
        the sweep began cannot resume it with other settings than its finished trials had.

        Raises:
            ValueError: ``sweep.json`` is damaged, or its trial list does not match its
                grid (edited by hand, or written by another prefgym).
        """
        trials = expand(self.spec())
        listed = read_json_object(self.file, "the sweep's settings").get("trials")
        if listed != [{"name": t.name, "settings": t.settings} for t in trials]:
            raise ValueError(
                f"{self.file}: the trials it lists are not the grid's as this prefgym expands "
                "it (the file was edited, or prefgym's settings changed since the sweep "
                "began); finish it with the prefgym that started it, or start a new sweep"
            )
        return trials

    def result(self, name: str) -> TrialResult | None:
        """Trial ``name``'s result, or None if it has not finished.

        Raises:
            ValueError: The result file is damaged.
        """
        file = self.trial_path(name) / RESULT_FILE
        if not file.is_file():
            return None
        data = read_json_object(file, "the trial's result", format=RESULT_FORMAT)
        fields = {k: v for k, v in data.items() if k not in ("format", "version")}
        return from_json(TrialResult, {**fields, "name": name}, str(file))

    def write_result(self, result: TrialResult) -> None:
        """Record trial ``result.name`` as finished, atomically."""
        data = {
            "format": RESULT_FORMAT,
            "version": 1,
            "score": result.score,
            "score_std": result.score_std,
            "train_seconds": result.train_seconds,
            "steps": result.steps,
            "judgments": result.judgments,
            "cpu_seconds": result.cpu_seconds,
        }
        write_json(self.trial_path(result.name) / RESULT_FILE, data)

    def error(self, name: str) -> str | None:
        """The last error of trial ``name``'s attempts, if any."""
        file = self.trial_path(name) / ERROR_FILE
        try:
            return file.read_text(errors="replace").strip()[:500] or None
        except OSError:
            return None

    def attempts(self) -> int:
        """Tune experiments started in this sweep so far."""
        if not self.tune_dir.is_dir():
            return 0
        return sum(1 for p in self.tune_dir.iterdir() if p.name.startswith("attempt-"))


def is_sweep(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sweep directory (it holds ``sweep.json``)."""
    return (Path(path) / SWEEP_FILE).is_file()
