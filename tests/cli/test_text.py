from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from prefgym.cli._main import _parser
from prefgym.cli._text import text_config
from prefgym.runs.config import TextTrainConfig


def _config(*argv: str) -> TextTrainConfig:
    args = _parser().parse_args(["text", "train", *argv])
    assert isinstance(args, argparse.Namespace)
    return text_config(args)


def test_no_options_is_the_configs_own_defaults() -> None:
    assert _config() == TextTrainConfig()


def test_options_reach_the_run_and_each_trainer() -> None:
    config = _config(
        "--algo", "grpo", "--labels", "300", "--ppo-lr", "1e-4", "--dpo-beta", "0.3",
        "--grpo-group-size", "4", "--reward-backbone", "minilm", "--grpo-reward", "oracle",
    )  # fmt: skip
    assert (config.algo, config.labels, config.grpo_reward) == ("grpo", 300, "oracle")
    assert (config.ppo.lr, config.dpo.beta, config.grpo.group_size) == (1e-4, 0.3, 4)
    assert config.reward.backbone == "minilm"


def test_earlier_spellings_still_work() -> None:
    config = _config(
        "--lr", "2e-5", "--kl-coef", "0.3", "--batch-size", "32", "--dpo-loss", "ipo",
        "--group-size", "6", "--reward-members", "2", "--kl", "adaptive",
    )  # fmt: skip
    assert (config.ppo.lr, config.dpo.lr, config.grpo.lr) == (2e-5, 2e-5, 2e-5)
    assert (config.ppo.kl_coef, config.grpo.kl_coef) == (0.3, 0.3)
    assert (config.ppo.batch_size, config.ppo.minibatch_size) == (32, 16)
    assert (config.dpo.loss_type, config.grpo.group_size) == ("ipo", 6)
    assert (config.reward.n_members, config.ppo.kl) == (2, "adaptive")


def test_a_small_batch_takes_a_minibatch_that_divides_it() -> None:
    assert _config("--ppo-batch-size", "8").ppo.minibatch_size == 8
    assert _config("--ppo-batch-size", "8", "--ppo-minibatch-size", "4").ppo.minibatch_size == 4


def test_bad_settings_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from prefgym.cli import main

    assert main(["text", "train", "--algo", "dpo", "--responses-per-prompt", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prefgym: error: dpo trains on pairs") and err.count("\n") == 1


def test_an_unknown_model_is_refused_before_the_run_directory_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefgym.cli import main

    out = tmp_path / "run"
    argv = ["text", "train", "--model", str(tmp_path / "no-such-model"), "--out", str(out)]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model must be one of base, sft, smollm2" in err and "no such directory" in err
    assert not out.exists()
