from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from prefgym.loop import LEARNER_STATE
from prefgym.runs import (
    RunDir,
    TrainConfig,
    agent_preset,
    convert_run,
    evaluate,
    read_metrics,
    report,
    resume,
    set_threads,
    train,
)
from prefgym.segments import make_vector_env, random_policy, rollout_segments
from prefgym.store import PreferenceStore
from tests.runs.legacy import CONFIG, legacy_run


def _random_true_return() -> float:
    env = make_vector_env("prefgym/CartPole-v1", 4)
    env.action_space.seed(0)
    segments = rollout_segments(env, random_policy(env.action_space), 4, 500, seed=0)
    return float(np.mean([s.true_return for s in segments]))


def test_cartpole_improves_clearly_from_preferences_alone(short_run: RunDir) -> None:
    trained = evaluate(short_run, episodes=10)["true_return_mean"]
    random = _random_true_return()
    assert trained >= 350, f"trained {trained:.0f} vs random {random:.0f}"
    assert trained >= random + 80


def test_a_run_leaves_its_artifacts_behind(short_run: RunDir) -> None:
    for path in (short_run.config, short_run.store, short_run.agent, short_run.metrics):
        assert path.exists(), path
    assert (short_run.reward_model / "reward_model.safetensors").exists()
    assert any(short_run.tensorboard.iterdir())
    rows = read_metrics(short_run.metrics)
    assert rows[-1]["step"] >= 20_000 and rows[-1]["labels_judged"] == 50
    with PreferenceStore(short_run.store) as store:
        assert store.n_judgments(judge="oracle") == 50


def test_report_prints_tables_and_draws_plots(short_run: RunDir) -> None:
    text = report(short_run)
    assert "true return" in text and "oracle" in text
    for name in ("returns.png", "reward_model.png", "labels.png"):
        png = short_run.plots / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize(("oracle", "target"), [("oracle", 475), ("mistake", 450)])
def test_cartpole_reaches_the_target(tmp_path: Path, oracle: str, target: float) -> None:
    run = train(
        TrainConfig(oracle=oracle, labels=100, steps=100_000),
        tmp_path / oracle,
        show_progress=False,
    )
    assert evaluate(run, episodes=20)["true_return_mean"] >= target


def test_resumes_after_sigkill_without_losing_or_reasking(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "prefgym.cli",
        "train",
        "--steps",
        "12000",
        "--labels",
        "40",
        "--round-steps",
        "2000",
        "--out",
        str(out),
        "--quiet",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(read_metrics(out / "metrics.csv")) < 2:  # killed in the middle of round 3
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with PreferenceStore(out / "store.sqlite") as store:
        before = {j.query_id: j.preference for j in store.judgments()}
    assert 0 < len(before) < 40

    run = resume(out, show_progress=False)
    with PreferenceStore(run.store) as store:
        after = {j.query_id: j.preference for j in store.judgments()}
        pairs = [frozenset(q.segment_ids) for q in store.queries()]
        assert store.n_queries() == 40 == len(after)
    assert all(after[q] == p for q, p in before.items())
    assert len(set(pairs)) == len(pairs)
    assert read_metrics(run.metrics)[-1]["step"] >= 12_000


def test_acrobots_first_fit_takes_min_steps_and_a_resume_keeps_the_count(tmp_path: Path) -> None:
    config = TrainConfig(
        env_id="prefgym/Acrobot-v1", labels=20, steps=8192, round_steps=4096, seed=0
    )
    run = train(config, tmp_path / "run", show_progress=False)
    with PreferenceStore(run.store) as store:
        steps = store.get_meta(LEARNER_STATE)["steps"]
    assert steps >= 200  # the first fit's, then the second fit's own
    rows = read_metrics(run.metrics)
    assert rows[0]["rm_epochs"] >= 200  # a handful of judgments: one Adam step an epoch
    resume(run.path, show_progress=False)  # done already: nothing to add
    with PreferenceStore(run.store) as store:
        assert store.get_meta(LEARNER_STATE)["steps"] == steps


def test_a_crafted_agent_zip_runs_code_when_sb3_opens_it(tmp_path: Path) -> None:
    """What the tests below guard against: SB3's own load runs the planted code."""
    from stable_baselines3 import PPO

    marker = tmp_path / "marker"
    run, _ = legacy_run(tmp_path / "run", marker)
    assert not marker.exists()
    PPO.load(run.legacy_agent)
    assert marker.exists()


def test_a_run_of_an_earlier_release_is_refused_unopened(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run, _ = legacy_run(tmp_path / "run", marker)
    command = f"`prefgym convert {run.path} --trust`"
    for action in (evaluate, lambda path: resume(path, show_progress=False)):
        with pytest.raises(ValueError, match=f"agent.zip is Stable-Baselines3's pickle.*{command}"):
            action(run.path)
    assert f"note: {run.legacy_agent} is Stable-Baselines3's" in report(run.path)
    assert not marker.exists()
    assert not run.agent.exists()


def test_convert_run_keeps_the_agent_and_renames_the_zip(tmp_path: Path) -> None:
    from prefgym.agents.sb3 import SB3Agent, evaluate_true_return

    run, agent = legacy_run(tmp_path / "run")
    assert agent.steps == 256
    convert_run(run.path)
    assert not run.legacy_agent.exists()
    assert (run.path / "agent.zip.converted").is_file()
    config = agent_preset(CONFIG.env_id)
    loaded = SB3Agent.load(run.agent, CONFIG.env_id, config, seed=0, segment_length=25)
    assert loaded.steps == 256 and loaded.model._n_updates == agent.model._n_updates > 0
    for key, value in agent.model.policy.state_dict().items():
        assert torch.equal(loaded.model.policy.state_dict()[key], value), key
    expected = evaluate_true_return(agent.model, CONFIG.env_id, 3, 7)
    result = evaluate(run.path, episodes=3, seed=7)
    assert (result["true_return_mean"], result["true_return_std"]) == expected[:2]
    with pytest.raises(ValueError, match="nothing to convert"):
        convert_run(run.path)
    empty = RunDir.create(tmp_path / "empty", {"train": asdict(CONFIG)})
    with pytest.raises(FileNotFoundError, match="no agent to convert"):
        convert_run(empty.path)


def test_a_resumed_run_carries_on_from_the_saved_agent(tmp_path: Path) -> None:
    run, _ = legacy_run(tmp_path / "run")
    convert_run(run.path)  # an agent 256 steps in; the run is to train 512
    resume(run.path, show_progress=False)
    steps = [row["step"] for row in read_metrics(run.metrics)]
    assert steps == [512]  # one round, from 256 on; a fresh agent would have needed two
    meta = json.loads((run.agent / "agent.json").read_text())
    assert meta["counters"]["num_timesteps"] == 512


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("abc", "PREFGYM_THREADS='abc' is not a number of threads"),
        ("0", "PREFGYM_THREADS must be >= 1, got '0'"),
    ],
)
def test_a_bad_threads_variable_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str, match: str
) -> None:
    monkeypatch.setenv("PREFGYM_THREADS", value)
    with pytest.raises(ValueError, match=match):
        set_threads()
    assert set_threads(1) == 1


