"""Agent checkpoints without pickles: SB3's tensors in safetensors, its counters in JSON.

Stable-Baselines3's own zip keeps its settings as cloudpickled entries and unpickles
them on load, so a crafted file runs code. A prefgym agent checkpoint is a directory
that holds nothing to unpickle:

* ``agent.safetensors``: every state dict SB3 saves (the policy's as
  ``policy/<key>``, each optimizer's moments and step counts as
  ``<optimizer>/<param index>/<name>``, e.g. ``actor.optimizer/0/exp_avg``) and
  its loose tensors (SAC's ``log_ent_coef``) as ``variables/<name>``;
* ``agent.json``: format and version, the algorithm, the :class:`AgentConfig`
  it was built from, SB3's counters (environment steps, updates, episodes, the
  learning-rate schedule's progress) and each optimizer's parameter groups and
  non-tensor state.

Loading never builds anything from the files: the model is rebuilt from the config
(:func:`~prefgym.agents.sb3._build.make_agent`) and the saved tensors are copied
into it, strictly (the same keys, shapes and dtypes) and only when every one is
finite.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import recursive_getattr
from torch import Tensor, nn

from prefgym.agents.sb3.config import AgentConfig
from prefgym.files import atomic_directory, read_json, readable_directory, write_json
from prefgym.tensors import load_tensors, optimizer_state, plain, restore_optimizer

FORMAT = "prefgym-sb3-agent"
VERSION = 1
TENSORS_FILE = "agent.safetensors"
META_FILE = "agent.json"
_VARIABLES = "variables"
_COUNTERS = ("num_timesteps", "_n_updates", "_episode_num")
_PROGRESS = "_current_progress_remaining"
_RUNTIME_FIELDS = ("device",)  # where the model runs, not what it is: free to change


def save_agent_checkpoint(
    model: BaseAlgorithm, config: AgentConfig, directory: str | os.PathLike[str]
) -> Path:
    """Write ``model``, built from ``config``, to ``directory`` atomically; returns it."""
    modules, variables = model._get_torch_save_params()
    tensors: dict[str, Tensor] = {}
    optimizers: dict[str, dict[str, Any]] = {}
    for name in modules:
        value = recursive_getattr(model, name)
        if isinstance(value, torch.optim.Optimizer):
            optimizer_tensors, optimizers[name] = optimizer_state(value, name)
            tensors.update(optimizer_tensors)
        else:
            for key, item in value.state_dict().items():
                tensors[f"{name}/{key}"] = plain(item)
    for name in variables:
        tensors[f"{_VARIABLES}/{name}"] = plain(recursive_getattr(model, name))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "algo": config.algo,
        "config": dataclasses.asdict(config),
        "counters": {name: int(getattr(model, name)) for name in _COUNTERS},
        _PROGRESS: float(getattr(model, _PROGRESS)),
        "modules": [name for name in modules if name not in optimizers],
        "optimizers": optimizers,
        "variables": list(variables),
    }
    with atomic_directory(directory) as new:  # weights and JSON replaced together
        save_file(tensors, str(new / TENSORS_FILE))
        write_json(new / META_FILE, meta)
    return Path(directory)


@dataclass(frozen=True)
class AgentCheckpoint:
    """A checkpoint checked by :func:`read_agent_checkpoint`; :meth:`restore` applies it."""

    path: Path
    """The checkpoint directory."""
    meta: dict[str, Any]
    """``agent.json``, checked."""
    tensors: dict[str, Tensor]
    """``agent.safetensors``, every tensor finite."""

    @property
    def steps(self) -> int:
        """Environment steps the saved agent had trained."""
        return int(self.meta["counters"]["num_timesteps"])

    def restore(self, model: BaseAlgorithm) -> None:
        """Copy the saved state into ``model``, freshly built from the same config.

        Raises:
            ValueError: The checkpoint does not fit ``model`` (keys, shapes, dtypes,
                optimizers); the message names the file.
        """
        modules, variables = model._get_torch_save_params()
        tensors = dict(self.tensors)
        optimizers = [
            n for n in modules if isinstance(recursive_getattr(model, n), torch.optim.Optimizer)
        ]
        expected = {
            "modules": [n for n in modules if n not in optimizers],
            "optimizers": sorted(optimizers),
            "variables": list(variables),
        }
        saved = {
            "modules": self.meta["modules"],
            "optimizers": sorted(self.meta["optimizers"]),
            "variables": self.meta["variables"],
        }
        if saved != expected:
            raise ValueError(
                f"{self._json} holds {saved}, but a {self.meta['algo']} agent of this config "
                f"has {expected}"
            )
        for name in expected["modules"]:
            module = recursive_getattr(model, name)
            module.load_state_dict(self._module_state(module, name, tensors), strict=True)
        where = f"{self._tensors_file} and {META_FILE}"
        for name in optimizers:
            optimizer = recursive_getattr(model, name)
            restore_optimizer(optimizer, name, tensors, self.meta["optimizers"][name], where)
        for name in variables:
            variable = recursive_getattr(model, name)
            saved_variable = tensors.pop(f"{_VARIABLES}/{name}", None)
            if saved_variable is None:
                raise ValueError(f"{self._tensors_file} lacks {_VARIABLES}/{name}")
            self._check_like(f"{_VARIABLES}/{name}", saved_variable, variable)
            with torch.no_grad():  # in place: SAC's entropy optimizer holds this very tensor
                variable.copy_(saved_variable)
        if tensors:
            raise ValueError(f"{self._tensors_file} holds unexpected tensors {_few(tensors)}")
        for name, value in self.meta["counters"].items():
            setattr(model, name, value)
        setattr(model, _PROGRESS, self.meta[_PROGRESS])
        if model.use_sde:
            model.policy.reset_noise()  # type: ignore[operator]  # as SB3's own load does

    @property
    def _tensors_file(self) -> Path:
        return self.path / TENSORS_FILE

    @property
    def _json(self) -> Path:
        return self.path / META_FILE

    def _module_state(
        self, module: nn.Module, name: str, tensors: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """``module``'s saved state dict, popped from ``tensors``, checked key by key."""
        live = module.state_dict()
        prefix = f"{name}/"
        state = {k[len(prefix) :]: tensors.pop(k) for k in list(tensors) if k.startswith(prefix)}
        missing = sorted(live.keys() - state.keys())
        unexpected = sorted(state.keys() - live.keys())
        if missing or unexpected:
            raise ValueError(
                f"{self._tensors_file} does not fit this agent's {name}: missing "
                f"{_few(missing)}, unexpected {_few(unexpected)}"
            )
        for key, value in state.items():
            self._check_like(prefix + key, value, live[key])
        return state

    def _check_like(self, key: str, saved: Tensor, live: Tensor) -> None:
        if saved.shape != live.shape or saved.dtype != live.dtype:
            raise ValueError(
                f"{self._tensors_file}: {key} is {saved.dtype} {tuple(saved.shape)}, but this "
                f"agent's is {live.dtype} {tuple(live.shape)}"
            )


