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
from prefgym.files import write_atomic
from prefgym.sweeps._sweep_dir import ERROR_FILE, SweepDir, TrialResult
from prefgym.sweeps.config import TEXT, Trial

EVAL_SEED = 10_000
"""Seed of the first evaluation episode (as ``prefgym eval``'s default)."""
LOCK_PATIENCE = 120.0
"""Seconds a trial waits for a run still held by a worker of a killed sweep to be let go."""

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
    path = sweep.trial_path(name)
    try:
        result = _with_patience(lambda: _train(trial, path, report, sweep.spec().episodes))
    except BaseException as error:
        path.mkdir(parents=True, exist_ok=True)
        write_atomic(path / ERROR_FILE, f"{type(error).__name__}: {error}".splitlines()[0] + "\n")
        raise
    sweep.write_result(result)
    (path / ERROR_FILE).unlink(missing_ok=True)
    report(_final(result))
    return result


def _final(result: TrialResult) -> dict[str, Any]:
    return {
        "done": 1,
        "score": result.score,
        "score_std": result.score_std,
        "train_seconds": result.train_seconds,
    }


def _with_patience(work: Callable[[], TrialResult]) -> TrialResult:
    """``work()``, waiting while another process (a killed sweep's worker) holds the run."""
    deadline = time.monotonic() + LOCK_PATIENCE
    while True:
        try:
            return work()
        except RunInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def _train(trial: Trial, path: Path, report: Report, episodes: int) -> TrialResult:
    from prefgym.runs import (
        RunDir,
        evaluate,
        read_metrics,
        resume,
        resume_text,
        train,
        train_text,
    )
    from prefgym.runs.config import TextTrainConfig, TrainConfig

    config = trial.config()
    started = (path / "config.json").exists()
    if trial.kind == TEXT:
        assert isinstance(config, TextTrainConfig)
        if started:
            final = resume_text(path, progress=False, on_round=report)
        else:
            final = train_text(config, path, progress=False, on_round=report)
        rows = read_metrics(RunDir.open(path).metrics)
        return TrialResult(
            name=trial.name,
            score=float(final["true_score"]),
            score_std=0.0,
            train_seconds=_seconds(rows),
            steps=int(max((r.get("iteration", 0.0) for r in rows), default=0.0)),
            judgments=int(max((r.get("labels_judged", 0.0) for r in rows), default=0.0)),
        )
    assert isinstance(config, TrainConfig)
    if started:
        run = resume(path, show_progress=False, on_round=report)
    else:
        run = train(config, path, show_progress=False, on_round=report)
    score = evaluate(run, episodes=episodes, seed=EVAL_SEED)
    rows = read_metrics(run.metrics)
    return TrialResult(
        name=trial.name,
        score=float(score["true_return_mean"]),
        score_std=float(score["true_return_std"]),
        train_seconds=_seconds(rows),
        steps=int(max((r.get("step", 0.0) for r in rows), default=0.0)),
        judgments=int(max((_finite(r.get("labels_judged")) for r in rows), default=0.0)),
    )


def _seconds(rows: list[dict[str, float]]) -> float:
    """Training seconds in the metrics (a control round's ``seconds``, a text one's parts)."""
    return float(sum(_finite(v) for r in rows for k, v in r.items() if k.startswith("seconds")))


def _finite(value: float | None) -> float:
    return 0.0 if value is None or not math.isfinite(value) else float(value)
