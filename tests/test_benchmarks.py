import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def label_efficiency():
    return _load("label_efficiency")


def test_normalised_return_is_the_improvement_over_random_as_a_fraction(label_efficiency):
    assert label_efficiency.normalised(450.0, 500.0, 250.0) == pytest.approx(0.8)
    # Pendulum-like: random -1200, PPO -200, ours -300 -> 900 / 1000 of the improvement
    assert label_efficiency.normalised(-300.0, -200.0, -1200.0) == pytest.approx(0.9)
    assert math.isnan(label_efficiency.normalised(-500.0, -500.0, -500.0))


def test_each_task_is_one_sweep_with_its_true_reward_baseline(label_efficiency):
    from prefgym.sweeps import expand

    spec = label_efficiency.sweep_spec(
        "Acrobot", ["oracle", "mistake"], [200], 100_000, range(10), 4
    )
    trials = expand(spec)
    assert len(trials) == 2 * 10 + 10
    one = next(t for t in trials if t.kind == "preference")
    assert one.settings["segment_length"] == label_efficiency.SEGMENT_LENGTH
    assert one.settings["round_steps"] == label_efficiency.ROUND_STEPS
    assert spec.episodes == label_efficiency.EPISODES


def _synthetic_sweep(label_efficiency, path):
    """A CartPole sweep whose trials 'finished' with fixed numbers (nothing trained)."""
    from prefgym.sweeps import SweepDir, TrialResult

    spec = label_efficiency.sweep_spec("CartPole", ["oracle"], [100], 100_000, [0, 1, 2, 3], 4)
    sweep = SweepDir.create(path, spec)
    (path / "random_returns.json").write_text('{"prefgym/CartPole-v1": 250.0}')
    ours = {0: (480.0, 120.0), 1: (500.0, 110.0), 2: (400.0, 130.0), 3: (500.0, 115.0)}
    for trial in sweep.trials():
        sweep.trial_path(trial.name).mkdir(parents=True)
        if trial.kind == "true-reward":
            result = TrialResult(trial.name, 500.0, 0.0, 100.0, 100_000, 0, 100.0)
        else:
            score, wall = ours[trial.seed]
            result = TrialResult(trial.name, score, 0.0, wall, 100_000, 100, wall)
        sweep.write_result(result)
    return sweep


