"""Gymnasium spaces as reward models see them: flat float features, and JSON descriptions.

A reward net reads an element of a Box, Discrete, MultiDiscrete or MultiBinary
space as a flat float32 vector (discrete parts one-hot); a checkpoint describes
its spaces as JSON, so a model loads without pickles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from prefgym.files import read_json_object
from prefgym.schema import from_json

T = TypeVar("T")


def is_image_space(space: gym.Space[Any]) -> bool:
    """Whether ``space`` holds pixel images: a uint8 Box of rank 3 (channels first or last)."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def encoded_size(space: gym.Space[Any]) -> int:
    """Width of the flat float encoding of one element of ``space`` (see :func:`encode`)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.Box | gym.spaces.MultiBinary):
        return int(np.prod(space.shape))
    raise NotImplementedError(
        f"reward nets encode Box, Discrete, MultiDiscrete and MultiBinary spaces, got {space}; "
        "flatten it first (gymnasium.wrappers.FlattenObservation)"
    )


def encode(space: gym.Space[Any], x: Tensor, n_lead: int = 2) -> Tensor:
    """Encode elements of ``space`` as flat float32 features.

    Discrete parts are one-hot encoded; Box and MultiBinary parts are flattened.

    Args:
        space: The space the elements come from.
        x: Elements with ``n_lead`` leading batch dimensions, ``(*lead, *space.shape)``.
        n_lead: Number of leading batch dimensions.

    Returns:
        Features ``(*lead, encoded_size(space))``, float32.
    """
    lead = x.shape[:n_lead]
    if isinstance(space, gym.spaces.Discrete):
        index = x.reshape(lead).long() - int(space.start)
        return F.one_hot(index, int(space.n)).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        index = x.reshape(*lead, -1).long() - torch.as_tensor(space.start, device=x.device).ravel()
        parts = [F.one_hot(index[..., i], int(n)) for i, n in enumerate(space.nvec.ravel())]
        return torch.cat(parts, dim=-1).float()
    encoded_size(space)  # raises for unsupported spaces
    return x.reshape(*lead, -1).float()


def space_to_json(space: gym.Space[Any]) -> dict[str, Any]:
    """Describe a Box, Discrete, MultiDiscrete or MultiBinary space as JSON-ready data."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise NotImplementedError(f"cannot describe {space} in a checkpoint; flatten it first")


def space_from_json(data: dict[str, Any]) -> gym.Space[Any]:
    """Rebuild a space described by :func:`space_to_json`.

    Raises:
        ValueError: ``data`` does not describe a space (a damaged or forged checkpoint).
    """
    try:
        return _space(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"malformed space description {str(data)[:60]!r}: {error}") from None


def _space(data: dict[str, Any]) -> gym.Space[Any]:
    kind = data.get("type")
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"a Box of dtype {dtype} is not numeric")
        low = np.asarray(data["low"], dtype=dtype).reshape(data["shape"])
        high = np.asarray(data["high"], dtype=dtype).reshape(data["shape"])
        return gym.spaces.Box(low, high, dtype=dtype)  # type: ignore[arg-type]
    if kind == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data["start"])
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(data["nvec"]), start=np.asarray(data["start"]))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(data["n"])
    raise ValueError(f"unknown space type {kind!r} in checkpoint; expected Box, Discrete, ...")


def read_model_metadata(
    file: Path, what: str, *, format: str, version: int, config: type[T]
) -> tuple[dict[str, Any], T, gym.Space[Any], gym.Space[Any]]:
    """A saved reward model's JSON metadata: the whole object, its settings and its spaces.

    Args:
        file: The metadata file.
        what: What the file is, for messages.
        format: The format the file must name, at ``version``.
        version: The version it must name.
        config: The settings dataclass its ``config`` object is read as (checked).

    Raises:
        ValueError: The file is damaged, of another format, or describes no model.
    """
    metadata = read_json_object(file, what, format=format, version=version)
    settings = from_json(config, metadata.get("config"), f"{file}: config")
    try:
        spaces = [space_from_json(metadata[k]) for k in ("observation_space", "action_space")]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{file} describes no model's spaces ({error})") from None
    return metadata, settings, spaces[0], spaces[1]
