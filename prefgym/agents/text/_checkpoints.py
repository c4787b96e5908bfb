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
from torch import Tensor, nn

from prefgym.files import (
    atomic_directory,
    load_tensors,
    read_json_object,
    readable_directory,
    write_json,
)

_FORMAT = "prefgym-lm-trainer"
_FORMAT_VERSION = 1
_META = "trainer.json"


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
    state = optimizer.state_dict()
    tensors = {"generator": generator.get_state()}
    scalars = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    meta = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "steps": steps,
        "has_reference": ref_policy is not None,
        "param_groups": state["param_groups"],
        "optimizer_scalars": scalars,
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
    meta = read_json_object(
        path / _META, "the trainer checkpoint's metadata", format=_FORMAT, version=_FORMAT_VERSION
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
    tensors = load_tensors(path / "trainer_state.safetensors", "the trainer's state")
    generator.set_state(tensors.pop("generator"))
    state: dict[int, dict[str, object]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, scalar in meta["optimizer_scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = scalar
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["steps"])


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
