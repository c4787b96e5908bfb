"""What a sweep is: a grid of run settings times seeds, expanded into named trials.

Cheap to import (no Ray, torch or rliable): the CLI checks a grid here before
anything starts, so a misspelt field or an impossible value is named in one line
and no directory is made.

A grid maps settings fields (:class:`~prefgym.runs.config.TrainConfig`'s, or
:class:`~prefgym.runs.config.TextTrainConfig`'s for ``kind="text"``, nested ones
dotted: ``ppo.lr``) to the values to try; every combination runs once per seed.
``baseline="true-reward"`` adds, for every task, steps and agent setting, the
same agent trained on the hidden reward (``TrainConfig.reward="true"``) with the
same seeds, so every normalised score comes from the same sweep.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prefgym.runs.config import PREFERENCE_ONLY, TextTrainConfig, TrainConfig, check_seed
from prefgym.schema import from_json

SweepKind = Literal["control", "text"]
Baseline = Literal["none", "true-reward"]
SWEEP_FILE = "sweep.json"
"""The sweep's settings and trial list, in the sweep directory."""
SWEEP_FORMAT = "prefgym-sweep"
SWEEP_VERSION = 1
TRIALS_DIR = "trials"
"""Each trial's run directory is ``SWEEP/trials/<name>``."""
PREFERENCE = "preference"
TRUE_REWARD = "true-reward"
TEXT = "text"


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the grid, the seeds and how each trial runs; written to ``sweep.json``."""

    grid: dict[str, list[Any]] = field(default_factory=dict)
    """Settings field -> the values to try (one value: fixed for every trial)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """The seeds every combination runs with."""
    kind: SweepKind = "control"
    """``control`` (``prefgym train`` runs) or ``text`` (``prefgym text train`` runs)."""
    baseline: Baseline = "none"
    """``true-reward``: add the same agent on the hidden reward for every task and seed."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves for a trial; the trial's torch threads are this, rounded down (>= 1)."""
    gpus_per_trial: float = 0.0
    """GPUs Ray reserves for a trial (fractions share one)."""
    max_failures: int = 2
    """Times a crashed trial is retried; a retry resumes the trial's run directory."""
    episodes: int = 20
    """Episodes of the final evaluation of a control trial's deterministic policy."""

    def __post_init__(self) -> None:
        if self.kind not in ("control", "text"):
            raise ValueError(f"kind must be 'control' or 'text', got {self.kind!r}")
        if self.baseline not in ("none", TRUE_REWARD):
            raise ValueError(f"baseline must be 'none' or 'true-reward', got {self.baseline!r}")
        if self.kind == "text" and self.baseline != "none":
            raise ValueError("a text sweep has no true-reward baseline; leave --baseline out")
        if not self.seeds:
            raise ValueError("a sweep needs at least one seed (--seeds N, N >= 1)")
        for seed in self.seeds:
            check_seed(seed)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        if not self.cpus_per_trial > 0:
            raise ValueError(f"cpus_per_trial must be > 0, got {self.cpus_per_trial}")
        if not self.gpus_per_trial >= 0:
            raise ValueError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial}")
        if self.max_failures < 0:
            raise ValueError(f"max_failures must be >= 0, got {self.max_failures}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        check_grid(self.grid, self.kind)

    @property
    def threads(self) -> int:
        """Torch threads of one trial: the CPUs it holds, at least one."""
        return max(1, int(self.cpus_per_trial))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form; :func:`spec_from_json` reads it back."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Trial:
    """One run of a sweep."""

    name: str
    """Unique and file-safe: the run directory is ``SWEEP/trials/<name>``."""
    kind: str
    """``preference``, ``true-reward`` or ``text``."""
    settings: dict[str, Any] = field(hash=False)
    """The run's whole config (``TrainConfig``/``TextTrainConfig`` as JSON)."""
    varied: dict[str, Any] = field(hash=False)
    """The grid's varied fields (and the seed) with this trial's values."""

    @property
    def seed(self) -> int:
        """The trial's seed."""
        return int(self.settings["seed"])

    @property
    def task(self) -> str:
        """The environment id."""
        return str(self.settings["env_id"])

    def configuration(self) -> str:
        """What the trial is, minus task and seed: the row label its seeds are pooled under.

        A true-reward baseline is ``true-reward`` and the varied settings it uses
        (``true-reward steps=5000``): baselines of other settings are other rows.
        """
        parts = [f"{k}={v}" for k, v in self.varied.items() if k not in ("env_id", "seed")]
        if self.kind == TRUE_REWARD:
            return " ".join([TRUE_REWARD, *parts])
        return " ".join(parts) or "default"

    def config(self) -> TrainConfig | TextTrainConfig:
        """The run's settings, checked."""
        if self.kind == TEXT:
            return from_json(TextTrainConfig, self.settings, f"trial {self.name}")
        return from_json(TrainConfig, self.settings, f"trial {self.name}")


def settings_class(kind: str) -> type[TrainConfig] | type[TextTrainConfig]:
    """The settings dataclass of a sweep of ``kind``."""
    return TextTrainConfig if kind == "text" else TrainConfig


def grid_fields(kind: str) -> list[str]:
    """Every field a grid of ``kind`` may set (nested ones dotted)."""
    names: list[str] = []

    def walk(cls: type[Any], prefix: str) -> None:
        for f in dataclasses.fields(cls):
            inner = getattr(cls(), f.name)
            if dataclasses.is_dataclass(inner):
                walk(type(inner), f"{prefix}{f.name}.")
            else:
                names.append(prefix + f.name)

    walk(settings_class(kind), "")
    return names


def check_grid(grid: dict[str, list[Any]], kind: str) -> None:
    """Raise a ValueError naming an unknown field (with "did you mean") or an empty axis."""
    if not isinstance(grid, dict):
        raise ValueError(f"the grid must map settings fields to lists of values, got {grid!r}")
    known = grid_fields(kind)
    for name, values in grid.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"unknown {kind} setting {name!r} in the sweep grid{hint} "
                f"(fields: {', '.join(known)})"
            )
        if name == "seed":
            raise ValueError("the grid may not set 'seed': give the seeds with --seeds")
        if name == "reward" and kind == "control":
            raise ValueError(
                "the grid may not set 'reward': the true-reward agent is a baseline, "
                "add it with --baseline true-reward"
            )
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"grid field {name!r} has no values ({values!r}): give at least one, "
                "or leave the field out for its default"
            )


