"""The preference store's file: a SQLite database of a known schema, in WAL mode.

A store file carries ``PRAGMA application_id`` :data:`APPLICATION_ID` and
``PRAGMA user_version`` :data:`SCHEMA_VERSION`; opening checks both before
writing anything, so a file that is not a prefgym store is never changed.

Durability: the file is in WAL mode with ``synchronous=FULL``. Under WAL a
commit appends the transaction to the ``-wal`` file with ``write()`` before it
returns, so once a commit has returned the data is in the operating system's
page cache and a SIGKILL of the process cannot lose it (the next open replays
the WAL). ``synchronous=FULL`` also fsyncs the WAL on each commit, so a committed
write survives a power cut or a kernel crash too; a person labels a pair every
few seconds and synthetic labels come in batches (one transaction, one fsync),
so the cost is negligible.

Arrays are stored as ``np.save`` bytes (``allow_pickle=False``) compressed with
zlib level 1; nothing is ever pickled.

:class:`StoreFile` holds the open connection; the ``meta`` table, the file's own
JSON notes about its run, is read and written here too (:func:`read_meta`,
:func:`write_meta`).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

APPLICATION_ID = 0x50524647
"""``PRAGMA application_id`` of every prefgym store (the bytes ``PRFG``)."""
SCHEMA_VERSION = 2
"""``PRAGMA user_version`` this module writes and reads.

The policy for changing the store: every change to the tables bumps this version
and adds the step that brings a store of the previous version to it to
:data:`MIGRATIONS`, so that a store written by any earlier prefgym opens in every
later one (``tests/store/test_migrations.py`` migrates a committed store of each
past version). A store of a newer version than this is refused, never changed.
"""


def _add_judgment_seconds(conn: sqlite3.Connection) -> None:
    """Version 1 to 2: judgments record the seconds a person took (NULL for older ones)."""
    conn.execute("ALTER TABLE judgments ADD COLUMN seconds REAL")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _add_judgment_seconds}
"""``{version: step}``: ``step`` turns a store of ``version`` into one of ``version + 1``,
inside the write transaction that also sets the new version."""

CHUNK = 500
"""Ids per ``IN (...)`` clause, far below SQLite's variable limit."""

_SCHEMA = """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    created REAL NOT NULL,
    length INTEGER NOT NULL,
    observations BLOB NOT NULL,
    actions BLOB NOT NULL,
    true_rewards BLOB NOT NULL,
    frames BLOB,
    info TEXT NOT NULL
);
CREATE INDEX segments_round ON segments (round);
CREATE TABLE queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_ids TEXT NOT NULL,
    round INTEGER NOT NULL,
    created REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL
);
CREATE TABLE judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query_id INTEGER NOT NULL REFERENCES queries (id),
    preference TEXT CHECK (preference IN ('left', 'right', 'equal', 'incomparable')),
    ranking TEXT,
    judge TEXT NOT NULL,
    created REAL NOT NULL,
    seconds REAL,
    UNIQUE (query_id, judge),
    CHECK ((preference IS NULL) <> (ranking IS NULL))
);
CREATE INDEX judgments_judge ON judgments (judge);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(Exception):
    """A store file that cannot be used, or a request that conflicts with its contents."""


def encode_array(name: str, array: np.ndarray) -> bytes:
    """The stored bytes of a segment's array ``name``; only numeric arrays can be stored."""
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(array), allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"segment {name} must be a numeric array, got dtype {np.asarray(array).dtype}"
        ) from error
    return zlib.compress(buffer.getvalue(), 1)


def decode_array(blob: bytes) -> np.ndarray:
    """The array that :func:`encode_array` stored as ``blob``."""
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)


class StoreFile:
    """An open store file: one SQLite connection, its write transactions, and a clock.

    :class:`~prefgym.store._store.PreferenceStore` holds one; the functions of the
    table modules (``_segments``, ``_queries``, ``_judgments``) take it, so that each
    reads through :attr:`connection` and writes through :meth:`write`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        """Open or create a store file.

        Args:
            path: The store file; its directory must exist.
            clock: Returns the current time in seconds; stamps rows and times leases.
            timeout: Seconds a write waits for another process's write to finish.

        Raises:
            StoreError: ``path`` is not a SQLite database, is a SQLite database
                that is not a prefgym store, or was written by a newer prefgym.
        """
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        self.path = Path(path)
        self.clock = clock
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = open_store_file(self.path, timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def close(self) -> None:
        """Close the file; further calls raise :class:`StoreError`. Closing twice is fine."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; writes go through ``BEGIN IMMEDIATE``)."""
        if self._conn is None:
            raise StoreError(f"preference store {self.path} is closed")
        return self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back entirely if anything inside raises.

        Every write of the store goes through here, so that each is one
        ``BEGIN IMMEDIATE`` ... ``COMMIT`` and a busy file gives one clear error.
        """
        conn = self.connection
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(
                f"could not start a write on {self.path}: {error} (if another process "
                f"held it for longer than timeout={self.timeout} s, retry or raise the timeout)"
            ) from error
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def read_meta(file: StoreFile, key: str, default: Any = None) -> Any:
    """The JSON value stored under ``key`` in the file's ``meta`` table, or ``default``."""
    row = file.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return default
    try:
        return json.loads(row[0])
    except (json.JSONDecodeError, TypeError) as error:
        raise StoreError(
            f"{file.path}: the note {key!r} is not JSON ({error}); the store was changed by hand"
        ) from None


