"""Atomic files and directories: a kill at any write boundary leaves the old or the new."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prefgym.files import (
    atomic_directory,
    read_json,
    readable_directory,
    settle_directory,
    write_atomic,
    write_json,
)

SAVER = """
import os, signal, sys
from pathlib import Path
from prefgym import files

directory, version, kill_at = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
count = [0]
real_replace = os.replace

def replace(src, dst):
    count[0] += 1
    if count[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # nothing runs after this, no cleanup either
    real_replace(src, dst)

files.os.replace = replace
with files.atomic_directory(directory) as new:
    files.write_json(new / "meta.json", {"version": version})
    (new / "weights.bin").write_bytes(bytes([version]) * 100)
"""


def _save_killed_at(directory: Path, version: int, kill_at: int) -> int:
    """Save ``version`` in a child killed at its ``kill_at``-th rename (0: none); its status."""
    child = [sys.executable, "-c", SAVER, str(directory), str(version), str(kill_at)]
    return subprocess.run(child, capture_output=True).returncode


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    write_atomic(path, "short")
    assert path.read_text() == "short"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _save(directory: Path, version: int) -> None:
    with atomic_directory(directory) as new:
        write_json(new / "meta.json", {"version": version})
        (new / "weights.bin").write_bytes(bytes([version]) * 100)


def _version(directory: Path) -> int:
    meta = read_json(directory / "meta.json", "meta")
    assert (directory / "weights.bin").read_bytes() == bytes([meta["version"]]) * 100
    return int(meta["version"])


@pytest.mark.parametrize(
    ("kill_at", "survivor"),
    [(1, 1), (2, 1), (3, 2)],  # meta.json into NAME.new; NAME to NAME.old; NAME.new to NAME
)
def test_a_kill_at_any_rename_of_a_directory_save_leaves_one_whole_version(
    tmp_path: Path, kill_at: int, survivor: int
) -> None:
    directory = tmp_path / "ckpt"
    _save(directory, 1)
    assert _save_killed_at(directory, 2, kill_at) == -signal.SIGKILL
    assert _version(readable_directory(directory)) == survivor  # a reader changes nothing
    settle_directory(directory)  # the next writer settles it
    assert _version(directory) == survivor
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # nothing left over
    _save(directory, 3)
    assert _version(directory) == 3
    assert _save_killed_at(directory, 4, 0) == 0  # the child saves when it is not killed
    assert _version(directory) == 4


def test_a_kill_inside_a_file_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    code = (
        "import os, signal, sys\n"
        "from prefgym import files\n"
        "files.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"files.write_json({str(path)!r}, {{'x': 2}})\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert read_json(path, "a") == {"x": 1}
    write_json(path, {"x": 3})  # the next write removes the dead writer's temporary
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


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


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    dead = tmp_path / ".a.json.999999999.tmp"  # no such pid
    alive = tmp_path / f".a.json.{os.getppid()}.tmp"  # a live writer's is left alone
    other = tmp_path / ".b.json.999999999.tmp"  # another file's too
    for leftover in (dead, alive, other):
        leftover.write_text("{")
    write_json(path, [1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.json", alive.name, other.name])
