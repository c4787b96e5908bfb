"""Atomic files and directories: a kill at any write boundary leaves the old or the new."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from prefgym import files
from prefgym.files import (
    atomic_directory,
    load_tensors,
    read_json,
    settle_directory,
    write_atomic,
    write_json,
)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even ``except Exception``)."""


def _kill_at_replace(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """The ``call``-th ``os.replace`` (from 1) kills the process instead of renaming."""
    real = os.replace
    count = [0]

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        count[0] += 1
        if count[0] == call:
            raise Killed
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    write_atomic(path, "short")
    assert path.read_text() == "short"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_kill_before_the_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    _kill_at_replace(monkeypatch, 1)
    with pytest.raises(Killed):
        write_json(path, {"x": 2})
    assert read_json(path, "a") == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _save(directory: Path, version: int) -> None:
    with atomic_directory(directory) as new:
        write_json(new / "meta.json", {"version": version})
        (new / "weights.bin").write_bytes(bytes([version]) * 100)


def _version(directory: Path) -> int:
    settle_directory(directory)
    meta = read_json(directory / "meta.json", "meta")
    assert (directory / "weights.bin").read_bytes() == bytes([meta["version"]]) * 100
    return int(meta["version"])


@pytest.mark.parametrize("call", [1, 2, 3, 4])
def test_a_kill_at_any_rename_of_a_directory_save_leaves_one_whole_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: int
) -> None:
    directory = tmp_path / "ckpt"
    _save(directory, 1)
    _kill_at_replace(monkeypatch, call)  # 1: meta.json inside; 2: old aside; 3: new in
    try:
        _save(directory, 2)
    except Killed:
        pass
    monkeypatch.undo()
    assert _version(directory) == (1 if call <= 2 else 2)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # nothing left over
    _save(directory, 3)  # and the next save works
    assert _version(directory) == 3


def test_a_failed_directory_save_changes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    _save(directory, 1)
    with pytest.raises(OSError, match="disk full"), atomic_directory(directory) as new:
        (new / "weights.bin").write_bytes(b"half")
        raise OSError("disk full")
    assert _version(directory) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_a_first_save_killed_before_its_rename_leaves_no_checkpoint(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    (tmp_path / "ckpt.new").mkdir()  # killed while the first save was written
    (tmp_path / "ckpt.new" / "meta.json").write_text("{")
    assert not settle_directory(directory).exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not valid JSON \\(it is empty: a write was cut off\\)"),
        (b'{"a": ', "is not valid JSON"),
        (b"\xff\xfe", "cannot read the thing"),
    ],
)
def test_read_json_names_the_file_and_what_it_is(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_json(path, "the thing")
    assert str(path) in str(error.value)


def _tensors_file(tmp_path: Path, make: Callable[[Path], None]) -> Path:
    path = tmp_path / "w.safetensors"
    make(path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "is damaged and cannot be read"),
        (lambda p: p.write_bytes(os.urandom(300)), "is damaged and cannot be read"),
        (
            lambda p: p.write_bytes((2**40).to_bytes(8, "little") + b"{}"),  # huge header
            "is damaged and cannot be read",
        ),
        (
            lambda p: save_file({"w": torch.tensor([1.0, float("nan")])}, str(p)),
            r"non-finite values in 'w'",
        ),
        (
            lambda p: save_file({"w": torch.tensor([float("-inf")])}, str(p)),
            r"non-finite values in 'w'",
        ),
    ],
)
def test_load_tensors_refuses_damaged_or_non_finite_files(
    tmp_path: Path, make: Callable[[Path], None], message: str
) -> None:
    path = _tensors_file(tmp_path, make)
    with pytest.raises(ValueError, match=message) as error:
        load_tensors(path, "the weights")
    assert str(path) in str(error.value)


def test_load_tensors_reads_a_good_file_and_cut_off_copies_of_it_fail(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(6.0), "n": torch.arange(3)}, str(path))
    assert torch.equal(load_tensors(path, "the weights")["w"], torch.arange(6.0))
    data = path.read_bytes()
    for cut in (8, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="is damaged"):
            load_tensors(path, "the weights")


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    dead = tmp_path / ".a.json.999999999.tmp"  # no such pid
    alive = tmp_path / f".a.json.{os.getppid()}.tmp"  # a live writer's is left alone
    other = tmp_path / ".b.json.999999999.tmp"  # another file's too
    for leftover in (dead, alive, other):
        leftover.write_text("{")
    write_json(path, [1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.json", alive.name, other.name])
