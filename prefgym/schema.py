"""Settings read back from JSON (config.json, checkpoint metadata), checked field by field.

``config.json`` is data from disk, possibly edited by hand or crafted: a missing
field must not silently take today's default (a 200-label run resumed on a budget
of 100), and a wrong type must not surface as a ``TypeError`` deep in training.
:func:`from_json` checks a JSON object against a settings dataclass, nested ones
included: an unknown key gets "did you mean", a missing key is named, a value of
the wrong type is named with the type it must have. Then the dataclass's own
checks run, and their message is prefixed with the file and field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


def from_json(cls: type[T], data: object, where: str) -> T:
    """An instance of the dataclass ``cls`` from the JSON value ``data``.

    Args:
        cls: A (frozen) settings dataclass; fields that are dataclasses are read recursively.
        data: The decoded JSON.
        where: The file and key ``data`` came from, for messages
            (``"runs/a/config.json: train"``).

    Raises:
        ValueError: A key is unknown or missing, a value has the wrong type, or
            the dataclass rejects a value; the message names the field.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(fields), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; the fields are {sorted(fields)}"
        raise ValueError(f"{where}: unknown setting {unknown[0]!r}{hint}")
    missing = [name for name in fields if name not in data]
    if missing:
        raise ValueError(
            f"{where}: setting {missing[0]!r} is missing (a run's config names every "
            "setting; restore it from the command that started the run)"
        )
    values = {name: _value(hints[name], data[name], f"{where}.{name}") for name in fields}
    try:
        return cls(**values)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _value(hint: Any, value: object, where: str) -> Any:
    """``value`` checked against the type ``hint`` (lists become tuples where asked)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _value(option, value, where)
            except ValueError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices or isinstance(value, bool):
            raise ValueError(f"{where} must be one of {list(choices)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {_describe(value)}")
        args = get_args(hint)
        item = args[0] if args else Any
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {_describe(value)}")
        args = get_args(hint)
        item = args[0] if args else Any
        return [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be an object, got {_describe(value)}")
        key, item = get_args(hint) or (str, Any)
        if key is not str:
            raise TypeError(f"{where}: only string-keyed objects can be read from JSON")
        return {str(k): _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_json(typing.cast(type, hint), value, where)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where} must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{where} must be a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"{where}: settings of type {hint!r} cannot be read from JSON")


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"