def write_meta(file: StoreFile, key: str, value: Any) -> None:
    """Store a JSON-serialisable ``value`` under ``key`` (committed at once)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"meta value for {key!r} is not JSON-serialisable: {error}") from None
    with file.write() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, text),
        )


def open_store_file(path: Path, timeout: float) -> sqlite3.Connection:
    """Open ``path`` as a prefgym store, creating one if the file is missing or empty.

    Args:
        path: The store file; its directory must exist.
        timeout: Seconds a write waits for another process's write to finish.

    Returns:
        An autocommit connection (``isolation_level=None``) in WAL mode.

    Raises:
        StoreError: ``path`` is not a SQLite database, is a SQLite database
            that is not a prefgym store, or was written by a newer prefgym.
    """
    if path.exists():
        if not path.is_file():
            raise StoreError(f"{path} is not a file; give the path of a preference store file")
        # No Python read of the header here: closing any handle on the file would drop the
        # POSIX locks of this process's other SQLite connections to it. SQLite itself
        # refuses a file that is not a database, before writing anything.
        for what in (path, path.parent):  # the WAL and its index are written beside the file
            if not os.access(what, os.W_OK):
                raise StoreError(
                    f"preference store {path} is read-only ({what} cannot be written); make "
                    f"it writable (chmod u+w {what}) or copy the run directory somewhere you can"
                )
    elif not path.parent.is_dir():
        raise StoreError(f"cannot create preference store {path}: {path.parent} is not a directory")
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open preference store {path}: {error}") from error
    try:
        new = _identify(conn, path)  # before any write: a foreign file is never changed
        if not new and _version(conn) < SCHEMA_VERSION:
            _migrate(conn, path)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path} cannot use write-ahead logging (journal mode {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if new:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _identify(conn, path):  # still new: no other process created it meanwhile
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreError(f"{path} is not a usable preference store: {error}") from error
    except BaseException:
        conn.close()
        raise
    return conn


def _identify(conn: sqlite3.Connection, path: Path) -> bool:
    """True for an empty database, False for a store this module reads; else raise."""
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        n_objects = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a SQLite database ({error}); it was left untouched"
        ) from error
    if application_id == 0 and version == 0 and n_objects == 0:
        return True
    if application_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is a SQLite database but not a prefgym preference store "
            f"(application_id {application_id:#x}, expected {APPLICATION_ID:#x}); "
            "it was left untouched (choose another path)"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer prefgym (store schema version {version}; "
            f"this prefgym reads up to version {SCHEMA_VERSION}); upgrade prefgym to open it"
        )
    if version != SCHEMA_VERSION and version not in MIGRATIONS:
        raise StoreError(f"{path} has unknown store schema version {version}")
    return False


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def backup_path(path: Path, version: int) -> Path:
    """Where the copy of a store of ``version`` is kept before it is migrated."""
    return path.with_name(f"{path.name}.v{version}.bak")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the store in ``conn`` to :data:`SCHEMA_VERSION`, after a backup copy.

    The copy (SQLite's online backup, consistent even while another process
    writes) is made once per old version; the steps run in one write transaction,
    so a failed or interrupted migration leaves the store as it was.
    """
    version = _version(conn)
    backup = backup_path(path, version)
    if not backup.exists():
        partial = backup.with_name(f"{backup.name}.{os.getpid()}.tmp")
        target = sqlite3.connect(partial)
        try:
            conn.backup(target)
        finally:
            target.close()
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, backup)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in range(_version(conn), SCHEMA_VERSION):  # another process may have begun
            MIGRATIONS[step](conn)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(error, Exception):
            raise StoreError(
                f"could not bring {path} from store schema version {version} to "
                f"{SCHEMA_VERSION} ({error}); it is unchanged, and a copy is at {backup}"
            ) from error
        raise