def test_rows_and_summary_give_iqms_with_cis_and_check_the_targets(label_efficiency, tmp_path):
    sweep = _synthetic_sweep(label_efficiency, tmp_path / "CartPole")
    rows = label_efficiency.rows_of({"CartPole": sweep})
    assert [r["seed"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["score"] == pytest.approx((480 - 250) / 250)
    assert rows[2]["wall_ratio"] == pytest.approx(1.3)
    (entry,) = label_efficiency.summarise(rows)
    scores = sorted((np.array([480.0, 500.0, 400.0, 500.0]) - 250) / 250)
    assert entry["score"] == pytest.approx(np.mean(scores[1:3]))  # IQM of 4: the middle two
    assert entry["score_low"] <= entry["score"] <= entry["score_high"]
    assert entry["wall_ratio"] == pytest.approx(np.mean([1.15, 1.2]))
    assert entry["ours_return"] == 490.0 and entry["seeds"] == 4
    lines = label_efficiency.check_targets([entry])
    assert (
        lines[0] == "PASS  CartPole/oracle/100 labels/100000 steps: median true return 490.0 >= 475"
    )
    assert lines[1].startswith("PASS") and "wall ratio IQM 1.17 [" in lines[1]
    assert "normalised IQM [95% CI]" in label_efficiency.summary_table([entry])


def test_the_benchmark_runs_its_sweep_and_carries_it_on(
    label_efficiency, tmp_path, capsys, ray_cluster
):
    argv = ["--envs", "CartPole", "--oracles", "oracle", "--labels", "8", "--steps", "1024"]
    argv += ["--seeds", "2", "--no-peer", "--num-cpus", "2", "--out", str(tmp_path)]
    assert label_efficiency.main(argv) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out and "IQM over seeds with 95% stratified bootstrap CIs" in out
    with open(tmp_path / "summary.csv") as f:
        assert len(f.read().splitlines()) == 2
    assert label_efficiency.main(argv) == 0  # run again: every trial is there already
    assert "4 trials (4 finished before)" in capsys.readouterr().out


def test_peer_teacher_keeps_what_imitation_can_express(label_efficiency):
    assert label_efficiency.teacher_name(label_efficiency.peer_teacher("oracle")) == "rational"
    assert label_efficiency.teacher_name(label_efficiency.peer_teacher("stoc")) == "beta=1"
    assert label_efficiency.teacher_name(label_efficiency.peer_teacher("mistake")) == "eps=0.1"
    assert label_efficiency.teacher_name(label_efficiency.peer_teacher("myopic")) == "rational"


@pytest.mark.parametrize(
    ("steps", "rollout"), [(100_000, 4096), (100_000, 256), (300_000, 2048), (92_000, 4096)]
)
def test_imitation_trains_its_agent_exactly_as_many_steps_as_ours(label_efficiency, steps, rollout):
    iterations, total = label_efficiency.peer_schedule(steps, rollout)
    per_training, extra = divmod(total, iterations)  # as imitation 1.0.1 splits it
    assert extra == 0 and per_training % rollout == 0  # SB3 rounds nothing up
    assert (iterations + 1) * per_training == math.ceil(steps / rollout) * rollout
    assert 0.75 <= iterations / (steps / label_efficiency.ROUND_STEPS) <= 1.25  # about ours


def test_peer_policy_is_rescored_on_our_task_as_our_own(label_efficiency, tmp_path):
    import torch

    from prefgym.agents.sb3 import evaluate_true_return, make_agent, make_vec_env
    from prefgym.runs import agent_preset

    env_id = "prefgym/CartPole-v1"
    config = agent_preset(env_id, "ppo")
    venv = make_vec_env(env_id, config.n_envs, seed=3)
    model = make_agent(config, venv, seed=3)  # untrained: another seed than the rescore's
    torch.save(model.policy.state_dict(), tmp_path / "policy.pt")
    expected = evaluate_true_return(
        model, env_id, label_efficiency.EPISODES, label_efficiency.EVAL_SEED
    )
    venv.close()
    mean, std = label_efficiency.rescore_peer(env_id, 0, tmp_path / "policy.pt")
    assert (mean, std) == pytest.approx(expected[:2])


def test_peer_venv_is_updated_when_its_package_list_changes(
    label_efficiency, tmp_path, monkeypatch
):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    monkeypatch.setattr(label_efficiency, "PEER_VENV", venv)
    monkeypatch.setattr(label_efficiency, "PEER_STAMP", venv / "stamp.json")
    calls: list[list[str]] = []
    monkeypatch.setattr(
        label_efficiency.subprocess, "run", lambda command, **_: calls.append(command)
    )
    log = tmp_path / "install.log"
    assert label_efficiency.ensure_peer_venv(log) == venv / "bin" / "python"
    installs = [c for c in calls if c[1:4] == ["-m", "pip", "install"]]
    assert len(installs) == len(label_efficiency.PEER_PACKAGES)  # no stamp: brought up to date
    assert not any("venv" in c for c in calls)  # the venv itself was kept
    assert "mujoco" in installs[-1]
    calls.clear()
    label_efficiency.ensure_peer_venv(log)
    assert calls == []  # the stamp matches: nothing to do


@pytest.fixture(scope="module")
def token_ppo_vs_trl():
    return _load("token_ppo_vs_trl")


def test_token_trainers_our_side_takes_the_work_it_should(token_ppo_vs_trl, tmp_path):
    # ours only (no TRL venvs), on a workload small enough to run in seconds
    bench = token_ppo_vs_trl
    w = bench.Workload(
        n_layer=1,
        n_embd=32,
        vocab_size=64,
        n_positions=16,
        prompt_length=4,
        response_length=5,
        ppo_batch_size=8,
        ppo_minibatch_size=4,
        ppo_epochs=2,
        grpo_prompts=2,
        grpo_group_size=3,
        dpo_batch_size=4,
        n_prompts=8,
        n_pairs=8,
        ppo_timed_steps=1,
        grpo_timed_steps=2,
        dpo_timed_steps=2,
    )
    rows, summary = bench.run(bench.TRAINERS, w, tmp_path, repeats=1, peer=False)
    assert [(r["trainer"], r["side"]) for r in rows] == [
        ("ppo", "prefgym"),
        ("grpo", "prefgym"),
        ("dpo", "prefgym"),
    ]
    assert bench.check_equal_work(rows, w) == []
    assert [r["optimizer_steps"] for r in rows] == [4, 2, 2]
    assert [r["tokens"] for r in rows] == [8 * 5, 2 * 2 * 3 * 5, 2 * 2 * 4 * 5]
    assert all(r["tokens_per_s"] > 0 and r["steps_per_s"] > 0 for r in rows)
    assert [e["trainer"] for e in summary] == ["ppo", "grpo", "dpo"]
    assert all(math.isnan(e["tokens_ratio"]) for e in summary)
    assert bench.check_targets(summary) == []
    bench.plot(summary, w, tmp_path / "throughput.png")
    assert (tmp_path / "throughput.png").stat().st_size > 0


def test_token_trainers_summary_takes_medians_and_judges_targets(token_ppo_vs_trl):
    bench = token_ppo_vs_trl

    def row(side, repeat, tokens_per_s, steps_per_s):
        return {
            "trainer": "grpo",
            "side": side,
            "library": "trl 1.16.0" if side == "trl" else "prefgym",
            "repeat": repeat,
            "tokens_per_s": tokens_per_s,
            "steps_per_s": steps_per_s,
            "steps_per_cpu_s": steps_per_s,
            "error": "",
        }

    rows = [row("prefgym", k, t, s) for k, (t, s) in enumerate([(300, 3), (200, 2), (240, 2.4)])]
    rows += [row("trl", k, t, s) for k, (t, s) in enumerate([(100, 1), (200, 2), (180, 1.8)])]
    (entry,) = bench.summarise(rows, ["grpo"])
    assert entry["tokens_ratio"] == pytest.approx(240 / 180)
    assert entry["steps_ratio"] == entry["cpu_ratio"] == pytest.approx(2.4 / 1.8)
    lines = bench.check_targets([entry])
    assert [line.split()[0] for line in lines] == ["PASS", "PASS"]
    assert "1.33 >= 1.2" in lines[0]
