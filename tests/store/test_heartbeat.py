"""The trainer's heartbeat, as the labeling window reads it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from prefgym.store import STALE_SECONDS, PreferenceStore, StoreError, TrainerStatus

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