def expand(spec: SweepSpec) -> list[Trial]:
    """Every trial of ``spec``, in a fixed order; each trial's settings are checked.

    Raises:
        ValueError: The grid has no trial, or a combination is not a valid run; the
            message names the combination.
    """
    axes = list(spec.grid.items())
    varied = [name for name, values in axes if len(values) > 1]
    kind = TEXT if spec.kind == "text" else PREFERENCE
    trials: dict[str, Trial] = {}

    def add(trial: Trial) -> None:
        known = trials.setdefault(trial.name, trial)
        if known.settings != trial.settings:
            raise ValueError(
                f"two trials of the grid would both be named {trial.name!r} "
                f"({known.varied} and {trial.varied}); give them values that differ "
                "in letters or digits"
            )

    for values in itertools.product(*(v for _, v in axes)):
        chosen = dict(zip((n for n, _ in axes), values, strict=True))
        for seed in spec.seeds:
            add(_trial(kind, {**chosen, "seed": seed}, varied))
            if spec.baseline == TRUE_REWARD:
                baseline = {k: v for k, v in chosen.items() if k not in PREFERENCE_ONLY}
                add(
                    _trial(
                        TRUE_REWARD,
                        {**baseline, "reward": "true", "seed": seed},
                        [n for n in varied if n not in PREFERENCE_ONLY],
                    )
                )
    if not trials:
        raise ValueError("the sweep grid has no trials: every field needs at least one value")
    return list(trials.values())


