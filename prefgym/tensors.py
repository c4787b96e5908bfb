"""Tensors on disk: safetensors files read back checked, and optimizer state without pickles.

``torch.save`` pickles, so checkpoints keep tensors in safetensors files and the
rest in JSON. Two things every checkpoint needs live here:

* :func:`load_tensors` reads a safetensors file and refuses one that is damaged
  (random bytes, cut off, a forged header) or holds NaN or infinity, naming it;
* :func:`optimizer_state` splits an optimizer's state into tensors
  (``<prefix>/<param index>/<name>``, e.g. ``optimizer/0/exp_avg``) and a JSON
  skeleton (parameter groups and non-tensor state), and :func:`restore_optimizer`
  puts it back into a freshly built optimizer, strictly: every parameter's state
  shaped like the parameter, the groups' settings as the optimizer was built (only
  the learning rate is taken from the file).

Importing this module imports nothing heavy; torch is imported by the functions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    import torch
    from torch import Tensor

_ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}
"""What Adam and AdamW keep per parameter (``max_exp_avg_sq`` too with amsgrad)."""


def load_tensors(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The tensors of the safetensors file ``path``, each checked to be finite.

    Args:
        path: The file.
        what: What the file is, for the message (``"the reward model's weights"``).

    Raises:
        ValueError: The file is not a readable safetensors file (random bytes, cut off,
            a forged header), or a floating-point tensor holds NaN or infinity.
    """
    from safetensors.torch import load_file

    path = Path(path)
    try:
        tensors: dict[str, torch.Tensor] = load_file(str(path))
    except FileNotFoundError:
        raise
    except Exception as error:  # safetensors raises its own error types, and OSError
        raise ValueError(
            f"{what} {path} is damaged and cannot be read ({_first_line(error)}); "
            "restore it from a copy or start a new run"
        ) from None
    check_finite(tensors, f"{what} {path}")
    return tensors


def check_finite(tensors: dict[str, Any], where: str) -> None:
    """Raise a ValueError naming the first floating-point tensor holding NaN or infinity."""
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{where} holds non-finite values in {name!r} (NaN or infinity): the "
                "checkpoint is damaged; restore it from a copy or start a new run"
            )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def optimizer_state(
    optimizer: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``optimizer``'s state as tensors keyed ``<prefix>/<index>/<name>`` and a JSON skeleton.

    Returns:
        The tensors (CPU copies) and ``{"param_groups": [...], "scalars": {index: {name:
        value}}}``, which :func:`restore_optimizer` takes back.
    """
    from torch import Tensor

    state = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}/{index}/{name}"] = plain(value)
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(
    optimizer: torch.optim.Optimizer,
    prefix: str,
    tensors: dict[str, Tensor],
    skeleton: Any,
    where: str,
) -> None:
    """Put the state :func:`optimizer_state` saved back into ``optimizer``, built as before.

    The tensors under ``prefix`` are popped from ``tensors``.

    Args:
        optimizer: Freshly built over the same parameters, with the same settings.
        prefix: The prefix the tensors were saved under.
        tensors: The checkpoint's tensors (finite, from :func:`load_tensors`).
        skeleton: The JSON skeleton saved beside them.
        where: The checkpoint's files, for messages.

    Raises:
        ValueError: The state does not fit ``optimizer``: a parameter it lacks, a
            tensor of another shape or dtype, missing moments, other settings.
    """
    if (
        not isinstance(skeleton, dict)
        or not isinstance(skeleton.get("param_groups"), list)
        or not all(isinstance(g, dict) for g in skeleton["param_groups"])
        or not isinstance(skeleton.get("scalars"), dict)
    ):
        raise ValueError(f"{where}: {prefix} has no param_groups list and scalars object")
    groups = _checked_groups(
        skeleton["param_groups"], optimizer.state_dict()["param_groups"], f"{where} {prefix}"
    )
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, Any]] = {}
    for key in [k for k in tensors if k.startswith(f"{prefix}/")]:
        index, _, name = key[len(prefix) + 1 :].partition("/")
        param = _param(params, index)
        value = tensors.pop(key)
        if param is None or not name:
            raise ValueError(f"{where} holds {key}, which {prefix} does not have")
        shape = () if name == "step" else param.shape
        if value.shape != shape or (name != "step" and value.dtype != param.dtype):
            raise ValueError(
                f"{where}: {key} is {value.dtype} {tuple(value.shape)}, but it must be "
                f"{param.dtype} {tuple(shape)}"
            )
        state.setdefault(int(index), {})[name] = value
    for index, entries in skeleton["scalars"].items():
        if _param(params, index) is None or not isinstance(entries, dict):
            raise ValueError(f"{where}: {prefix} has no parameter {index!r}")
        if not all(_finite_number(v) for v in entries.values()):
            raise ValueError(f"{where}: {prefix} state {index} must be finite numbers")
        state.setdefault(int(index), {}).update(entries)
    import torch

    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        for number, held in state.items():
            if not _ADAM_STATE <= held.keys():
                missing = sorted(_ADAM_STATE - held.keys())
                raise ValueError(f"{where}: {prefix} parameter {number} lacks {missing}")
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def plain(tensor: Tensor) -> Tensor:
    """A contiguous CPU copy of its own (safetensors refuses tensors that share memory)."""
    import torch

    return tensor.detach().cpu().clone(memory_format=torch.contiguous_format)


def _checked_groups(
    saved: list[dict[str, Any]], live: list[dict[str, Any]], where: str
) -> list[dict[str, Any]]:
    """The live parameter groups with the saved learning rates; anything else must match."""
    if len(saved) != len(live):
        raise ValueError(f"{where} has {len(saved)} parameter groups, the optimizer {len(live)}")
    groups = []
    for number, (was, now) in enumerate(zip(saved, live, strict=True)):
        lr = was.get("lr")
        if not _finite_number(lr) or lr < 0:
            raise ValueError(f"{where} group {number}: lr must be a number >= 0, got {lr!r}")
        changed = sorted(
            k
            for k in was.keys() | now.keys()
            if k != "lr" and _listed(was.get(k)) != _listed(now.get(k))
        )
        if changed:
            raise ValueError(
                f"{where} group {number} was saved with "
                + ", ".join(f"{k}={was.get(k)!r}" for k in changed)
                + "; the optimizer has "
                + ", ".join(f"{k}={now.get(k)!r}" for k in changed)
            )
        groups.append(dict(now, lr=float(lr)))
    return groups


def _param(params: list[Tensor], index: str) -> Tensor | None:
    return params[int(index)] if index.isdigit() and int(index) < len(params) else None


def _listed(value: Any) -> Any:
    """Tuples as lists, as JSON gives them back."""
    if isinstance(value, (list, tuple)):
        return [_listed(v) for v in value]
    return value


def _finite_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_state_dict(
    module: torch.nn.Module, state: dict[str, Tensor], file: Path, fix: str
) -> None:
    """``module.load_state_dict(state)``, strictly; a mismatch is a ValueError naming ``file``.

    Args:
        module: The freshly built module.
        state: The tensors read from ``file``.
        file: Where they came from.
        fix: What to do about a mismatch, for the message.
    """
    try:
        module.load_state_dict(state)
    except RuntimeError as error:  # missing or unexpected keys, wrong shapes
        lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        reason = lines[0] if lines else str(error).splitlines()[0]
        raise ValueError(f"{file} does not fit the model ({reason}); {fix}") from None
