"""Lazy public faces: a package's ``__init__`` names what it offers without importing it.

A package face lists its public names once, as imports under ``if TYPE_CHECKING:``
(so type checkers and readers see them), and calls :func:`lazy_face`; each name is
imported from its private module on first use. This keeps ``import prefgym`` and the
config modules free of torch, transformers, SB3 and pygame, and lets packages name
one another's faces without import-time circles.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_face(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for the face in ``init_file``.

    Args:
        package: The package's ``__name__``.
        init_file: The package's ``__file__``; its ``if TYPE_CHECKING:`` block's
            ``from M import a, b`` statements list the face's names.
    """
    origin = _typing_imports(Path(init_file))
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        source = origin.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported, original = source
        value = getattr(importlib.import_module(imported), original)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(origin))

    return __getattr__, __dir__, sorted(origin)


def _typing_imports(init_file: Path) -> dict[str, tuple[str, str]]:
    """``{public name: (module, name in module)}`` from the TYPE_CHECKING block."""
    tree = ast.parse(init_file.read_text(encoding="utf-8"))
    names: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        names[alias.asname or alias.name] = (statement.module, alias.name)
    return names
