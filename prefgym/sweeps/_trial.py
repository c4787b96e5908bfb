"""One trial, as a Ray worker runs it: an ordinary run directory, trained, resumed, scored.

A trial's run directory is made by ``prefgym train`` (or ``prefgym text train``)
machinery, so ``prefgym report``/``eval``/``--resume`` work on it. A retried or
resumed trial carries its run on from the last round (never from scratch), and a
trial whose run finished is only scored, so no trial trains twice to completion.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefgym.errors import RunInUse
from prefgym.files import read_json_object, write_atomic, write_json
from prefgym.sweeps._sweep_dir import ERROR_FILE, SweepDir, TrialResult
from prefgym.sweeps.config import TEXT, Trial

EVAL_SEED = 10_000
"""Seed of the first evaluation episode (as ``prefgym eval``'s default)."""
LOCK_PATIENCE = 120.0
"""Seconds a trial waits for a run still held by a worker of a killed sweep to be let go."""

SPENT_FILE = "trial_seconds.json"
"""The wall and CPU seconds a trial's training attempts took, in its run directory."""
FINAL_FILE = "final.json"
"""A text run's final evaluation."""

Report = Callable[[dict[str, Any]], None]


def run_trial(sweep_path: str, name: str, report: Report, threads: int = 1) -> TrialResult:
    """Train (or carry on) trial ``name`` of the sweep in ``sweep_path`` and score it.

    Args:
        sweep_path: The sweep directory.
        name: The trial.
        report: Called with each round's metrics (and the final result, ``done=1``).
        threads: Torch threads.

    Returns:
        The trial's result, also written to its run directory.
    """
    from prefgym.runs import set_threads

    sweep = SweepDir(Path(sweep_path))
    done = sweep.result(name)
    if done is not None:  # finished before a crash of the sweep: not trained again
        report({**_final(done), "resumed": 1})
        return done
    trial = {t.name: t for t in sweep.trials()}[name]
    set_threads(threads)
    _warm_up(control=trial.kind != TEXT)
    path = sweep.trial_path(name)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        _with_patience(lambda: _train(trial, path, report))
    except BaseException as error:
        path.mkdir(parents=True, exist_ok=True)
        write_atomic(path / ERROR_FILE, f"{type(error).__name__}: {error}".splitlines()[0] + "\n")
        _spend(path, time.perf_counter() - wall, time.process_time() - cpu)
        raise
    spent = _spend(path, time.perf_counter() - wall, time.process_time() - cpu)
    result = _score(trial, path, sweep.spec().episodes, spent)
    sweep.write_result(result)
    (path / ERROR_FILE).unlink(missing_ok=True)
    report(_final(result))
    return result


def _warm_up(*, control: bool) -> None:
    """Pay a fresh worker's one-time imports before the clock starts.

    Stable-Baselines3 (for a control trial), and ``torch._dynamo``, which the first
    optimiser a process builds imports: every trial runs in a new worker, so each would
    carry them in its training time.
    """
    import torch

    if control:
        import stable_baselines3  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _final(result: TrialResult) -> dict[str, Any]:
    return {
        "done": 1,
        "score": result.score,
        "score_std": result.score_std,
        "train_seconds": result.train_seconds,
    }


def _spend(path: Path, wall: float, cpu: float) -> tuple[float, float]:
    """Add an attempt's training time to the trial's account; returns the totals.

    An attempt killed outright (``kill -9``) cannot write its time: the account then
    holds the attempts that ended, a crash included.
    """
    file = path / SPENT_FILE
    total_wall, total_cpu = 0.0, 0.0
    if file.is_file():
        try:
            data = read_json_object(file, "the trial's training time")
            total_wall, total_cpu = float(data["wall_seconds"]), float(data["cpu_seconds"])
        except (ValueError, KeyError, TypeError):
            pass  # a damaged account restarts; it holds only timings
    total_wall, total_cpu = total_wall + wall, total_cpu + cpu
    if path.is_dir():
        write_json(file, {"wall_seconds": total_wall, "cpu_seconds": total_cpu})
    return total_wall, total_cpu


def _with_patience(work: Callable[[], None]) -> None:
    """``work()``, waiting while another process (a killed sweep's worker) holds the run."""
    deadline = time.monotonic() + LOCK_PATIENCE
    while True:
        try:
            return work()
        except RunInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def _train(trial: Trial, path: Path, report: Report) -> None:
    """Train the trial's run: start it, or carry it on from its last round."""
    from prefgym.runs import resume, resume_text, train, train_text
    from prefgym.runs.config import TextTrainConfig

    config = trial.config()
    started = (path / "config.json").exists()
    if isinstance(config, TextTrainConfig):
        if started:
            resume_text(path, progress=False, on_round=report)
        else:
            train_text(config, path, progress=False, on_round=report)
        return
    if started:
        resume(path, show_progress=False, on_round=report)
    else:
        train(config, path, show_progress=False, on_round=report)


def _score(trial: Trial, path: Path, episodes: int, spent: tuple[float, float]) -> TrialResult:
    """The finished run's score (its policy's true return, a text run's true score) and cost."""
    from prefgym.runs import RunDir, evaluate, read_metrics

    run = RunDir.open(path)
    rows = read_metrics(run.metrics)
    wall, cpu = spent
    if trial.kind == TEXT:
        final = read_json_object(path / FINAL_FILE, "the text run's final result")
        score, std = float(final["true_score"]), 0.0
        steps = max((r.get("iteration", 0.0) for r in rows), default=0.0)
    else:
        result = evaluate(run, episodes=episodes, seed=EVAL_SEED)
        score, std = float(result["true_return_mean"]), float(result["true_return_std"])
        steps = max((r.get("step", 0.0) for r in rows), default=0.0)
    judged = max((_finite(r.get("labels_judged")) for r in rows), default=0.0)
    return TrialResult(trial.name, score, std, wall, int(steps), int(judged), cpu)


def _finite(value: float | None) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)
