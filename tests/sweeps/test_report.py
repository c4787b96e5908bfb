"""``prefgym report SWEEP``: normalised scores by hand, tables with CIs, CSV, comparisons."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from prefgym.sweeps import SweepDir, SweepSpec, TrialResult, compare, sweep_report
from prefgym.sweeps._report import scored_trials

RANDOM = {"prefgym/CartPole-v1": 250.0, "prefgym/Pendulum-v1": -1200.0}
BASELINE = {"prefgym/CartPole-v1": (450.0, 550.0), "prefgym/Pendulum-v1": (-200.0, -200.0)}
"""True-reward returns of seeds 0 and 1: means 500 and -200."""
RETURNS = {
    ("prefgym/CartPole-v1", 10): (300.0, 350.0, 400.0, 250.0),
    ("prefgym/CartPole-v1", 20): (500.0, 480.0, 460.0, 450.0),
    ("prefgym/Pendulum-v1", 10): (-700.0, -900.0, -400.0, -1200.0),
    ("prefgym/Pendulum-v1", 20): (-200.0, -300.0, -250.0, -210.0),
}


def _synthetic(path: Path) -> SweepDir:
    """A sweep whose trials 'finished' with the returns above (nothing is trained)."""
    spec = SweepSpec(
        grid={"env_id": list(RANDOM), "labels": [10, 20]},
        seeds=[0, 1, 2, 3],
        baseline="true-reward",
    )
    sweep = SweepDir.create(path, spec)
    (path / "random_returns.json").write_text(json.dumps(RANDOM))
    for trial in sweep.trials():
        if trial.kind == "true-reward":
            seeds = BASELINE[trial.task] + BASELINE[trial.task]
            score = seeds[trial.seed]
        else:
            score = RETURNS[(trial.task, trial.settings["labels"])][trial.seed]
        sweep.trial_path(trial.name).mkdir(parents=True)
        sweep.write_result(TrialResult(trial.name, score, 1.0, 10.0, 1000, 10))
    return sweep


def test_scores_are_the_improvement_over_random_as_a_fraction_of_the_true_reward_agent_s(
    tmp_path: Path,
) -> None:
    sweep = _synthetic(tmp_path / "s")
    scored, normalised = scored_trials(sweep)
    assert normalised
    by_name = {s.trial.name: s.score for s in scored}
    assert by_name["CartPole-v1.labels-10.seed-0"] == pytest.approx((300 - 250) / (500 - 250))
    assert by_name["Pendulum-v1.labels-20.seed-3"] == pytest.approx((-210 + 1200) / (-200 + 1200))
    assert by_name["CartPole-v1.true-reward.seed-1"] == pytest.approx((550 - 250) / 250)


def test_the_report_prints_iqm_mean_and_median_with_cis_and_writes_csv(tmp_path: Path) -> None:
    sweep = _synthetic(tmp_path / "s")
    text = sweep_report(sweep.path, reps=300)
    cart = np.array([300.0, 350.0, 400.0, 250.0])
    scores = (cart - 250) / 250  # 0.2, 0.4, 0.6, 0.0
    iqm = np.mean(np.sort(scores)[1:3])  # 0.3
    row = next(line for line in text.splitlines() if "CartPole-v1" in line and "labels=10" in line)
    assert f"{iqm:.3g} [" in row and row.count("[") == 3  # IQM, mean, median with their CIs
    assert "all 2 tasks" in text and "normalised return" in text
    with open(sweep.path / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    cart_row = next(
        r
        for r in summary
        if r["task"] == "prefgym/CartPole-v1" and r["configuration"] == "labels=10"
    )
    assert float(cart_row["iqm"]) == pytest.approx(iqm)
    assert float(cart_row["mean"]) == pytest.approx(scores.mean())
    assert float(cart_row["median"]) == pytest.approx(np.median(scores))
    assert float(cart_row["iqm_low"]) <= iqm <= float(cart_row["iqm_high"])
    with open(sweep.path / "results.csv") as f:
        results = list(csv.DictReader(f))
    assert len(results) == 2 * 2 * 4 + 2 * 4 and {r["status"] for r in results} == {"done"}
    base = next(r for r in results if r["kind"] == "true-reward")
    assert base["labels"] == ""  # a baseline's label budget is not one it used


def test_labels_to_reach_90_percent(tmp_path: Path) -> None:
    text = sweep_report(_synthetic(tmp_path / "s").path, reps=300)
    section = text.split("labels to reach 90%")[1].split("\n\n")[0]
    # CartPole at 20 labels: (500, 480, 460, 450) -> 1.0, 0.92, 0.84, 0.8: IQM 0.88 < 0.9
    assert "prefgym/CartPole-v1" in section and "> 20" in section.split("Pendulum")[0]
    # Pendulum at 20 labels: 1.0, 0.9, 0.95, 0.99 -> IQM 0.97 >= 0.9
    pendulum = next(line for line in section.splitlines() if "Pendulum" in line)
    assert pendulum.split()[2] == "20"


def test_probability_of_improvement_between_two_configurations(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "s").path
    text = compare(f"{path}:labels=20", f"{path}:labels=10", reps=300)
    # CartPole: every 20-label run beats every 10-label run (16 of 16 pairs) except
    # 450 vs 400? no: 450 > 400; Pendulum: -300 vs -400: all 16 pairs too.
    assert text.startswith(f"P({path}:labels=20 > {path}:labels=10) = 1 [")
    assert "over 2 task(s)" in text and "4 and 4 seeds" in text
    with pytest.raises(ValueError, match="did you mean 'labels'"):
        compare(f"{path}:lables=20", f"{path}:labels=10")
    with pytest.raises(ValueError, match="matches no finished trial"):
        compare(f"{path}:labels=30", f"{path}:labels=10")
    baseline = compare(f"{path}:reward=true", f"{path}:labels=20", reps=300)
    assert baseline.startswith("P(")
    with pytest.raises(ValueError, match=r"picks 2 configurations on prefgym/CartPole-v1"):
        compare(f"{path}", f"{path}:labels=10")  # both budgets at once: name one


def test_compare_refuses_normalised_against_raw_scores(tmp_path: Path) -> None:
    normalised = _synthetic(tmp_path / "s").path
    raw = SweepDir.create(tmp_path / "raw", SweepSpec(grid={"labels": [10]}, seeds=[0, 1]))
    for trial in raw.trials():
        raw.trial_path(trial.name).mkdir(parents=True)
        raw.write_result(TrialResult(trial.name, 400.0, 0.0, 1.0, 100, 10))
    with pytest.raises(ValueError, match="scored differently"):
        compare(f"{normalised}:labels=10", f"{raw.path}:labels=10")


def test_a_task_whose_baseline_is_no_better_than_random_is_said_and_left_out(
    tmp_path: Path,
) -> None:
    sweep = _synthetic(tmp_path / "s")
    (sweep.path / "random_returns.json").write_text(
        json.dumps({**RANDOM, "prefgym/Pendulum-v1": -100.0})
    )
    text = sweep_report(sweep.path, reps=200)
    assert "12 finished trial(s) left out (Pendulum-v1.labels-10.seed-0" in text
    assert "true-reward baseline (-200) is no better than random (-100)" in text
    assert not any("Pendulum" in line and "labels=" in line for line in text.splitlines()[:12])
    assert "all 2 tasks" not in text  # one task is left


def test_the_report_of_a_real_tiny_sweep(finished_sweep: Path) -> None:
    text = sweep_report(finished_sweep, reps=200)
    assert text.startswith(f"sweep {finished_sweep}: 8 trials, 8 finished")
    assert "IQM" in text and (finished_sweep / "plots" / "scores.png").is_file()
