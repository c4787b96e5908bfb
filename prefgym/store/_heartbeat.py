"""The trainer's heartbeat: a note in the store saying it is alive, and what it waits for.

A person labeling in the window needs to know whether anyone will use their
answers: a trainer that runs, one that waits for them, one that finished, or one
that died (a crash or ``kill -9`` writes nothing, so a beat older than
:data:`STALE_SECONDS`, or a process that is gone on this host, reads as stopped).
The note is JSON in the ``meta`` table under :data:`HEARTBEAT`, read back through
:meth:`TrainerStatus.from_note`, which checks every field. A run beats through a
:class:`Heartbeat`: a thread with its own connection that renews the note every
:data:`BEAT_SECONDS` whatever the trainer is busy with (a long refit, an evaluation).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from prefgym.store._file import StoreError, StoreFile, read_meta, write_meta

HEARTBEAT = "trainer"
"""The ``meta`` key of the trainer's heartbeat."""
BEAT_SECONDS = 10.0
"""How often a :class:`Heartbeat` renews the note."""
STALE_SECONDS = 60.0
"""A beat older than this means the trainer stopped (a :class:`Heartbeat` beats every
:data:`BEAT_SECONDS`)."""
TrainerState = Literal["running", "waiting", "finished", "stopped"]
STATES: tuple[TrainerState, ...] = ("running", "waiting", "finished", "stopped")


@dataclass(frozen=True)
class TrainerStatus:
    """The trainer's last beat."""

    state: TrainerState
    """``running``, ``waiting`` (for people's judgments), ``finished`` or ``stopped``."""
    waiting_for: int
    """Judgments the trainer waits for (when ``waiting``)."""
    time: float
    """When it beat (the store's clock)."""
    pid: int
    """The trainer's process id."""
    host: str
    """The trainer's host name."""

    @classmethod
    def from_note(cls, note: Any, where: str) -> TrainerStatus:
        """The status in a stored note; :class:`StoreError` naming ``where`` if it is malformed."""
        fields = ("state", "waiting_for", "time", "pid", "host")
        ok = (
            isinstance(note, dict)
            and set(note) == set(fields)
            and note["state"] in STATES
            and all(
                isinstance(note[k], int) and not isinstance(note[k], bool) and note[k] >= 0
                for k in ("waiting_for", "pid")
            )
            and isinstance(note["time"], int | float)
            and math.isfinite(note["time"])
            and isinstance(note["host"], str)
        )
        if not ok:
            raise StoreError(
                f"{where}: the trainer's heartbeat {note!r} is malformed (expected {fields}); "
                "the store was changed by hand"
            )
        return cls(**note)

    def alive(self, now: float) -> bool:
        """Whether a trainer in ``running``/``waiting`` still beats (its process exists)."""
        if self.state not in ("running", "waiting"):
            return False
        if now - self.time > STALE_SECONDS:
            return False
        return self.host != socket.gethostname() or _pid_alive(self.pid)

    def describe(self, now: float) -> str:
        """One line for the window: "trainer running", "trainer stopped (last seen 2 min ago)"."""
        if self.state == "finished":
            return "trainer finished"
        if self.state != "stopped" and self.alive(now):
            if self.state == "waiting":
                n = self.waiting_for
                return f"trainer waiting for you: {n} judgment{'s' * (n != 1)}"
            return "trainer running"
        return f"trainer stopped (last seen {_ago(now - self.time)})"


def write_beat(file: StoreFile, state: TrainerState, *, waiting_for: int = 0) -> TrainerStatus:
    """Record that the trainer of this process is in ``state`` now."""
    if state not in STATES:
        raise ValueError(f"trainer state must be one of {STATES}, got {state!r}")
    status = TrainerStatus(state, waiting_for, file.clock(), os.getpid(), socket.gethostname())
    write_meta(file, HEARTBEAT, asdict(status))
    return status


def read_beat(file: StoreFile) -> TrainerStatus | None:
    """The trainer's last beat, or None if no trainer ever ran on this store."""
    note = read_meta(file, HEARTBEAT)
    return None if note is None else TrainerStatus.from_note(note, str(file.path))


class Heartbeat:
    """Beats for this process's trainer from a thread with its own store connection.

    ``with Heartbeat(path) as heartbeat:`` beats ``running`` at once and every
    :data:`BEAT_SECONDS`; :meth:`set` changes the state (written before it returns);
    leaving the block writes ``finished``, or ``stopped`` if it raised.
    """

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        """Beat into the store at ``path`` (stamped by ``clock``, the store's clock)."""
        self.path, self.clock = Path(path), clock
        self._state: tuple[TrainerState, int] = ("running", 0)
        self._wanted = threading.Condition()
        self._written = 0
        self._asked = 0
        self._done = False
        self._dead = False
        self._thread = threading.Thread(target=self._beat, name="prefgym-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        self.set("running")
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.set("stopped" if kind is not None else "finished", wait=kind is None)
        with self._wanted:
            self._done = True
            self._wanted.notify_all()
        self._thread.join(timeout=30)

    def set(self, state: TrainerState, waiting_for: int = 0, *, wait: bool = True) -> None:
        """Beat ``state`` now; with ``wait``, return once it is written (or failed to be).

        The heartbeat is advice to people: a store too busy to take it never stops
        training; the next beat tries again.
        """
        with self._wanted:
            self._state = (state, waiting_for)
            self._asked += 1
            asked = self._asked
            self._wanted.notify_all()
            if wait:
                self._wanted.wait_for(lambda: self._written >= asked or self._dead)

    def _beat(self) -> None:
        from prefgym.store._file import StoreFile

        try:
            file = StoreFile(self.path, clock=self.clock)
        except StoreError:  # the run reports a damaged store itself
            with self._wanted:
                self._dead = True
                self._wanted.notify_all()
            return
        try:
            while True:
                with self._wanted:
                    self._wanted.wait_for(
                        lambda: self._done or self._asked > self._written, timeout=BEAT_SECONDS
                    )
                    if self._done and self._asked == self._written:
                        return
                    (state, waiting_for), asked = self._state, self._asked
                try:
                    write_beat(file, state, waiting_for=waiting_for)
                except StoreError:  # a busy store: the next beat tries again
                    pass
                with self._wanted:
                    self._written = asked
                    self._wanted.notify_all()
        finally:
            file.close()
            with self._wanted:
                self._dead = True
                self._wanted.notify_all()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
