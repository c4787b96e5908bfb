from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from prefgym.store import PreferenceStore

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import Filled, Spawn


# ------------------------------------------------------ processes and crashes


WRITER = """
import itertools, sys
from prefgym.store._store import PreferenceStore
with PreferenceStore(sys.argv[1], timeout=60) as store:
    queries = [q.id for q in store.pending_queries()]
    limit = int(sys.argv[2])
    n = 0
    for round in itertools.count():
        for query in queries:
            if n == limit:
                sys.exit(0)
            judgment = store.add_judgment(query, "left" if n % 2 else "right", f"judge{round}")
            print(judgment, flush=True)
            n += 1
"""


def test_reader_sees_a_consistent_store_while_another_process_writes(
    store_path: Path, rng: np.random.Generator, filled: Filled, spawn: Spawn
) -> None:
    with PreferenceStore(store_path) as store:
        seg = filled(store, rng)
        store.add_queries([[seg[0], seg[1]], [seg[2], seg[3]]] * 20)
        writer = spawn(WRITER, str(store_path), "150")
        seen: list[int] = []
        snapshots = 0
        while writer.poll() is None or snapshots == 0:
            ids = [j.id for j in store.judgments()]
            assert ids[: len(seen)] == seen  # what was read before is still there
            assert store.n_judgments() >= len(ids)
            seen = ids
            snapshots += 1
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0
        reported = [int(line) for line in out.split()]
        assert len(reported) == 150
        assert [j.id for j in store.judgments()] == reported
        assert snapshots > 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_labeling_loses_no_committed_judgment(
    store_path: Path, rng: np.random.Generator, filled: Filled, spawn: Spawn
) -> None:
    with PreferenceStore(store_path) as store:
        seg = filled(store, rng)
        store.add_queries([[seg[i % 6], seg[(i + 1) % 6]] for i in range(50)])
    writer = spawn(WRITER, str(store_path), "-1")  # writes until killed
    assert writer.stdout is not None
    reported = [int(writer.stdout.readline()) for _ in range(40)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    with PreferenceStore(store_path) as store:
        stored = {j.id for j in store.judgments()}
        assert set(reported) <= stored
        assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.add_judgment(store.pending_queries()[0].id, "equal", "after")  # still writable


# --------------------------------------------------------------------- meta


def test_meta(store_path: Path) -> None:
    with PreferenceStore(store_path) as store:
        assert store.get_meta("labels") is None and store.get_meta("labels", 0) == 0
        store.set_meta("labels", 3)
        store.set_meta("labels", 4)
        store.set_meta("config", {"env": "prefgym/Pendulum-v1", "beta": [1.0, None]})
        with pytest.raises(ValueError, match="'bad'"):
            store.set_meta("bad", {1, 2})
    with PreferenceStore(store_path) as store:
        assert store.get_meta("labels") == 4
        assert store.get_meta("config") == {"env": "prefgym/Pendulum-v1", "beta": [1.0, None]}
        assert store.get_meta("bad") is None
