"""``prefgym sweep``: the grid from options and files; bad input in one line, touching nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from prefgym.cli import main
from prefgym.cli._main import _parser
from prefgym.cli._sweep import spec_from_args
from prefgym.sweeps import SweepDir, SweepSpec, TrialResult, expand


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status = main(argv)
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("prefgym: error: ") and err.count("\n") == 1, err
    return err


def _args(argv: list[str]) -> argparse.Namespace:
    return _parser().parse_args(["sweep", *argv])


def test_the_issue_s_command_line_is_the_grid_it_names() -> None:
    args = _args(
        "--env prefgym/CartPole-v1 prefgym/Acrobot-v1 --oracle oracle mistake stoc "
        "--labels 50 100 200 --seeds 10 --baseline true-reward --out sweeps/cp".split()
    )
    spec = spec_from_args(args)
    assert spec.grid == {
        "env_id": ["prefgym/CartPole-v1", "prefgym/Acrobot-v1"],
        "oracle": ["oracle", "mistake", "stoc"],
        "labels": [50, 100, 200],
    }
    assert spec.seeds == list(range(10)) and spec.baseline == "true-reward"
    assert len(expand(spec)) == 180 + 20


def test_grid_options_files_and_seed_lists_combine(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('seeds = 2\ncpus_per_trial = 2\n[grid]\noracle = ["oracle", "mistake"]\n')
    spec = spec_from_args(
        _args(["--file", str(grid), "--oracle", "stoc", "--grid", "members=3,5", "rollout_envs=8"])
    )
    assert spec.grid == {"oracle": ["stoc"], "members": [3, 5], "rollout_envs": [8]}
    assert spec.seeds == [0, 1] and spec.cpus_per_trial == 2.0 and spec.threads == 2
    spec = spec_from_args(_args(["--seed-list", "3", "7", "--text", "--algo", "ppo", "dpo"]))
    assert spec.kind == "text" and spec.seeds == [3, 7] and spec.grid == {"algo": ["ppo", "dpo"]}


def test_an_unknown_field_gets_did_you_mean(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = _error(["sweep", "--grid", "lables=10,20", "--out", str(tmp_path / "s")], capsys)
    assert "unknown control setting 'lables' in the sweep grid; did you mean 'labels'" in err
    assert not (tmp_path / "s").exists()


def test_zero_trials_negative_seeds_and_no_out_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    grid = tmp_path / "empty.toml"
    grid.write_text("[grid]\nlabels = []\n")
    err = _error(["sweep", "--file", str(grid), "--out", str(tmp_path / "s")], capsys)
    assert "grid field 'labels' has no values" in err
    err = _error(["sweep", "--seeds", "-2", "--out", str(tmp_path / "s")], capsys)
    assert "--seeds must be a count >= 1" in err and "-2" in err
    assert "needs --out DIR" in _error(["sweep", "--labels", "10"], capsys)
    assert not (tmp_path / "s").exists()


def test_an_unreachable_address_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = _error(["sweep", "--address", "127.0.0.1:1", "--out", str(tmp_path / "s")], capsys)
    assert "cannot reach a Ray cluster at --address '127.0.0.1:1'" in err
    assert not (tmp_path / "s").exists()


def test_resuming_a_directory_that_is_not_a_sweep_touches_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"train": {}}')
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*")}
    err = _error(["sweep", "--resume", str(run)], capsys)
    assert f"{run} is not a prefgym sweep (has no sweep.json)" in err
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*")} == before
    sweep = SweepDir.create(tmp_path / "s", SweepSpec(grid={}, seeds=[0]))
    err = _error(["sweep", "--resume", str(sweep.path), "--labels", "10"], capsys)
    assert "--resume takes the grid from" in err and "--labels" in err


def test_report_and_compare_read_a_sweep(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sweep = SweepDir.create(tmp_path / "s", SweepSpec(grid={"labels": [10, 20]}, seeds=[0, 1, 2]))
    for trial in sweep.trials():
        sweep.trial_path(trial.name).mkdir(parents=True)
        score = 100.0 * trial.settings["labels"] + trial.seed
        sweep.write_result(TrialResult(trial.name, score, 0.0, 1.0, 100, 10))
    assert main(["report", str(sweep.path)]) == 0
    out = capsys.readouterr().out
    assert "true return (no baseline: raw)" in out and "labels=20" in out and "IQM" in out
    assert main(["sweep", "compare", f"{sweep.path}:labels=20", f"{sweep.path}:labels=10"]) == 0
    assert capsys.readouterr().out.startswith(
        f"P({sweep.path}:labels=20 > {sweep.path}:labels=10) = 1 ["
    )


def test_grid_file_values_are_checked_for_their_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('cpus_per_trial = "2"\n')
    err = _error(["sweep", "--file", str(grid), "--out", str(tmp_path / "s")], capsys)
    assert "cpus_per_trial must be a number" in err and str(grid) in err
    grid.write_text("max_failures = 1.5\n")
    assert "max_failures must be an integer" in _error(
        ["sweep", "--file", str(grid), "--out", str(tmp_path / "s")], capsys
    )


def test_an_oracle_spec_with_commas_is_one_grid_value() -> None:
    spec = spec_from_args(_args(["--grid", "oracle=oracle,mistake,eps_mistake=0.2"]))
    assert spec.grid == {"oracle": ["oracle", "mistake,eps_mistake=0.2"]}
    assert len(expand(spec)) == 2


def test_resources_a_ray_cannot_grant_are_refused() -> None:
    from prefgym.sweeps._tune import _check_resources

    with pytest.raises(ValueError, match=r"--cpus-per-trial 4 is more than the 2 CPUs"):
        _check_resources(SweepSpec(cpus_per_trial=4), {"CPU": 2.0})
    with pytest.raises(ValueError, match=r"--gpus-per-trial 1 is more than the 0 GPUs"):
        _check_resources(SweepSpec(gpus_per_trial=1), {"CPU": 2.0})
    _check_resources(SweepSpec(cpus_per_trial=2), {"CPU": 2.0})