def read_agent_checkpoint(
    directory: str | os.PathLike[str], config: AgentConfig
) -> AgentCheckpoint:
    """Read and check the checkpoint in ``directory`` for an agent built from ``config``.

    A save interrupted by a kill is read as its complete version. Nothing is unpickled.

    Raises:
        FileNotFoundError: ``directory`` holds no agent checkpoint.
        ValueError: A file is damaged (unreadable, not finite, malformed) or was
            saved for another config; the message names the file.
    """
    path = readable_directory(directory)
    meta_file, tensors_file = path / META_FILE, path / TENSORS_FILE
    if not path.is_dir():
        raise FileNotFoundError(f"{path} holds no agent checkpoint (no such directory)")
    for file in (meta_file, tensors_file):
        if not file.is_file():
            raise FileNotFoundError(f"{path} holds no agent checkpoint: {file.name} is missing")
    meta = _checked_meta(read_json(meta_file, "the agent checkpoint's metadata"), meta_file)
    if meta["algo"] != config.algo:
        raise ValueError(
            f"{meta_file} holds a {meta['algo']} agent; load it as algo={meta['algo']!r}"
        )
    expected = json.loads(json.dumps(dataclasses.asdict(config)))
    saved_config = meta["config"]
    changed = sorted(
        k
        for k in expected.keys() | saved_config.keys()
        if k not in _RUNTIME_FIELDS and expected.get(k) != saved_config.get(k)
    )
    if changed:
        was = ", ".join(f"{k}={saved_config.get(k)!r}" for k in changed)
        now = ", ".join(f"{k}={expected.get(k)!r}" for k in changed)
        raise ValueError(
            f"{meta_file} was saved by an agent with {was}, but this agent has {now}; "
            "load it with the settings it was trained with"
        )
    return AgentCheckpoint(path, meta, load_tensors(tensors_file, "the agent's weights"))


def _checked_meta(meta: Any, file: Path) -> dict[str, Any]:
    """``agent.json``'s content, its every field checked: a ValueError names what is wrong."""

    def fail(what: str) -> ValueError:
        return ValueError(f"{file} is not a prefgym agent checkpoint's metadata: {what}")

    if not isinstance(meta, dict):
        raise fail(f"expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{file} is format {meta.get('format')!r} version {meta.get('version')!r}; "
            f"this prefgym reads {FORMAT!r} version {VERSION}"
        )
    bad = _non_finite(meta)
    if bad:
        raise ValueError(f"{file}: {bad} is not a finite number; the checkpoint is damaged")
    kinds: dict[str, type | tuple[type, ...]] = {
        "algo": str,
        "config": dict,
        "counters": dict,
        _PROGRESS: (int, float),
        "modules": list,
        "optimizers": dict,
        "variables": list,
    }
    for key, kind in kinds.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise fail(f"{key!r} is {meta.get(key)!r}")
    counters = meta["counters"]
    if sorted(counters) != sorted(_COUNTERS) or not all(
        _is_int(v) and v >= 0 for v in counters.values()
    ):
        raise fail(f"counters are {counters!r}, expected non-negative {', '.join(_COUNTERS)}")
    if not all(isinstance(n, str) for n in meta["modules"] + meta["variables"]):
        raise fail("module and variable names must be strings")
    return meta


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_finite(value: Any, where: str = "") -> str | None:
    """The path of the first NaN or infinity in a JSON value, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "a value"
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _few(keys: Any) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "") or "none"
