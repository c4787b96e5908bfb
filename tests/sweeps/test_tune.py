"""Sweeps on a real local Ray: every trial an ordinary run, a kill -9 of the driver resumed."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from prefgym.runs import RunDir, evaluate, read_metrics
from prefgym.sweeps import SweepDir, SweepSpec, pending_trials, resume_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[2]


def test_every_trial_of_a_sweep_is_a_finished_run_directory(finished_sweep: Path) -> None:
    sweep = SweepDir.open(finished_sweep)
    trials = sweep.trials()
    assert len(trials) == 8  # 2 envs x 2 seeds, and the true-reward baseline of each
    for trial in trials:
        run = RunDir.open(sweep.trial_path(trial.name))
        config = run.train_config()
        assert config.seed == trial.seed and config.env_id == trial.task
        assert config.reward == ("true" if trial.kind == "true-reward" else "learned")
        assert run.finished() is not None
        rows = read_metrics(run.metrics)
        assert rows and rows[-1]["step"] >= 1024
        result = sweep.result(trial.name)
        assert result is not None and result.steps == rows[-1]["step"]
        if trial.kind == "preference":
            assert result.judgments == 8
    one = next(t for t in trials if t.kind == "preference" and "CartPole" in t.name)
    again = evaluate(sweep.trial_path(one.name), episodes=2, seed=10_000)  # `prefgym eval` works
    assert again["true_return_mean"] == pytest.approx(sweep.result(one.name).score)  # type: ignore[union-attr]
    assert pending_trials(sweep) == []


def test_progress_says_each_trial_s_state_with_counts_and_an_eta(finished_sweep: Path) -> None:
    lines = (finished_sweep / "progress.txt").read_text().splitlines()
    assert lines[0].startswith("[") and "8 trials" in lines[0]
    assert sum(": running" in line for line in lines) == 8
    assert sum(": done, score" in line for line in lines) == 8
    assert any("ETA" in line and "s a trial" in line for line in lines)
    assert "[8 done, 0 running, 0 pending, 0 failed]" in lines[-1]
    assert "sweep finished in" in lines[-1]


def test_a_finished_sweep_resumed_runs_nothing(finished_sweep: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in finished_sweep.rglob("result.json")}
    out = io.StringIO()
    resume_sweep(finished_sweep, stream=out)
    assert "8 trials (8 finished before)" in out.getvalue()
    assert {p: p.stat().st_mtime_ns for p in finished_sweep.rglob("result.json")} == before


def test_a_crashing_trial_is_retried_and_reported(ray_cluster: None, tmp_path: Path) -> None:
    spec = SweepSpec(
        grid={"env_id": ["prefgym/CartPole-v1"], "steps": [512], "round_steps": [512]},
        seeds=[0],
        max_failures=1,
        episodes=1,
    )
    sweep = SweepDir.create(tmp_path / "crash", spec)
    name = sweep.trials()[0].name
    store = sweep.trial_path(name) / "store.sqlite"
    store.parent.mkdir(parents=True)
    (store.parent / "config.json").write_text("{not json")  # every attempt fails on it
    lines = io.StringIO()
    resume_sweep(sweep.path, stream=lines)
    text = lines.getvalue()
    assert "will retry" in text and ": failed:" in text
    assert "config" in (sweep.error(name) or "")
    assert sweep.result(name) is None and "1 failed" in text.splitlines()[-1]


def _results(path: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in path.glob("trials/*/result.json")}


def _session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid``: the killed driver's Ray workers until they end."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.timeout(900)
def test_a_sweep_killed_with_kill_9_resumes_without_running_a_trial_twice(tmp_path: Path) -> None:
    """The driver is killed mid-sweep; ``--resume`` finishes every trial, none retrained."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    temp = Path(tempfile.mkdtemp(prefix="pgray", dir="/tmp"))  # short: Ray's socket paths
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(temp), "OMP_NUM_THREADS": "1"}
    env["MPLCONFIGDIR"] = str(temp / "matplotlib")  # matplotlib's font cache is not Ray's
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "prefgym.cli", "sweep", "--env", "prefgym/CartPole-v1"]
    command += ["--steps", "3072", "--round-steps", "512", "--labels", "8", "--seeds", "4"]
    command += ["--episodes", "2", "--num-cpus", "2", "--out", str(out)]
    driver = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        start_new_session=True,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 400
    interrupted: list[Path] = []
    while time.monotonic() < deadline:
        finished = _results(out)
        interrupted = [
            p.parent
            for p in out.glob("trials/*/metrics.csv")
            if not (p.parent / "result.json").exists() and read_metrics(p)
        ]
        if finished and interrupted:
            break
        assert driver.poll() is None, driver.communicate()[0]
        time.sleep(0.2)
    assert finished and interrupted, "no trial finished while another was mid-run"
    os.kill(driver.pid, signal.SIGKILL)  # the driver only, as a crash would
    driver.wait()
    deadline = time.monotonic() + 120  # a trial may still write its result until Ray ends it
    while _session_processes(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_processes(driver.pid) == [], "Ray processes outlived the killed driver"
    before = _results(out)
    assert len(before) < 4, "every trial finished before the driver's kill took effect"
    kept_rows = {
        p.name: read_metrics(p / "metrics.csv") for p in interrupted if p.name not in before
    }
    time.sleep(1.0)

    resumed = subprocess.run(
        [sys.executable, "-m", "prefgym.cli", "sweep", "--resume", str(out), "--num-cpus", "2"],
        cwd=work,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"4 trials ({len(before)} finished before)" in resumed.stderr
    after = _results(out)
    assert len(after) == 4
    for name, stamp in before.items():  # finished trials were not run again
        assert after[name] == stamp
    for name, rows in kept_rows.items():  # interrupted ones kept their finished rounds
        now = read_metrics(out / "trials" / name / "metrics.csv")
        assert json.dumps(now[: len(rows) - 1]) == json.dumps(rows[: len(rows) - 1])  # NaN-safe
        assert now[-1]["step"] >= 3072
    assert "IQM" in resumed.stdout
    assert list(work.iterdir()) == [] and list(home.iterdir()) == []  # nothing outside
    subprocess.run(["rm", "-rf", str(temp)], check=False)


def test_an_address_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    spec = SweepSpec(grid={}, seeds=[0])
    with pytest.raises(ValueError, match=r"cannot reach a Ray cluster at --address '127.0.0.1:1'"):
        run_sweep(spec, tmp_path / "s", address="127.0.0.1:1")
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        run_sweep(spec, tmp_path / "s", address="nowhere")
    assert json.dumps(spec.to_json())  # the spec is plain JSON
