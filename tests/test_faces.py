from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

PACKAGE = "facepkg"
LOG = "facepkg_log"

INIT = '''
"""A throwaway package face."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from facepkg._impl import Widget as Gadget, zeta
    from facepkg._other import alpha

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
'''

IMPL = """
import facepkg_log

facepkg_log.IMPORTED.append(__name__)


class Widget:
    pass


def zeta():
    return "zeta"


hidden = "not in the face"
"""

OTHER = """
import facepkg_log

facepkg_log.IMPORTED.append(__name__)

alpha = 42
"""


def _forget() -> None:
    for name in list(sys.modules):
        if name in (PACKAGE, LOG) or name.startswith(f"{PACKAGE}."):
            del sys.modules[name]


@pytest.fixture
def face(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A package ``facepkg`` on sys.path; yields the list its submodules log their imports to."""
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "__init__.py").write_text(textwrap.dedent(INIT), encoding="utf-8")
    (tmp_path / PACKAGE / "_impl.py").write_text(textwrap.dedent(IMPL), encoding="utf-8")
    (tmp_path / PACKAGE / "_other.py").write_text(textwrap.dedent(OTHER), encoding="utf-8")
    (tmp_path / f"{LOG}.py").write_text("IMPORTED: list[str] = []\n", encoding="utf-8")
    _forget()
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    log = importlib.import_module(LOG)
    yield log.IMPORTED
    _forget()


def _package() -> ModuleType:
    return importlib.import_module(PACKAGE)


def test_importing_the_package_imports_none_of_its_modules(face: list[str]) -> None:
    package = _package()
    assert face == []
    assert f"{PACKAGE}._impl" not in sys.modules and f"{PACKAGE}._other" not in sys.modules
    assert "zeta" not in vars(package)


def test_a_name_is_imported_from_its_module_on_first_use(face: list[str]) -> None:
    package = _package()
    assert package.zeta() == "zeta"
    assert face == [f"{PACKAGE}._impl"]  # only the module that holds it
    assert package.zeta is sys.modules[f"{PACKAGE}._impl"].zeta
    assert "zeta" in vars(package)  # kept: the next use is a plain attribute
    assert package.alpha == 42
    assert face == [f"{PACKAGE}._impl", f"{PACKAGE}._other"]
    package.zeta()
    assert len(face) == 2  # each module imported once


def test_an_alias_names_the_face_and_not_the_module(face: list[str]) -> None:
    package = _package()
    assert package.Gadget is sys.modules[f"{PACKAGE}._impl"].Widget
    assert package.Gadget.__name__ == "Widget"
    with pytest.raises(AttributeError):
        package.Widget  # noqa: B018


def test_all_lists_the_face_sorted(face: list[str]) -> None:
    package = _package()
    assert package.__all__ == ["Gadget", "alpha", "zeta"]
    assert package.__all__ == sorted(package.__all__)
    assert face == []  # listing imports nothing


def test_dir_lists_the_face_and_what_is_loaded(face: list[str]) -> None:
    package = _package()
    listed = dir(package)
    assert {"Gadget", "alpha", "zeta", "lazy_face", "TYPE_CHECKING", "__all__"} <= set(listed)
    assert listed == sorted(listed)
    assert "hidden" not in listed
    assert face == []


def test_an_unknown_name_raises_attribute_error_naming_it(face: list[str]) -> None:
    package = _package()
    with pytest.raises(AttributeError, match="module 'facepkg' has no attribute 'nope'"):
        package.nope  # noqa: B018
    with pytest.raises(AttributeError, match="'hidden'"):
        package.hidden  # noqa: B018  (in a module, but not in the face)
    assert not hasattr(package, "missing")
    assert face == []


def test_from_import_resolves_through_the_face(face: list[str]) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {PACKAGE} import alpha, Gadget", namespace)
    assert namespace["alpha"] == 42
    assert namespace["Gadget"] is sys.modules[f"{PACKAGE}._impl"].Widget
    with pytest.raises(ImportError, match="nope"):
        exec(f"from {PACKAGE} import nope", {})


def test_star_import_brings_the_whole_face(face: list[str]) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {PACKAGE} import *", namespace)
    assert {"Gadget", "alpha", "zeta"} <= set(namespace)
    assert "lazy_face" not in namespace
    assert sorted(face) == [f"{PACKAGE}._impl", f"{PACKAGE}._other"]
