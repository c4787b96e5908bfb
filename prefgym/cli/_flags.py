"""Command-line options generated from config dataclasses: one option per field.

A field's docstring is its help, a ``Literal`` its choices, and the default shown
is read from the dataclass, so no default or help text is written twice. Every
option defaults to None ("not given"), so a run's settings are the dataclass's
own defaults with the given options replaced.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import os
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclasses.dataclass(frozen=True)
class FlagGroup:
    """The options of one config dataclass: ``--<prefix><field>`` each."""

    config: type[Any]
    """The dataclass; its fields' defaults, types and docstrings make the options."""
    prefix: str = ""
    """Put before every option's name (``ppo-`` gives ``--ppo-lr``)."""
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Option names that differ from the field's (``env_id`` -> ``env``)."""
    aliases: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    """Further spellings of a field's option (earlier releases' names)."""
    skip: frozenset[str] = frozenset()
    """Fields that get no option."""

    def dest(self, name: str) -> str:
        """The argparse destination of field ``name``."""
        return (self.prefix + name).replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser | Any, *, many: bool = False) -> None:
        """Add an option for every field whose type a command line can spell.

        ``many``: each option takes one or more values (a sweep's grid), and choices are
        left to the config's own checks (a text sweep's ``--algo`` has other choices).
        """
        defaults, docs = self.config(), field_docs(self.config)
        hints = get_type_hints(self.config)
        for field in dataclasses.fields(self.config):
            parse = _parser_for(hints[field.name])
            if field.name in self.skip or parse is None:
                continue
            kind, choices = parse
            default = getattr(defaults, field.name)
            shown = "" if default is None else f" (default: {_spelled(default)})"
            name = self.names.get(field.name, field.name.replace("_", "-"))
            parser.add_argument(
                f"--{self.prefix}{name}",
                *self.aliases.get(field.name, ()),
                dest=self.dest(field.name),
                type=kind,
                choices=None if many else choices,
                nargs="+" if many else None,
                default=None,
                metavar=None if choices and not many else field.name.upper(),
                help=docs.get(field.name, "").replace("%", "%%") + shown,
            )

    def given(self, args: argparse.Namespace) -> dict[str, Any]:
        """The fields whose options were given, by field name."""
        values = {f.name: getattr(args, self.dest(f.name), None) for f in _fields(self)}
        return {k: v for k, v in values.items() if v is not None}

    def flags_given(self, args: argparse.Namespace) -> list[str]:
        """The options given, spelled as on the command line."""
        return [
            f"--{self.prefix}{self.names.get(name, name.replace('_', '-'))}"
            for name in self.given(args)
        ]


def _fields(group: FlagGroup) -> list[dataclasses.Field[Any]]:
    hints = get_type_hints(group.config)
    return [
        f
        for f in dataclasses.fields(group.config)
        if f.name not in group.skip and _parser_for(hints[f.name]) is not None
    ]


def _spelled(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parser_for(hint: Any) -> tuple[Callable[[str], Any], list[str] | None] | None:
    """How to read a field of type ``hint`` from the command line; None if it cannot be."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        others = [a for a in get_args(hint) if a is not type(None)]
        return _parser_for(others[0]) if len(others) == 1 else None
    if origin is Literal:
        choices = [str(a) for a in get_args(hint)]
        return str, choices
    if hint is bool:
        return _boolean, None
    if hint in (int, float, str):
        return hint, None
    return None


def field_docs(config: type[Any]) -> dict[str, str]:
    """The docstrings of ``config``'s fields, read from its source, one line each."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(config)))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                text = str(following.value.value).replace("``", "")  # help is plain text
                docs[node.target.id] = " ".join(text.split())
    return docs


def check_resume(args: argparse.Namespace, given: Sequence[str]) -> None:
    """Refuse settings beside ``--resume``: a resumed run keeps its own (``args.resume``)."""
    dropped = [*given, *(["--out"] if args.out else [])]
    if dropped:
        raise ValueError(
            f"--resume takes its settings from {args.resume}/config.json; drop "
            + ", ".join(dropped)
        )


def finished_before(run_path: str | os.PathLike[str]) -> bool:
    """Whether the run ``--resume`` names has finished; if so, says so (and nothing changes)."""
    from prefgym.runs import RunDir

    run = RunDir.open(run_path)
    _ = run.text_config() if run.is_text() else run.train_config()  # a damaged config is named
    note = run.finished()
    if note is not None:
        print(run.finished_message(note))
    return note is not None


def add_max_wait(parser: argparse.ArgumentParser) -> None:
    """``--max-wait SECONDS``: how long each refit waits for people (``--oracle human``)."""
    parser.add_argument(
        "--max-wait",
        metavar="SECONDS",
        help="with --oracle human, each refit waits until people answer every pair asked, "
        "this many seconds at most (default: as long as they take); also with --resume",
    )


def max_wait_of(args: argparse.Namespace) -> float | None:
    """The seconds ``--max-wait`` gives (None if left out), or a ValueError naming the value."""
    if args.max_wait is None:
        return None
    try:
        value = float(args.max_wait)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # NaN too
        raise ValueError(
            f"--max-wait {args.max_wait!r} is not a number of seconds >= 0; give one, or "
            "leave --max-wait out to wait as long as people take"
        )
    return value
