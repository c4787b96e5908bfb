from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from prefgym.agents.text import DPOConfig, GRPOConfig, TokenPPOConfig
from prefgym.cli import main
from prefgym.loop import LEARNER_STATE
from prefgym.reward import FitReport, Learner, LearnerConfig
from prefgym.runs import (
    TextRun,
    TextTrainConfig,
    read_metrics,
    resume_text,
    train_text,
)
from prefgym.store import PreferenceStore

PPO = TokenPPOConfig(batch_size=32, minibatch_size=16, ppo_epochs=2, lr=1e-4, kl_coef=0.02)


def _small(**overrides: object) -> TextTrainConfig:
    config = TextTrainConfig(
        labels=300,
        label_rounds=1,
        iterations=4,
        eval_prompts=48,
        eval_every=2,
        reward_epochs=10,
        ppo=PPO,
        grpo=GRPOConfig(group_size=8, prompts_per_step=8, max_new_tokens=16, lr=2e-4),
        dpo=DPOConfig(beta=0.1, lr=1e-4, batch_size=16),
    )
    return replace(config, **overrides)  # type: ignore[arg-type]


def _evaluations(run: Path) -> list[dict[str, float]]:
    return [r for r in read_metrics(run / "metrics.csv") if r["true_score"] == r["true_score"]]


def test_ppo_raises_the_true_score_from_preferences(tmp_path: Path) -> None:
    ppo = replace(PPO, batch_size=64, kl_coef=0.05)
    config = _small(iterations=20, eval_every=10, labels=600, ppo=ppo)
    result = train_text(config, tmp_path / "run", progress=False)
    rows = _evaluations(tmp_path / "run")
    assert rows[-1]["true_score"] > rows[0]["true_score"] + 0.15, rows
    assert rows[-1]["rm_score"] > rows[1]["rm_score"]
    assert result["win_rate"] > 0.6, result
    assert result["fluency"] > 0.8, result
    assert (tmp_path / "run" / "plots").exists() is False  # plots are drawn by report
    assert "final" not in result and (tmp_path / "run" / "final.json").exists()


def test_grpo_on_the_true_score_moves_up(tmp_path: Path) -> None:
    config = _small(algo="grpo", grpo_reward="oracle", iterations=30, eval_every=15)
    train_text(config, tmp_path / "run", progress=False)
    rows = _evaluations(tmp_path / "run")
    assert rows[-1]["true_score"] > rows[0]["true_score"] + 0.1, rows
    with PreferenceStore(tmp_path / "run" / "store.sqlite") as store:
        assert store.n_judgments() == 0  # the oracle's true score needs no judgments


def test_dpo_prefers_the_chosen_responses(tmp_path: Path) -> None:
    config = _small(algo="dpo", iterations=3, eval_every=1, labels=400)
    train_text(config, tmp_path / "run", progress=False)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.csv") if r["iteration"] > 0]
    assert rows[-1]["train_reward_accuracy"] > 0.6, rows
    evaluations = _evaluations(tmp_path / "run")
    assert evaluations[-1]["true_score"] > evaluations[0]["true_score"], evaluations


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """Make the run stop (Ctrl-C) once update ``at`` is done, before it is logged."""
    original = TextRun._iterated

    def interrupted(self: TextRun, iteration: int, stats: dict[str, float]) -> None:
        if iteration == at:
            raise KeyboardInterrupt
        original(self, iteration, stats)

    monkeypatch.setattr(TextRun, "_iterated", interrupted)


