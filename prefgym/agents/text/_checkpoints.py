"""Checkpoints of language-model trainers (DPO, GRPO, token-level PPO).

A trainer checkpoint is a directory that holds everything needed to resume
training, in safetensors and JSON only, no pickles:

* ``policy.safetensors``: the policy's weights;
* ``reference.safetensors``: the frozen reference's weights, when the trainer
  made its own copy of the policy;
* ``trainer_state.safetensors``: the optimizer's tensors (moments, step
  counts) and the ``torch.Generator`` state;
* ``trainer.json``: format and version, the trainer kind, its config, the
  step count, the optimizer's parameter groups and non-tensor state.

:func:`load_trainer_checkpoint` refuses a checkpoint of another kind or one
saved under a different config.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_model, save_file, save_model
from torch import nn

from prefgym.files import (
    atomic_directory,
    read_json_object,
    readable_directory,
    write_json,
)
from prefgym.tensors import load_tensors, optimizer_state, restore_optimizer

_FORMAT = "prefgym-lm-trainer"
_FORMAT_VERSION = 2
"""Version 2 keeps the optimizer as :mod:`prefgym.tensors` does (``optimizer/<i>/<name>``);
version 1 (``optimizer.<i>.<name>``, scalars ``"<i>.<name>"``) is still read."""
_META = "trainer.json"
_OPTIMIZER = "optimizer"


def save_trainer_checkpoint(
    directory: str | Path,
    *,
    kind: str,
    config: dict[str, object],
    policy: nn.Module,
    ref_policy: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    steps: int,
) -> Path:
    """Write a trainer's state to ``directory``.

    Files: ``policy.safetensors``, ``reference.safetensors`` (when ``ref_policy`` is
    given), ``trainer_state.safetensors`` (optimizer tensors, generator state) and
    ``trainer.json`` (format, config, step count, optimizer hyperparameters).

    Returns:
        The directory.
    """
    tensors, skeleton = optimizer_state(optimizer, _OPTIMIZER)
    tensors["generator"] = generator.get_state()
    meta = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "steps": steps,
        "has_reference": ref_policy is not None,
        _OPTIMIZER: skeleton,
    }
    with atomic_directory(directory) as new:  # every file of the checkpoint replaced together
        save_model(policy, str(new / "policy.safetensors"))
        if ref_policy is not None:
            save_model(ref_policy, str(new / "reference.safetensors"))
        save_file(tensors, str(new / "trainer_state.safetensors"))
        write_json(new / _META, meta)
    return Path(directory)


def load_trainer_checkpoint(
    directory: str | Path,
    *,
    kind: str,
    config: dict[str, object],
    policy: nn.Module,
    ref_policy: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> int:
    """Restore what :func:`save_trainer_checkpoint` wrote into live objects.

    Returns:
        The number of steps the saved trainer had taken.
    """
    path = readable_directory(directory)
    if not (path / _META).is_file():
        raise FileNotFoundError(f"{path} holds no trainer checkpoint: expected {_META}")
    meta = read_json_object(path / _META, "the trainer checkpoint's metadata")
    if meta.get("format") == _FORMAT and meta.get("version") == 1:
        meta = _from_version_1(meta)
    if (meta.get("format"), meta.get("version")) != (_FORMAT, _FORMAT_VERSION):
        raise ValueError(
            f"{path / _META} is format {meta.get('format')!r} version {meta.get('version')!r}; "
            f"this prefgym reads {_FORMAT!r} versions 1 and {_FORMAT_VERSION}"
        )
    if meta.get("kind") != kind:
        raise ValueError(
            f"{path} holds a {meta.get('kind')!r} checkpoint; load it into a {kind} trainer"
        )
    expected = json.loads(json.dumps(config))
    changed = sorted(
        k
        for k in expected.keys() | meta["config"].keys()
        if expected.get(k) != meta["config"].get(k)
    )
    if changed:
        saved = ", ".join(f"{k}={meta['config'].get(k)!r}" for k in changed)
        raise ValueError(f"{path} was saved with {saved}; build the trainer with that config")
    if meta["has_reference"] != (ref_policy is not None):
        raise ValueError(
            f"{path} {'holds' if meta['has_reference'] else 'lacks'} a reference copy; resume "
            "with ref_policy=None exactly when the saved trainer made its own reference"
        )
    _load_module(policy, path / "policy.safetensors", "the policy's weights")
    if ref_policy is not None:
        _load_module(ref_policy, path / "reference.safetensors", "the reference's weights")
    state_file = path / "trainer_state.safetensors"
    tensors = load_tensors(state_file, "the trainer's state")
    generator_state = tensors.pop("generator", None)
    if generator_state is None or generator_state.dtype != torch.uint8:
        raise ValueError(f"{state_file} holds no generator state; the checkpoint is damaged")
    if meta.get("v1"):
        tensors = {k.replace(".", "/", 2): v for k, v in tensors.items()}
    where = f"{state_file} and {_META}"
    restore_optimizer(optimizer, _OPTIMIZER, tensors, meta.get(_OPTIMIZER), where)
    if tensors:
        raise ValueError(f"{state_file} holds unexpected tensors {sorted(tensors)[:5]}")
    generator.set_state(generator_state)
    steps = meta.get("steps")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{path / _META}: steps must be an integer >= 0, got {steps!r}")
    return steps


def _from_version_1(meta: dict[str, Any]) -> dict[str, Any]:
    """Version 1's metadata as version 2 keeps it (its tensors are renamed by the caller)."""
    scalars: dict[str, dict[str, Any]] = {}
    for key, value in dict(meta.get("optimizer_scalars") or {}).items():
        index, _, name = str(key).partition(".")
        scalars.setdefault(index, {})[name] = value
    skeleton = {"param_groups": meta.get("param_groups"), "scalars": scalars}
    return {**meta, "version": _FORMAT_VERSION, "v1": True, _OPTIMIZER: skeleton}


