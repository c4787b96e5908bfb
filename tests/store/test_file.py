from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from prefgym.segments import Segment
from prefgym.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    PreferenceStore,
    StoreError,
    decode_array,
    encode_array,
)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "prefs.sqlite"


def filled(store: PreferenceStore, rng: np.random.Generator, n: int = 6) -> list[int]:
    segments = [
        Segment(rng.normal(size=(5, 4)), rng.integers(0, 3, size=5), rng.normal(size=5))
        for _ in range(n)
    ]
    return store.add_segments(segments)


def test_not_a_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"my precious notes\n" * 100
    path.write_bytes(content)
    with pytest.raises(StoreError, match="notes.txt.*not a SQLite database"):
        PreferenceStore(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_corrupt_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    content = b"SQLite format 3\x00" + bytes(range(256)) * 16
    path.write_bytes(content)
    with pytest.raises(StoreError, match="broken.sqlite"):
        PreferenceStore(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="other.db.*not a prefgym preference store"):
        PreferenceStore(path)
    assert path.read_bytes() == before


def test_newer_schema_asks_for_an_upgrade(store_path: Path) -> None:
    PreferenceStore(store_path).close()
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as error:
        PreferenceStore(store_path)
    message = str(error.value)
    assert f"version {SCHEMA_VERSION + 1}" in message and f"version {SCHEMA_VERSION}" in message
    assert "upgrade prefgym" in message and str(store_path) in message


def test_paths_that_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a file"):
        PreferenceStore(tmp_path)
    with pytest.raises(StoreError, match="not a directory"):
        PreferenceStore(tmp_path / "missing" / "s.sqlite")


def test_empty_file_becomes_a_store_in_wal_mode(store_path: Path) -> None:
    store_path.touch()
    with PreferenceStore(store_path) as store:
        conn = store.connection
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.n_segments()


def test_write_waits_for_another_writer_then_says_so(
    store_path: Path, rng: np.random.Generator
) -> None:
    with PreferenceStore(store_path, timeout=0.05) as store:
        other = sqlite3.connect(store_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        assert store.n_segments() == 0  # readers are not blocked (WAL)
        with pytest.raises(StoreError, match="could not start a write.*timeout=0.05"):
            filled(store, rng, 1)
        other.execute("COMMIT")
        other.close()
        assert len(filled(store, rng, 1)) == 1


def test_arrays_round_trip_through_their_bytes(rng: np.random.Generator) -> None:
    for array in (rng.normal(size=(3, 4)), np.arange(5, dtype=np.int16), np.zeros((2, 0, 3))):
        back = decode_array(encode_array("observations", array))
        assert back.dtype == array.dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)
    with pytest.raises(
        ValueError, match="segment frames must be a numeric array, got dtype object"
    ):
        encode_array("frames", np.array([None, 1], dtype=object))


@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_a_read_only_store_is_named_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: str
) -> None:
    path = tmp_path / "store.sqlite"
    PreferenceStore(path).close()
    denied = path if read_only == "file" else tmp_path
    real_access = os.access
    # chmod cannot deny root (the CI runs as root), so the permission check is told directly
    monkeypatch.setattr(
        os, "access", lambda p, mode: Path(p) != denied and bool(real_access(p, mode))
    )
    with pytest.raises(StoreError, match=rf"store {path} is read-only \({denied} cannot be"):
        PreferenceStore(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_directory_is_not_called_a_damaged_database(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    PreferenceStore(path).close()
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="is read-only"):
            PreferenceStore(path)
    finally:
        tmp_path.chmod(0o700)
