from __future__ import annotations

import dataclasses

import pytest

from prefgym.reward.config import LearnerConfig, RewardModelConfig


def test_reward_model_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="n_members must be >= 1, got 0"):
        RewardModelConfig(n_members=0)
    with pytest.raises(ValueError, match="hidden_sizes"):
        RewardModelConfig(hidden_sizes=(64, 0))
    with pytest.raises(ValueError, match="'softplus'"):
        RewardModelConfig(activation="softplus")  # type: ignore[arg-type]
    assert RewardModelConfig(hidden_sizes=[8, 8]).hidden_sizes == (8, 8)  # type: ignore[arg-type]


def test_learner_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="label_noise must be in"):
        LearnerConfig(label_noise=1.0)
    with pytest.raises(ValueError, match=r"ratio_band .* got \(1.5, 1.1\)"):
        LearnerConfig(ratio_band=(1.5, 1.1))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        LearnerConfig(batch_size=0)
    with pytest.raises(ValueError, match="min_steps must be >= 0, got -1"):
        LearnerConfig(min_steps=-1)
    assert dataclasses.replace(LearnerConfig(), weight_decay=0.5).weight_decay == 0.5
