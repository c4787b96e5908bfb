"""The trainer's heartbeat, as the labeling window reads it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from prefgym.store import STALE_SECONDS, Heartbeat, PreferenceStore, StoreError, TrainerStatus

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import FakeClock


def test_no_trainer_yet_then_each_state_described(store: PreferenceStore, clock: FakeClock) -> None:
    assert store.trainer() is None
    store.beat("running")
    assert store.trainer().describe(clock.now) == "trainer running"  # type: ignore[union-attr]
    store.beat("waiting", waiting_for=3)
    status = store.trainer()
    assert status == TrainerStatus("waiting", 3, clock.now, os.getpid(), socket.gethostname())
    assert status.describe(clock.now + 1) == "trainer waiting for you: 3 judgments"
    assert store.beat("waiting", waiting_for=1).describe(clock.now).endswith("1 judgment")
    store.beat("finished")
    assert store.trainer().describe(clock.now + 1e6) == "trainer finished"  # type: ignore[union-attr]


def test_a_silent_trainer_reads_as_stopped(store: PreferenceStore, clock: FakeClock) -> None:
    status = store.beat("running")
    assert status.alive(clock.now + STALE_SECONDS - 1)
    assert status.describe(clock.now + 120) == "trainer stopped (last seen 2 min ago)"
    assert status.describe(clock.now + 3 * 3600) == "trainer stopped (last seen 3.0 h ago)"
    store.beat("stopped")
    assert store.trainer().describe(clock.now + 5) == "trainer stopped (last seen 5 s ago)"  # type: ignore[union-attr]


def test_a_trainer_killed_on_this_host_reads_as_stopped_at_once(
    store: PreferenceStore, clock: FakeClock
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is gone, as after a kill -9
    store.beat("running")
    status = TrainerStatus("running", 0, clock.now, child.pid, socket.gethostname())
    assert not status.alive(clock.now) and "stopped" in status.describe(clock.now)
    elsewhere = TrainerStatus("running", 0, clock.now, child.pid, "another-host")
    assert elsewhere.describe(clock.now) == "trainer running"  # no pid to check there


@pytest.mark.parametrize(
    "note",
    [
        "running",
        {"state": "dancing", "waiting_for": 0, "time": 1.0, "pid": 1, "host": "h"},
        {"state": "running", "waiting_for": -1, "time": 1.0, "pid": 1, "host": "h"},
        {"state": "running", "waiting_for": 0, "time": "now", "pid": 1, "host": "h"},
        {"state": "running", "waiting_for": 0, "time": 1.0, "pid": 1},
    ],
)
def test_a_heartbeat_changed_by_hand_is_named(store: PreferenceStore, note: object) -> None:
    store.set_meta("trainer", note)
    with pytest.raises(StoreError, match="the trainer's heartbeat .* is malformed"):
        store.trainer()
    with pytest.raises(ValueError, match="trainer state must be one of"):
        store.beat("asleep")  # type: ignore[arg-type]


def test_a_heartbeat_renews_itself_while_the_trainer_is_busy(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long refit or evaluation beats nothing itself: the thread keeps the note fresh."""
    from prefgym.store import _heartbeat

    monkeypatch.setattr(_heartbeat, "BEAT_SECONDS", 0.05)
    with PreferenceStore(store_path) as store, Heartbeat(store_path) as heartbeat:
        first = store.trainer()
        assert first is not None and first.state == "running"
        time.sleep(0.3)  # busy, no call into the heartbeat
        later = store.trainer()
        assert later is not None and later.time > first.time and later.state == "running"
        heartbeat.set("waiting", 2)
        assert store.trainer().waiting_for == 2  # type: ignore[union-attr]  # written on return
    with PreferenceStore(store_path) as store:
        assert store.trainer().state == "finished"  # type: ignore[union-attr]


def test_a_trainer_that_raises_leaves_stopped_behind(store_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Heartbeat(store_path):
        raise KeyboardInterrupt  # Ctrl-C, or a crash
    with PreferenceStore(store_path) as store:
        assert store.trainer().state == "stopped"  # type: ignore[union-attr]


def test_a_heartbeat_on_a_store_it_cannot_open_does_not_hang(tmp_path: Path) -> None:
    with Heartbeat(tmp_path / "no" / "such" / "store.sqlite") as heartbeat:
        heartbeat.set("waiting", 1)  # returns: advice to people never stops training
