"""Kill -9 at the write boundaries of every checkpoint, and two trainers on one run.

A training process is killed (SIGKILL, nothing runs after it) at a chosen
``fsync`` or ``os.replace`` of its run directory: inside the first save of the
reward model, inside a save of the agent, and between the two renames that swap
a checkpoint directory. ``prefgym train --resume`` must then finish the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefgym.cli import main
from prefgym.runs import RunDir, read_metrics
from prefgym.store import PreferenceStore

ARGS = ["--labels", "10", "--steps", "1024", "--round-steps", "512", "--seed", "2", "--quiet"]
KILLER = """
import os, signal, sys
# sys.argv[1]: a boundary number, or KIND:NAME:N (the N-th KIND of a file called NAME)
spec, count, named = sys.argv[1], [0], {}
real_replace, real_fsync = os.replace, os.fsync

def step(kind, path):
    count[0] += 1
    key = f"{kind}:{os.path.basename(os.fspath(path).rstrip('/'))}"
    named[key] = named.get(key, 0) + 1
    if spec == str(count[0]) or spec == f"{key}:{named[key]}":
        os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst):
    step("replace", dst)
    return real_replace(src, dst)

def fsync(fd):
    step("fsync", os.readlink(f"/proc/self/fd/{fd}"))
    return real_fsync(fd)

os.replace, os.fsync = replace, fsync
from prefgym.cli._main import main
sys.exit(main(sys.argv[2:]))
"""
KILL_AT = [
    "replace:reward_model:1",  # the first reward model swapped in
    "replace:agent.json:1",  # agent.json inside the first agent.new
    "fsync:metrics.csv:1",  # the first metrics row written, its agent not yet saved
    "replace:reward_model.old:1",  # the old reward model moved aside, the new one not yet in
    "replace:reward_model:2",  # the new one in
    "replace:agent.old:1",  # the same for the agent
    "replace:agent:2",
]
ALL_BOUNDARIES = range(1, 67)
"""Every fsync and rename of a run with ARGS, counted from 1 (66 in all)."""


def _killed_run(tmp_path: Path, boundary: int | str) -> Path:
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", KILLER, str(boundary), "train", "--out", str(out), *ARGS],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return out


def _check_resume_finishes(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(out), "--quiet"]) == 0, capsys.readouterr().err
    run = RunDir.open(out)
    note = run.finished()
    assert note is not None and note["steps"] >= 1024 and note["judgments"] == 10
    steps = [row["step"] for row in read_metrics(run.metrics)]
    assert steps == sorted(set(steps)) and steps[-1] >= 1024
    with PreferenceStore(run.store) as store:
        assert store.n_judgments() == 10 and store.n_queries() == 10
    leftovers = [p.name for p in out.iterdir() if p.name.endswith((".new", ".old", ".tmp"))]
    assert leftovers == []
    assert main(["eval", str(out), "--episodes", "2"]) == 0


@pytest.mark.parametrize("boundary", KILL_AT)
def test_a_kill_inside_a_checkpoint_write_is_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], boundary: str
) -> None:
    _check_resume_finishes(_killed_run(tmp_path, boundary), capsys)


@pytest.mark.slow
@pytest.mark.parametrize("boundary", ALL_BOUNDARIES)
def test_a_kill_at_any_write_boundary_is_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], boundary: int
) -> None:
    out = _killed_run(tmp_path, boundary)
    if not (out / "config.json").exists():  # killed before the run existed: start it again
        assert main(["train", "--out", str(out), *ARGS]) == 0
    _check_resume_finishes(out, capsys)


def test_a_second_trainer_on_a_live_run_is_refused_with_the_pid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "prefgym.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [*command, "train", "--out", str(out), "--steps", "1000000", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        lock = out / "trainer.lock"
        while not (lock.exists() and f"pid {first.pid}" in lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = subprocess.run(
            [*command, "train", "--resume", str(out), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 1  # not bad input: the run is busy
        assert second.stderr.startswith(f"prefgym: error: run {out} is being trained by pid ")
        assert f"pid {first.pid} on " in second.stderr and second.stderr.count("\n") == 1
    finally:
        first.kill()
        first.wait()
    with RunDir.open(out).trainer_lock():  # the killed trainer's lock is taken over
        pass
