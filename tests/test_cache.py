from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.cache import cache_dir


def test_prefgym_cache_wins_and_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "cache"
    monkeypatch.setenv("PREFGYM_CACHE", str(target))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == target
    assert target.is_dir()
    assert not (tmp_path / "xdg").exists()


def test_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PREFGYM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "prefgym"
    assert (tmp_path / "xdg" / "prefgym").is_dir()


@pytest.mark.parametrize("unset", ["missing", "empty"])
def test_home_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unset: str) -> None:
    if unset == "missing":
        monkeypatch.delenv("PREFGYM_CACHE", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("PREFGYM_CACHE", "")
        monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "prefgym"
    assert (tmp_path / ".cache" / "prefgym").is_dir()


def test_existing_directory_is_fine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(tmp_path))
    (tmp_path / "kept.txt").write_text("x")
    assert cache_dir() == tmp_path
    assert cache_dir() == tmp_path
    assert (tmp_path / "kept.txt").read_text() == "x"


def test_unwritable_place_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PREFGYM_CACHE", str(blocker / "cache"))
    with pytest.raises(OSError, match="PREFGYM_CACHE"):
        cache_dir()