def _trial(kind: str, chosen: dict[str, Any], varied: list[str]) -> Trial:
    cls = settings_class("text" if kind == TEXT else "control")
    settings = dataclasses.asdict(cls())
    for name, value in chosen.items():
        _set(settings, name, value)
    label = ", ".join(f"{k}={v!r}" for k, v in chosen.items())
    try:
        config = from_json(cls, settings, f"sweep trial ({label})")
    except ValueError as error:
        raise ValueError(f"{error}; fix the grid") from None
    settings = dataclasses.asdict(config)
    shown = {k: chosen[k] for k in ("env_id", *varied, "seed") if k in chosen}
    return Trial(_name(kind, shown), kind, settings, shown)


def _set(settings: dict[str, Any], dotted: str, value: Any) -> None:
    *outer, last = dotted.split(".")
    target = settings
    for part in outer:
        target = target[part]
    target[last] = value


def _name(kind: str, shown: dict[str, Any]) -> str:
    """``CartPole-v1.oracle-mistake.labels-100.seed-3`` (and ``.true-reward`` for a baseline)."""
    parts = [str(shown["env_id"]).split("/")[-1]] if "env_id" in shown else []
    if kind == TRUE_REWARD:
        parts.append(TRUE_REWARD)
    parts += [f"{k}-{v}" for k, v in shown.items() if k not in ("env_id", "seed")]
    parts.append(f"seed-{shown['seed']}")
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", ".".join(parts))


def spec_from_json(data: object, where: str) -> SweepSpec:
    """A :class:`SweepSpec` from JSON (``sweep.json``'s ``spec``), every field checked."""
    return from_json(SweepSpec, data, where)


def read_grid_file(path: str | Path) -> dict[str, Any]:
    """A grid file (TOML or YAML) as the keyword arguments of :class:`SweepSpec`.

    The file holds ``kind``, ``seeds`` (a count or a list), ``baseline`` and the other
    sweep settings at the top level, and the grid under ``[grid]`` (``grid:``): each
    field a list of values, or one value for all trials.

    Raises:
        ValueError: The file cannot be read or parsed, or holds an unknown key.
    """
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise ValueError(f"grid file {path} must end in .toml, .yaml or .yml")
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read the grid file {path}: {error.strerror or error}") from None
    try:
        data = _parse(text, toml=path.suffix == ".toml")
    except Exception as error:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise ValueError(f"grid file {path} does not parse: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"grid file {path} must hold a table of settings")
    known = {f.name for f in dataclasses.fields(SweepSpec)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"unknown key {key!r} in grid file {path}{hint} (settings fields go under [grid])"
            )
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError(f"[grid] in {path} must be a table of field = [values]")
    data["grid"] = {k: v if isinstance(v, list) else [v] for k, v in dotted(grid).items()}
    if "seeds" in data:
        data["seeds"] = seed_list(data["seeds"])
    return data


def dotted(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted names (``{"ppo": {"lr": 1}}`` -> ``{"ppo.lr": 1}``).

    A grid file's ``ppo.lr = [...]`` is such a table in TOML, and a text trial's
    settings hold nested configs.
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_value(text: str) -> Any:
    """A value from a command line: a JSON number, boolean or null, else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


def split_values(text: str) -> list[str]:
    """``a,b,c`` as its values, where a piece with ``=`` belongs to the value before it.

    Oracle specs hold commas (``mistake,eps_mistake=0.2``), so
    ``oracle,mistake,eps_mistake=0.2`` is the two values ``oracle`` and
    ``mistake,eps_mistake=0.2``.
    """
    values: list[str] = []
    for piece in text.split(","):
        if "=" in piece and values:
            values[-1] += "," + piece
        else:
            values.append(piece)
    return values


def _parse(text: str, *, toml: bool) -> Any:
    if toml:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    import yaml

    return yaml.safe_load(text)


def seed_list(seeds: object) -> list[int]:
    """``N`` -> seeds ``0 .. N-1``; a list is kept (each must be an integer >= 0).

    Raises:
        ValueError: A negative or zero count, or a seed that is not an integer >= 0.
    """
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"--seeds must be a count >= 1 (or a list of seeds), got {seeds}")
        return list(range(seeds))
    if isinstance(seeds, list):
        for seed in seeds:
            check_seed(seed)
        return list(seeds)
    raise ValueError(f"seeds must be a count or a list of integers >= 0, got {seeds!r}")
