"""The layout README's "Architecture" table draws is the layout the imports follow.

Each package may import only the packages on lower levels of the table (and
itself); no module imports another package's private ``_`` module; config modules
and ``import prefgym`` load no torch, transformers, SB3 or pygame.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "prefgym"
HEAVY = ("torch", "transformers", "stable_baselines3", "pygame", "ray")


def _levels() -> dict[str, int]:
    """``{package: level}`` from README's table, whose rows read ``| level | `prefgym/x/` |``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    levels: dict[str, int] = {}
    for level, cells in re.findall(r"^\| (\d+) \| ([^|]+)\|", section, flags=re.MULTILINE):
        for path in re.findall(r"`prefgym/([\w/]*?)/?`", cells):
            levels["prefgym." + path.replace("/", ".") if path else "prefgym"] = int(level)
    return levels


def _package_of(module: str, levels: dict[str, int]) -> str:
    """The longest package of the table that holds ``module`` (the nouns are ``prefgym``)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in levels:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} is in no package of README's architecture table")


def _imports() -> list[tuple[str, str, int]]:
    """``(importer, imported module, line)`` for every prefgym import, typing-only ones too."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        importer = ".".join(parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found += [(importer, t, node.lineno) for t in targets if t.split(".")[0] == "prefgym"]
    return found


def test_the_table_covers_every_package() -> None:
    levels = _levels()
    assert len(levels) >= 10, f"README's architecture table lists only {sorted(levels)}"
    for init in PACKAGE.rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(ROOT).parts)
        _package_of(package, levels)  # raises for a package the table does not place


def test_no_package_imports_one_above_it_or_beside_it() -> None:
    levels = _levels()
    wrong = []
    for importer, imported, line in _imports():
        if importer == "prefgym" and imported == "prefgym.envs.registration":
            continue  # `import prefgym` registers the env ids: the one edge upwards, by design
        mine, theirs = _package_of(importer, levels), _package_of(imported, levels)
        if mine != theirs and levels[theirs] >= levels[mine]:
            wrong.append(
                f"{importer}:{line} ({levels[mine]}) imports {imported} ({levels[theirs]})"
            )
    assert not wrong, "imports against README's architecture table:\n" + "\n".join(wrong)


def test_packages_meet_through_their_faces() -> None:
    levels = _levels()
    private = [
        f"{importer}:{line} imports {imported}"
        for importer, imported, line in _imports()
        if any(p.startswith("_") and not p.startswith("__") for p in imported.split("."))
        and _package_of(importer, levels) != _package_of(imported, levels)
    ]
    assert not private, "private modules of another package:\n" + "\n".join(private)


def test_a_broken_import_is_caught_here() -> None:
    """The checks above see through a lazy face: one import upwards is reported."""
    levels = _levels()
    assert levels["prefgym.store"] < levels["prefgym.loop"] < levels["prefgym.runs"]
    assert _package_of("prefgym.loop._pairs", levels) == "prefgym.loop"
    assert _package_of("prefgym.segments", levels) == "prefgym"


CHEAP = [
    "prefgym",
    "prefgym.cli",
    "prefgym.runs.config",
    "prefgym.loop.config",
    "prefgym.reward.config",
    "prefgym.lm.config",
    "prefgym.agents.sb3.config",
    "prefgym.agents.text.config",
]


@pytest.mark.parametrize("module", CHEAP)
def test_config_modules_and_the_package_import_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == "", f"importing {module} loaded {loaded}"


def test_the_cli_builds_its_parser_without_heavy_imports() -> None:
    code = (
        "import sys\nfrom prefgym.cli._main import _parser\n_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == ""


def test_every_module_has_its_test_file() -> None:
    """``prefgym/<dir>/_<name>.py`` is tested in ``tests/<dir>/test_<name>.py``."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        relative = path.relative_to(PACKAGE)
        test = ROOT / "tests" / relative.parent / f"test_{path.stem.removeprefix('_')}.py"
        if not test.is_file():
            missing.append(f"{relative} -> {test.relative_to(ROOT)}")
    assert not missing, "modules without a test file:\n" + "\n".join(missing)