def test_a_true_reward_run_is_a_run_directory_without_judgments(tmp_path: Path) -> None:
    config = TrainConfig(reward="true", steps=4096, round_steps=2048, seed=2)
    run = train(config, tmp_path / "base", show_progress=False)
    rows = read_metrics(run.metrics)
    assert [r["round"] for r in rows] == [1.0, 2.0] and rows[-1]["step"] >= 4096
    assert np.isfinite(rows[-1]["true_return"]) and all(r["seconds"] > 0 for r in rows)
    assert not any(k.startswith("rm_") or k.startswith("labels") for k in rows[0])
    with PreferenceStore(run.store) as store:
        assert store.n_judgments() == 0 and store.n_segments() == 0
    assert run.finished() is not None and run.train_config().true_reward
    assert evaluate(run, episodes=2)["episodes"] == 2
    assert "PPO on the true reward" in report(run)


def test_a_person_who_first_cannot_tell_and_answers_slowly_has_every_answer_used(
    tmp_path: Path,
) -> None:
    """``--oracle human``: a first "can't tell" crashes nothing; the trainer waits each round."""
    import threading

    out = tmp_path / "run"
    stop = threading.Event()

    def person() -> None:  # slower than the trainer's rounds: 0.1 s a pair
        while not (out / "store.sqlite").exists() and not stop.is_set():
            time.sleep(0.05)
        with PreferenceStore(out / "store.sqlite") as store:
            while not stop.is_set():
                for query in store.pending_queries(limit=1):
                    left, right = store.get_segments(query.segment_ids, frames=False)
                    answer = "left" if left.true_return >= right.true_return else "right"
                    if store.n_judgments() == 0:
                        answer = "incomparable"
                    store.add_judgment(query.id, answer, "person", seconds=0.1)
                time.sleep(0.1)

    config = TrainConfig(
        oracle="human", labels=12, steps=3_072, round_steps=1_024, segment_length=20
    )
    thread = threading.Thread(target=person)
    thread.start()
    try:
        run = train(config, out, show_progress=False)
    finally:
        stop.set()
        thread.join()
    rows = read_metrics(run.metrics)
    assert [r["step"] for r in rows] == [1024, 2048, 3072]
    assert [r["labels_judged"] for r in rows] == [r["labels_trainable"] + 1 for r in rows]
    with PreferenceStore(run.store) as store:
        assert store.n_judgments() == store.n_queries() == 12 and not store.pending_queries()
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 12  # the last ones too
        assert store.trainer().state == "finished"  # type: ignore[union-attr]
    text = report(run)
    assert "questions asked 12, answers given 12, answers trainable 11" in text
    assert "person" in text and "median s" in text
    assert resume(out, show_progress=False).finished() is not None  # nothing left to do
