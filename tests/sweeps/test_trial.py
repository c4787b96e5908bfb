"""One trial as a worker runs it, without Ray: trained once, resumed, never retrained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefgym.runs import RunDir, read_metrics
from prefgym.sweeps import SweepDir, SweepSpec
from prefgym.sweeps._trial import run_trial


@pytest.fixture
def sweep(tmp_path: Path) -> SweepDir:
    spec = SweepSpec(
        grid={"steps": [1024], "round_steps": [512], "labels": [8]}, seeds=[0], episodes=2
    )
    return SweepDir.create(tmp_path / "s", spec)


class Stop(Exception):
    """Stands for a crash after the first round."""


def test_a_trial_reports_each_round_then_its_result_and_is_not_trained_twice(
    sweep: SweepDir,
) -> None:
    name = sweep.trials()[0].name
    reports: list[dict[str, Any]] = []
    result = run_trial(str(sweep.path), name, reports.append)
    assert [r["round"] for r in reports[:-1]] == [1.0, 2.0]
    assert reports[-1] == {
        "done": 1,
        "score": result.score,
        "score_std": result.score_std,
        "train_seconds": result.train_seconds,
    }
    assert sweep.result(name) == result and result.judgments == 8 and result.steps >= 1024
    metrics = sweep.trial_path(name) / "metrics.csv"
    stamp = metrics.stat().st_mtime_ns
    again: list[dict[str, Any]] = []
    assert run_trial(str(sweep.path), name, again.append) == result
    assert again == [{**reports[-1], "resumed": 1}] and metrics.stat().st_mtime_ns == stamp


def test_a_crashed_trial_records_its_error_and_carries_its_run_on(sweep: SweepDir) -> None:
    name = sweep.trials()[0].name

    def crash_after_the_first_round(row: dict[str, Any]) -> None:
        raise Stop("the machine went away")

    with pytest.raises(Stop):
        run_trial(str(sweep.path), name, crash_after_the_first_round)
    assert sweep.error(name) == "Stop: the machine went away"
    first = read_metrics(RunDir.open(sweep.trial_path(name)).metrics)
    assert [r["round"] for r in first] == [1.0]
    result = run_trial(str(sweep.path), name, lambda row: None)
    rows = read_metrics(RunDir.open(sweep.trial_path(name)).metrics)
    assert json.dumps(rows[0]) == json.dumps(first[0])  # the first round was kept, not redone
    assert [r["round"] for r in rows] == [1.0, 2.0]
    assert sweep.error(name) is None and sweep.result(name) == result
    spent = json.loads((sweep.trial_path(name) / "trial_seconds.json").read_text())
    assert result.train_seconds == spent["wall_seconds"] > 0  # both attempts are counted


def test_a_text_trial_is_a_text_run_scored_by_its_final_true_score(tmp_path: Path) -> None:
    spec = SweepSpec(
        grid={
            "algo": ["dpo"],
            "labels": [32],
            "label_rounds": [1],
            "iterations": [1],
            "eval_prompts": [16],
            "eval_every": [1],
            "dpo.batch_size": [16],
        },
        seeds=[0],
        kind="text",
    )
    sweep = SweepDir.create(tmp_path / "text", spec)
    [trial] = sweep.trials()
    reports: list[dict[str, Any]] = []
    result = run_trial(str(sweep.path), trial.name, reports.append)
    run = RunDir.open(sweep.trial_path(trial.name))
    final = json.loads((run.path / "final.json").read_text())
    assert run.text_config().algo == "dpo" and run.finished() is not None
    assert result.score == final["true_score"] and result.judgments == 32
    assert reports[-1]["done"] == 1 and any("true_score" in r for r in reports[:-1])
    assert result.train_seconds > 0 and result.cpu_seconds > 0
