"""A sweep's grid: expansion into named trials, the baseline, and bad grids named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.sweeps import SweepSpec, expand, read_grid_file, seed_list
from prefgym.sweeps.config import TRUE_REWARD, grid_fields


def test_the_issue_s_grid_expands_to_every_combination_and_one_baseline_per_task_and_seed() -> None:
    spec = SweepSpec(
        grid={
            "env_id": ["prefgym/CartPole-v1", "prefgym/Acrobot-v1"],
            "oracle": ["oracle", "mistake", "stoc"],
            "labels": [50, 100, 200],
        },
        seeds=seed_list(10),
        baseline="true-reward",
    )
    trials = expand(spec)
    preference = [t for t in trials if t.kind == "preference"]
    baselines = [t for t in trials if t.kind == TRUE_REWARD]
    assert len(preference) == 2 * 3 * 3 * 10
    assert len(baselines) == 2 * 10  # oracle and labels do not change a true-reward run
    assert len({t.name for t in trials}) == len(trials)
    one = next(t for t in preference if t.name == "CartPole-v1.oracle-mistake.labels-100.seed-3")
    assert (one.settings["oracle"], one.settings["labels"], one.seed) == ("mistake", 100, 3)
    assert one.configuration() == "oracle=mistake labels=100"
    base = next(t for t in baselines if t.name == "Acrobot-v1.true-reward.seed-7")
    assert base.settings["reward"] == "true" and base.settings["seed"] == 7
    assert base.configuration() == TRUE_REWARD
    assert base.settings["steps"] == one.settings["steps"]  # same steps, agent and seed


def test_fields_that_change_the_agent_give_their_own_baselines() -> None:
    spec = SweepSpec(
        grid={"env_id": ["prefgym/CartPole-v1"], "steps": [10_000, 20_000], "labels": [10, 20]},
        seeds=[0, 1],
        baseline="true-reward",
    )
    baselines = [t for t in expand(spec) if t.kind == TRUE_REWARD]
    assert sorted(t.name for t in baselines) == [
        "CartPole-v1.true-reward.steps-10000.seed-0",
        "CartPole-v1.true-reward.steps-10000.seed-1",
        "CartPole-v1.true-reward.steps-20000.seed-0",
        "CartPole-v1.true-reward.steps-20000.seed-1",
    ]


def test_an_unknown_field_gets_did_you_mean() -> None:
    with pytest.raises(
        ValueError, match=r"unknown control setting 'lables'.*did you mean 'labels'"
    ):
        SweepSpec(grid={"lables": [10]}, seeds=[0])


def test_a_field_without_values_a_bad_seed_count_and_an_impossible_run_are_named() -> None:
    with pytest.raises(ValueError, match=r"grid field 'labels' has no values"):
        SweepSpec(grid={"labels": []}, seeds=[0])
    with pytest.raises(ValueError, match=r"--seeds must be a count >= 1.*got -3"):
        seed_list(-3)
    with pytest.raises(ValueError, match=r"--seeds must be a count >= 1.*got 0"):
        seed_list(0)
    with pytest.raises(ValueError, match="seed"):
        SweepSpec(grid={}, seeds=[])
    spec = SweepSpec(grid={"algo": ["sac"]}, seeds=[0])  # SAC needs continuous actions
    with pytest.raises(ValueError, match=r"algo='sac'.*continuous.*fix the grid"):
        expand(spec)
    with pytest.raises(ValueError, match="give the seeds with --seeds"):
        SweepSpec(grid={"seed": [1, 2]}, seeds=[0])


def test_text_sweeps_name_nested_fields_dotted() -> None:
    assert "ppo.learning_rate" in grid_fields("text") or any(
        f.startswith("ppo.") for f in grid_fields("text")
    )
    field = next(f for f in grid_fields("text") if f.startswith("ppo."))
    default = expand(SweepSpec(grid={}, seeds=[0], kind="text"))[0].settings["ppo"][
        field.split(".")[1]
    ]
    other = (
        default * 2
        if isinstance(default, (int, float)) and not isinstance(default, bool)
        else default
    )
    spec = SweepSpec(
        grid={"algo": ["ppo", "grpo"], field: [default, other]}, seeds=[0], kind="text"
    )
    trials = expand(spec)
    assert len(trials) == 4 and all(t.kind == "text" for t in trials)
    assert {t.settings["ppo"][field.split(".")[1]] for t in trials} == {default, other}
    with pytest.raises(ValueError, match="unknown text setting 'steps'"):
        SweepSpec(grid={"steps": [100]}, seeds=[0], kind="text")
    with pytest.raises(ValueError, match="no true-reward baseline"):
        SweepSpec(grid={}, seeds=[0], kind="text", baseline="true-reward")


def test_grid_files_in_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "grid.toml"
    toml.write_text(
        'seeds = 3\nbaseline = "true-reward"\n[grid]\n'
        'env_id = ["prefgym/CartPole-v1"]\noracle = ["oracle", "mistake"]\nsteps = 20000\n'
    )
    spec = SweepSpec(**read_grid_file(toml))
    assert spec.seeds == [0, 1, 2] and spec.grid["steps"] == [20000]
    assert len(expand(spec)) == 2 * 3 + 3
    yaml = tmp_path / "grid.yaml"
    yaml.write_text("seeds: [4, 5]\ngrid:\n  labels: [10, 20]\n")
    spec = SweepSpec(**read_grid_file(yaml))
    assert spec.seeds == [4, 5] and len(expand(spec)) == 4
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = 3\n")
    with pytest.raises(ValueError, match=r"unknown key 'seed'.*did you mean 'seeds'"):
        read_grid_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[grid\n")
    with pytest.raises(ValueError, match="does not parse"):
        read_grid_file(broken)
    with pytest.raises(ValueError, match="must end in .toml"):
        read_grid_file(tmp_path / "grid.json")


def test_baselines_of_other_settings_are_other_rows_and_reward_is_not_a_grid_field() -> None:
    spec = SweepSpec(grid={"steps": [5000, 10_000]}, seeds=[0], baseline="true-reward")
    labels = sorted(t.configuration() for t in expand(spec) if t.kind == TRUE_REWARD)
    assert labels == ["true-reward steps=10000", "true-reward steps=5000"]
    with pytest.raises(ValueError, match="add it with --baseline true-reward"):
        SweepSpec(grid={"reward": ["true"]}, seeds=[0])


def test_two_trials_that_would_share_a_name_are_refused() -> None:
    spec = SweepSpec(grid={"labeler": ["a b", "a_b"], "oracle": ["human"]}, seeds=[0])
    with pytest.raises(ValueError, match="would both be named"):
        expand(spec)


def test_nested_toml_tables_and_oracle_specs_with_commas(tmp_path: Path) -> None:
    from prefgym.sweeps.config import split_values

    grid = tmp_path / "text.toml"
    grid.write_text('kind = "text"\n[grid]\nppo.lr = [1e-5, 3e-5]\n')
    assert SweepSpec(**read_grid_file(grid)).grid == {"ppo.lr": [1e-5, 3e-5]}
    assert split_values("oracle,mistake,eps_mistake=0.2,stoc") == [
        "oracle",
        "mistake,eps_mistake=0.2",
        "stoc",
    ]