def _load_module(module: nn.Module, path: Path, what: str) -> None:
    """Load the weights file ``path`` into ``module``; anything wrong is a ValueError."""
    device = str(next(module.parameters()).device)
    load_tensors(path, what)  # readable and finite, or a message naming the file
    try:
        load_model(module, str(path), device=device)
    except RuntimeError as error:  # missing or unexpected keys, wrong shapes
        raise ValueError(
            f"{what} {path} do not fit the trainer's model ({str(error).splitlines()[0]}); "
            "resume with the model the run was started with"
        ) from None


class CheckpointedTrainer:
    """``save`` and ``load`` for a trainer, through :func:`save_trainer_checkpoint`.

    The trainer sets the attributes annotated here and says in :meth:`_checkpointed`
    which modules the checkpoint keeps.
    """

    kind: ClassVar[str]
    config: Any
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    steps: int

    def _checkpointed(self) -> tuple[nn.Module, nn.Module | None]:
        """The trained module and the reference to keep.

        The first is what trains (kept as ``policy.safetensors``), the second the
        reference when the trainer made its own copy, None when it was given one.
        """
        raise NotImplementedError

    def save(self, directory: str | Path) -> Path:
        """Write the trained weights, the owned reference, optimizer and generator state.

        Returns:
            The directory.
        """
        trained, reference = self._checkpointed()
        return save_trainer_checkpoint(
            directory,
            kind=self.kind,
            config=dataclasses.asdict(self.config),
            policy=trained,
            ref_policy=reference,
            optimizer=self.optimizer,
            generator=self.generator,
            steps=self.steps,
        )

    def load(self, directory: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` into this trainer, to resume training.

        Build the trainer as the saved one was (same config and architecture; pass
        ``ref_policy`` again if the saved trainer was given one), then call this.
        """
        trained, reference = self._checkpointed()
        self.steps = load_trainer_checkpoint(
            directory,
            kind=self.kind,
            config=dataclasses.asdict(self.config),
            policy=trained,
            ref_policy=reference,
            optimizer=self.optimizer,
            generator=self.generator,
        )
