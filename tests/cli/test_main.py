from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import prefgym.runs
from prefgym.cli import TrainConfig, evaluate, main, report, resume, train
from prefgym.loop import ATARI_T0
from prefgym.runs import RunDir, read_metrics
from prefgym.segments import make_vector_env, random_policy, rollout_segments
from prefgym.store import PreferenceStore


def _random_true_return() -> float:
    env = make_vector_env("prefgym/CartPole-v1", 4)
    env.action_space.seed(0)
    segments = rollout_segments(env, random_policy(env.action_space), 4, 500, seed=0)
    return float(np.mean([s.true_return for s in segments]))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    out = tmp_path_factory.mktemp("runs") / "cartpole"
    config = TrainConfig(labels=50, steps=20_000, round_steps=2_500, seed=1)
    return train(config, out, show_progress=False)


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
        steps = int(store.get_meta("learner_steps", 0))
    assert steps >= 200  # the first fit's, then the second fit's own
    rows = read_metrics(run.metrics)
    assert rows[0]["rm_epochs"] >= 200  # a handful of judgments: one Adam step an epoch
    resume(run.path, show_progress=False)  # done already: nothing to add
    with PreferenceStore(run.store) as store:
        assert int(store.get_meta("learner_steps", 0)) == steps


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_unknown_env_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--env", "prefgym/CartPol-v1"], capsys)
    assert "'prefgym/CartPol-v1'" in err and "Did you mean 'prefgym/CartPole-v1'" in err


def test_unknown_oracle_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--oracle", "mistak"], capsys)
    assert "mistak" in err and "mistake" in err


def test_bad_numbers_name_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert "-5" in _error(["train", "--labels", "-5"], capsys)
    assert "twelve" in _error(["train", "--steps", "twelve"], capsys)


def test_a_bad_label_t0_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--label-t0", "-5"], capsys)
    assert "label_t0" in err and "-5" in err
    assert "'soon'" in _error(["train", "--label-t0", "soon"], capsys)


def test_label_t0_reaches_the_loops_schedule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[TrainConfig] = []

    def start(config: TrainConfig, out: object, **kwargs: object) -> RunDir:
        started.append(config)
        raise ValueError("not training in this test")

    monkeypatch.setattr(prefgym.runs, "train", start)
    _error(["train", "--label-t0", "2e6", "--steps", "10000000", "--labels", "600"], capsys)
    (config,) = started
    assert config.label_t0 == 2e6
    schedule = config.loop_config().schedule()
    assert (schedule.t0, schedule.total_steps, schedule.budget) == (2e6, 10_000_000, 600)


def test_rollout_envs_reaches_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert TrainConfig().loop_config().rollout_envs == 4
    assert TrainConfig(rollout_envs=16).loop_config().rollout_envs == 16
    err = _error(["train", "--rollout-envs", "0"], capsys)
    assert "rollout_envs" in err and "0" in err


@pytest.mark.parametrize(
    ("env_id", "label_t0", "t0"),
    [
        ("prefgym/Pong-v5", None, ATARI_T0),  # Christiano et al.'s Atari schedule
        ("prefgym/Breakout-v5", 1e5, 1e5),  # a T0 given wins
        ("prefgym/ArcadePong-v0", None, None),  # our own arcade games: steps / 5
        ("prefgym/CartPole-v1", None, None),
    ],
)
def test_atari_envs_get_christianos_t0_by_default(
    env_id: str, label_t0: float | None, t0: float | None
) -> None:
    config = TrainConfig(env_id=env_id, label_t0=label_t0)
    assert config.loop_config().label_t0 == t0
    assert config.label_t0 == label_t0  # config.json keeps what was asked for


def test_resume_refuses_new_settings(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    err = _error(["train", "--resume", str(short_run.path), "--labels", "10"], capsys)
    assert "--labels" in err and "config.json" in err


def test_refuses_to_overwrite_a_run(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    err = _error(["train", "--out", str(short_run.path)], capsys)
    assert "--resume" in err


def test_resume_of_a_missing_run_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "prefgym train --out" in _error(["train", "--resume", str(tmp_path)], capsys)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--env",
        "--oracle",
        "--labels",
        "--steps",
        "--seed",
        "--algo",
        "--segment-length",
        "--selection",
        "--round-steps",
        "--initial-fraction",
        "--label-t0",
        "--members",
        "--labeler",
        "--resume",
        "--out",
        "--quiet",
    ):
        assert flag in text


def test_list_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-envs"]) == 0
    envs = capsys.readouterr().out
    assert "prefgym/Hopper-v5" in envs and "penalty" in envs
    assert main(["list-oracles"]) == 0
    oracles = capsys.readouterr().out
    assert all(name in oracles for name in ("oracle", "stoc", "mistake", "skip", "equal", "myopic"))


def test_eval_prints_the_true_return(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    assert main(["eval", str(short_run.path), "--episodes", "2"]) == 0
    assert "true return" in capsys.readouterr().out
