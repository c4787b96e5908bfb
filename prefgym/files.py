"""Atomic files and directories: a kill at any instant leaves the old version or the new one.

Every checkpoint, config and result that prefgym writes into a run directory goes
through here, so that a crash mid-write never leaves a truncated file behind.

* :func:`write_atomic` writes bytes or text to a temporary file beside the target,
  fsyncs it, renames it over the target (``os.replace``, atomic on POSIX) and
  fsyncs the directory, so the rename itself survives a power cut.
* :func:`atomic_file` does the same for a library that wants a path to write to
  (safetensors' ``save_file``).
* :func:`atomic_directory` replaces a whole directory of files that belong
  together (weights and the JSON that describes them): the new version is written
  into ``NAME.new``, fsynced, and swapped in by two renames (``NAME`` to
  ``NAME.old``, ``NAME.new`` to ``NAME``). :func:`settle_directory`, which every
  loader calls first, finishes a swap that a kill interrupted between the two
  renames, and discards a half-written ``NAME.new``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_NEW = ".new"
_OLD = ".old"


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    target = Path(path)
    with atomic_file(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return target


def create_atomic(path: str | os.PathLike[str], data: str) -> Path:
    """Write ``data`` to ``path`` atomically, unless ``path`` exists; returns the path.

    Raises:
        FileExistsError: ``path`` exists (or another process created it first).
    """
    target = Path(path)
    with atomic_file(target.with_name(target.name + ".draft")) as tmp:
        tmp.write_text(data, encoding="utf-8")
    draft = target.with_name(target.name + ".draft")
    try:
        os.link(draft, target)  # fails if the target exists: unlike a rename, never replaces
    finally:
        draft.unlink()
    fsync_directory(target.parent)
    return target


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as indented JSON to ``path`` atomically; returns the path."""
    return write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file raises a ValueError.

    Args:
        path: The file.
        what: What the file is, for the message (``"the run's config"``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {what} {path}: {error}") from None

    try:  # NaN and Infinity are read (a Box's bounds); settings are checked finite by schema
        return json.loads(text)
    except json.JSONDecodeError as error:
        empty = " (it is empty: a write was cut off)" if not text.strip() else ""
        raise ValueError(f"{what} {path} is not valid JSON{empty}: {error}") from None


def read_json_object(
    path: str | os.PathLike[str], what: str, *, format: str | None = None, version: int = 1
) -> dict[str, Any]:
    """The JSON object in ``path`` (see :func:`read_json`), of ``format`` and ``version``.

    Args:
        path: The file.
        what: What the file is, for the message.
        format: The ``"format"`` the object must name; None checks neither it nor the version.
        version: The ``"version"`` it must name with ``format``.

    Raises:
        ValueError: The file is not a JSON object, or of another format or version.
    """
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a JSON object, got {type(data).__name__}")
    if format is not None and (data.get("format"), data.get("version")) != (format, version):
        raise ValueError(
            f"{what} {path} is format {data.get('format')!r} version {data.get('version')!r}; "
            f"this prefgym reads {format!r} version {version}"
        )
    return data


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write ``path``'s new contents to; on success it replaces ``path``.

    If the body raises, the temporary file is removed and ``path`` is unchanged.
    """
    target = Path(path)
    _remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh directory to write ``path``'s new files into; on success it replaces ``path``.

    If the body raises, the new directory is removed and ``path`` is unchanged.
    """
    target = Path(path)
    settle_directory(target)
    new, old = _sibling(target, _NEW), _sibling(target, _OLD)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    try:
        yield new
        for item in new.rglob("*"):  # files, and the entries of subdirectories (a codec/)
            if item.is_file():
                _fsync_file(item)
            elif item.is_dir():
                fsync_directory(item)
        fsync_directory(new)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)  # a kill before this line is finished by settle_directory
    fsync_directory(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def readable_directory(path: str | os.PathLike[str]) -> Path:
    """The complete version of an :func:`atomic_directory` checkpoint, found without a change.

    Readers (``eval``, ``report``) may look while a trainer saves, so they never
    settle a swap themselves: between the swap's two renames the complete version
    is ``NAME.new``; otherwise it is ``NAME`` (which may not exist: nothing saved).
    """
    target = Path(path)
    new, old = _sibling(target, _NEW), _sibling(target, _OLD)
    if target.exists() or not old.exists():
        return target
    return new if new.exists() else old


def settle_directory(path: str | os.PathLike[str]) -> Path:
    """Finish or undo an :func:`atomic_directory` swap a kill interrupted; returns ``path``.

    ``NAME.new`` is complete only once ``NAME`` has been moved aside to ``NAME.old``
    (it was fsynced before), so it is swapped in then; otherwise it is a
    half-written directory and is removed. A leftover ``NAME.old`` is removed.
    Only the writer settles (under the run's trainer lock); readers use
    :func:`readable_directory`.
    """
    target = Path(path)
    new, old = _sibling(target, _NEW), _sibling(target, _OLD)
    if new.exists() and not target.exists() and old.exists():
        os.replace(new, target)
        fsync_directory(target.parent)
    if new.exists():  # written only in part (or the first save, never swapped in)
        shutil.rmtree(new, ignore_errors=True)
    if old.exists() and target.exists():
        shutil.rmtree(old, ignore_errors=True)
    if old.exists() and not target.exists():  # NAME.new was removed by hand: keep the old one
        os.replace(old, target)
    return target


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temporaries(target: Path) -> None:
    """Delete the temporaries of ``target`` that killed processes left behind."""
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        pid = tmp.name.removeprefix(f".{target.name}.").removesuffix(".tmp")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