def test_a_stopped_run_resumes_without_asking_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 4)
        with pytest.raises(KeyboardInterrupt):
            train_text(_small(labels=100), run, progress=False)
    with PreferenceStore(run / "store.sqlite") as store:
        judged, asked = store.n_judgments(), store.n_queries()
        assert store.get_meta("iteration") == 2
    resume_text(run, progress=False)
    with PreferenceStore(run / "store.sqlite") as store:
        assert (store.n_judgments(), store.n_queries()) == (judged, asked) == (100, 100)
        assert store.get_meta("iteration") == 4
    iterations = [r["iteration"] for r in read_metrics(run / "metrics.csv")]
    assert iterations == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_resumed_run_fits_with_the_tuned_l2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The learner's tuned L2 and step count survive a stop, as a control run's do."""
    run = tmp_path / "run"
    used: list[float] = []
    fit = Learner.fit

    def recording(self: Learner, *args: object, **kwargs: object) -> FitReport:
        used.append(self.weight_decay)
        return fit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Learner, "fit", recording)
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 3)  # rounds at updates 0 and 1 fitted, the third is at 3
        with pytest.raises(KeyboardInterrupt):
            train_text(_small(labels=100, label_rounds=3), run, progress=False)
    with PreferenceStore(run / "store.sqlite") as store:
        saved = store.get_meta(LEARNER_STATE)
    assert len(used) == 2 and used[0] == LearnerConfig().weight_decay
    assert saved["weight_decay"] != LearnerConfig().weight_decay  # tuning moved it
    resume_text(run, progress=False)
    # nothing new was judged: the saved model goes on as it is; the third round fits from the
    # saved state, as the uninterrupted run would have
    assert len(used) == 3
    assert used[2] == saved["weight_decay"]


def test_the_cli_trains_and_reports_a_text_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["text", "train", "--algo", "grpo", "--grpo-reward", "oracle", "--iterations", "2"]
    argv += ["--eval-every", "1", "--eval-prompts", "16", "--group-size", "4", "--out", str(run)]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "true score" in out and "win_rate" in out
    assert main(["report", str(run)]) == 0
    assert "overoptimisation.png" in capsys.readouterr().out
    assert (run / "plots" / "overoptimisation.png").stat().st_size > 0
    assert json.loads((run / "config.json").read_text())["text"]["algo"] == "grpo"
    assert main(["text", "train", "--resume", str(run), "--labels", "5"]) == 2
    assert "drop --labels" in capsys.readouterr().err


def test_without_the_kl_penalty_the_policy_hacks_the_reward_model(tmp_path: Path) -> None:
    """The suite can show over-optimisation: the reward model's score climbs while the
    responses fall out of the grammar (fluency drops), with the KL penalty off."""
    config = _small(
        iterations=24, eval_every=12, labels=300, ppo=replace(PPO, kl_coef=0.0, lr=3e-4)
    )
    train_text(config, tmp_path / "run", progress=False)
    first, *_, last = _evaluations(tmp_path / "run")
    rm_first = _evaluations(tmp_path / "run")[1]["rm_score"]
    assert last["rm_score"] > rm_first + 0.5, (first, last)
    assert last["fluency"] < first["fluency"] - 0.15, (first, last)
    assert last["kl"] > 5.0, last


@pytest.mark.slow
def test_ppo_reaches_the_sentiment_target(tmp_path: Path) -> None:
    """The issue's target with the defaults: 2,000 stoc judgments, win rate >= 90% against
    the SFT policy at KL <= 6 nats with >= 95% fluent responses (about 6 minutes)."""
    result = train_text(TextTrainConfig(), tmp_path / "run", progress=False)
    assert result["win_rate"] >= 0.9, result
    assert result["kl"] <= 6.0, result
    assert result["fluency"] >= 0.95, result


def test_ppo_ptx_mixes_in_the_pretraining_loss(tmp_path: Path) -> None:
    config = _small(iterations=2, eval_every=2, labels=50, ppo=replace(PPO, ptx_coef=0.5))
    train_text(config, tmp_path / "run", progress=False)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.csv") if r["iteration"] > 0]
    assert all(0 < r["train_ptx_loss"] < 10 for r in rows), rows


def test_a_local_model_directory_can_be_the_policy(tmp_path: Path) -> None:
    from prefgym.lm import load_language_model, save_language_model

    save_language_model(load_language_model("sft", progress=False), tmp_path / "model")
    config = _small(model=str(tmp_path / "model"), algo="grpo", grpo_reward="oracle", iterations=2)
    result = train_text(config, tmp_path / "run", progress=False)
    assert 0.0 <= result["win_rate"] <= 1.0


def test_a_text_run_judged_by_a_person_waits_for_and_trains_on_every_ranking(
    tmp_path: Path,
) -> None:
    """``--oracle human``: the trainer waits; a person ranks 3 responses through the store."""
    import threading
    import time

    from prefgym.runs import text_report

    store_path = tmp_path / "run" / "store.sqlite"
    stop = threading.Event()

    def person() -> None:  # ranks each query by true score, as the window would store it
        while not store_path.exists() and not stop.is_set():
            time.sleep(0.05)
        with PreferenceStore(store_path) as store:
            while not stop.is_set():
                for query in store.pending_queries(limit=1):
                    segments = store.get_segments(query.segment_ids, frames=False)
                    order = sorted(
                        query.segment_ids,
                        key=lambda i: -segments[query.segment_ids.index(i)].true_return,
                    )
                    store.add_ranking(query.id, order, "person", seconds=0.5)
                time.sleep(0.05)

    config = _small(oracle="human", responses_per_prompt=3, labels=24, label_rounds=2, iterations=4)
    thread = threading.Thread(target=person)
    thread.start()
    try:
        train_text(config, tmp_path / "run", progress=False)
    finally:
        stop.set()
        thread.join()
    with PreferenceStore(store_path) as store:
        judgments = store.judgments()
        assert store.pending_queries() == [] and len(judgments) == store.n_queries() == 8
        assert {j.judge for j in judgments} == {"person"} and all(j.order for j in judgments)
        # every ranking asked was answered before the refit that followed it
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 8
        assert store.trainer().state == "finished"  # type: ignore[union-attr]
    report = text_report(tmp_path / "run")
    assert "questions asked 8, answers given 8, answers trainable 8" in report
    row = next(line.split() for line in report.splitlines() if line.lstrip().startswith("person"))
    assert row[1] == "8" and row[6] == "8" and row[7] == "0.5"  # judgments, rankings, median s
