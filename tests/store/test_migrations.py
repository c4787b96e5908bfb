"""Stores written by earlier prefgym versions open in this one, after a backup copy."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from prefgym.judgments import Preference
from prefgym.store import PreferenceStore, StoreError
from prefgym.store import _file as store_file

FIXTURES = Path(__file__).parent / "fixtures"


def _copy(tmp_path: Path, version: int = 1) -> Path:
    path = tmp_path / "store.sqlite"
    shutil.copyfile(FIXTURES / f"store_v{version}.sqlite", path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_store_of_version_1_opens_with_everything_it_holds(tmp_path: Path) -> None:
    with PreferenceStore(_copy(tmp_path)) as store:
        segments = store.get_segments(store.segment_ids())
        judgments = store.judgments()
        assert store.n_queries() == 3 and store.get_meta("round") == 2
        assert store.get_meta("learner_state") == {"l2": 0.01, "steps": 40, "judgments": [3, 3]}
    assert [s.info["episode"] for s in segments] == [0, 1, 2, 3]
    np.testing.assert_array_equal(segments[1].observations, np.arange(12).reshape(3, 4) * 2)
    assert segments[0].frames is not None and segments[0].frames.shape == (3, 2, 2, 3)
    assert segments[1].frames is None
    assert [(j.judge, j.preference) for j in judgments] == [
        ("oracle", Preference.LEFT),
        ("alice", Preference.EQUAL),
        ("oracle", None),
    ]
    assert judgments[2].order == (4, 2, 3) and judgments[2].created == 1_700_000_004.0
    assert [j.seconds for j in judgments] == [None, None, None]  # version 2 adds the column
    assert _version(tmp_path / "store.sqlite") == store_file.SCHEMA_VERSION
    with PreferenceStore(tmp_path / "store.sqlite") as store:  # and the migrated store takes it
        query = store.add_queries([store.segment_ids()[:2]])[0]
        store.add_judgment(query, "left", "bob", seconds=1.5)
        assert store.judgments(judge="bob")[0].seconds == 1.5
    assert store_file.backup_path(tmp_path / "store.sqlite", 1).exists()


def _add_labeler_seconds(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE judgments ADD COLUMN seconds REAL")


def test_an_older_store_is_backed_up_then_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(tmp_path)
    before = _sha(path)
    monkeypatch.setattr(store_file, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_file, "MIGRATIONS", {1: _add_labeler_seconds})
    with PreferenceStore(path) as store:
        assert store.n_judgments() == 3
        columns = [row[1] for row in store.connection.execute("PRAGMA table_info(judgments)")]
    assert "seconds" in columns and _version(path) == 2
    backup = store_file.backup_path(path, 1)
    assert _version(backup) == 1
    with sqlite3.connect(backup) as conn:  # the copy holds what the old store held
        assert conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 3
    assert _sha(path) != before
    with PreferenceStore(path) as store:  # opening again changes nothing more
        assert store.n_judgments() == 3


def test_a_failed_migration_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(tmp_path)
    before = _sha(path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE judgments ADD COLUMN seconds REAL")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_file, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store_file, "MIGRATIONS", {1: broken})
    with pytest.raises(StoreError, match=r"from store schema version 1 to 2 \(disk on fire\)"):
        PreferenceStore(path)
    assert _version(path) == 1 and _sha(path) == before
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(judgments)")]
    assert "seconds" not in columns


def test_a_store_of_a_newer_or_unknown_version_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    before = _sha(path)
    with pytest.raises(StoreError, match="written by a newer prefgym"):
        PreferenceStore(path)
    monkeypatch.setattr(store_file, "SCHEMA_VERSION", 9)  # 7 is older, but has no step
    with pytest.raises(StoreError, match="unknown store schema version 7"):
        PreferenceStore(path)
    assert _sha(path) == before
