from __future__ import annotations

import pytest

from prefgym.agents.text.config import DPOConfig, GRPOConfig, TokenPPOConfig
from prefgym.runs.config import TextTrainConfig


def test_a_text_run_starts_from_the_trainers_own_defaults() -> None:
    """One set of defaults: a run and a trainer built by hand agree."""
    run = TextTrainConfig()
    assert (run.ppo, run.dpo, run.grpo) == (TokenPPOConfig(), DPOConfig(), GRPOConfig())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TokenPPOConfig(batch_size=64, minibatch_size=48), "divide"),
        (lambda: TokenPPOConfig(kl_coef=-1.0), "kl_coef must be >= 0"),
        (lambda: DPOConfig(beta=0.0), "beta must be > 0, got 0.0"),
        (lambda: DPOConfig(loss_type="hinge"), "loss_type must be 'sigmoid' or 'ipo'"),
        (lambda: GRPOConfig(group_size=1), "group_size must be >= 2"),
        (lambda: GRPOConfig(clip_range=1.5), "clip_range must be in"),
    ],
)
def test_configs_name_the_bad_value(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
