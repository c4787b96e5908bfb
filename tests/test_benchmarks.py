import importlib.util
import math
import subprocess
import sys
import time
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


def test_ratio_plain_and_against_random(label_efficiency):
    assert label_efficiency.ratio(450.0, 500.0, 280.0, "plain") == pytest.approx(0.9)
    # Pendulum-like: random -1200, PPO -200, ours -300 -> 900 / 1000 of the improvement
    assert label_efficiency.ratio(-300.0, -200.0, -1200.0, "vs random") == pytest.approx(0.9)
    assert math.isnan(label_efficiency.ratio(-500.0, -500.0, -500.0, "vs random"))


def test_true_reward_vec_env_pays_the_hidden_reward(label_efficiency):
    from prefgym.agents.sb3 import make_vec_env

    venv = label_efficiency.TrueRewardVecEnv(make_vec_env("prefgym/CartPole-v1", 2, seed=0))
    venv.reset()
    _, rewards, _, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert rewards.tolist() == [info["true_reward"] for info in infos] == [1.0, 1.0]
    venv.close()


def test_cpu_time_counts_work_and_not_waiting(label_efficiency):
    elapsed = label_efficiency.timer()
    time.sleep(0.3)
    busy = time.perf_counter() + 0.1
    while time.perf_counter() < busy:
        pass
    timing = elapsed()
    assert timing.wall_s >= 0.4
    assert 0.05 < timing.cpu_s < 0.3


def test_warm_up_pays_the_first_optimisers_imports_before_timing():
    # a fresh interpreter: this one may have imported torch._dynamo already
    path = str(BENCHMARKS / "label_efficiency.py")
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('le', {path!r})\n"
        "le = sys.modules['le'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(le)\n"
        "import prefgym; prefgym.register_envs()\n"
        "before = 'torch._dynamo' in sys.modules\n"
        "le.warm_up('prefgym/CartPole-v1')\n"
        "print(before, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


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


def test_summary_takes_medians_and_checks_targets(label_efficiency):
    base = {
        "env": "CartPole",
        "oracle": "oracle",
        "labels": 100,
        "steps": 100_000,
        "ratio_basis": "plain",
        "ppo_true_return": 500.0,
        "ppo_true_wall_s": 100.0,
        "peer_return": math.nan,
        "peer_return_ratio": math.nan,
        "peer_wall_s": math.nan,
        "peer_wall_ratio": math.nan,
    }
    rows = [
        dict(
            base,
            seed=s,
            ours_return=r,
            return_ratio=r / 500,
            ours_wall_s=w,
            wall_ratio=w / 100,
            cpu_ratio=c,
        )  # fmt: skip
        for s, r, w, c in [(0, 480.0, 110.0, 1.05), (1, 400.0, 120.0, 1.1), (2, 500.0, 150.0, 1.0)]
    ]
    (entry,) = label_efficiency.summarise(rows)
    assert entry["seeds"] == 3
    assert entry["ours_return"] == 480.0
    assert entry["wall_ratio"] == pytest.approx(1.2)
    assert entry["cpu_ratio"] == pytest.approx(1.05)
    assert math.isnan(entry["peer_cpu_ratio"])  # rows made before CPU time was measured
    lines = label_efficiency.check_targets([entry])
    assert lines[0].startswith("PASS") and ">= 475" in lines[0]
    assert lines[1].startswith("PASS") and "<= 1.3 (CPU-time ratio 1.05)" in lines[1]
    assert len(lines) == 2  # no imitation result, no comparison with it


def test_summary_keeps_runs_with_other_rollout_envs_apart(label_efficiency):
    row = {"env": "Acrobot", "oracle": "oracle", "labels": 200, "steps": 100_000}
    row |= {"ratio_basis": "vs random", "ours_return": -80.0}
    rows = [dict(row, seed=0, rollout_envs=4), dict(row, seed=1, rollout_envs=4)]
    rows += [dict(row, seed=0, rollout_envs=16, ours_return=-90.0)]
    summary = label_efficiency.summarise(rows)
    assert [(e["rollout_envs"], e["seeds"], e["ours_return"]) for e in summary] == [
        (4, 2, -80.0),
        (16, 1, -90.0),
    ]


def test_summary_counts_a_seed_run_twice_once(label_efficiency):
    row = {"env": "Acrobot", "oracle": "oracle", "labels": 200, "steps": 100_000}
    row |= {"ratio_basis": "vs random", "ours_return": -80.0, "rollout_envs": 4}
    rows = [dict(row, seed=0), dict(row, seed=1), dict(row, seed=0, peer_return=-120.0)]
    (entry,) = label_efficiency.summarise(rows)
    assert (entry["seeds"], entry["runs"]) == (2, 3)


def test_merge_summarises_the_results_of_runs_made_apart(label_efficiency, tmp_path, capsys):
    row = {column: "" for column in label_efficiency.COLUMNS}
    row.update(env="Hopper", oracle="oracle", labels="700", steps="300000", ratio_basis="plain")
    for seed, ours in ((0, 3000.0), (1, 2800.0)):
        run = tmp_path / f"seed{seed}"
        run.mkdir()
        values = dict(
            row, seed=seed, ours_return=ours, ppo_true_return=3200.0, return_ratio=ours / 3200,
            ours_wall_s=110.0, ppo_true_wall_s=100.0, wall_ratio=1.1, peer_return="nan",
        )  # fmt: skip
        label_efficiency.write_csv(run / "results.csv", [values], label_efficiency.COLUMNS)
    out = tmp_path / "merged"
    paths = [str(tmp_path / f"seed{s}" / "results.csv") for s in (0, 1)]
    assert label_efficiency.main(["--merge", *paths, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PASS  Hopper/oracle/700 labels/300000 steps: return ratio 0.91 >= 0.9" in printed
    assert (out / "label_efficiency.png").stat().st_size > 0
    assert len((out / "results.csv").read_text().splitlines()) == 3
    with pytest.raises(SystemExit, match="is not a file"):
        label_efficiency.main(["--merge", str(tmp_path / "missing.csv"), "--out", str(out)])


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
