from __future__ import annotations

from typing import Any

import pytest

from prefgym.agents.sb3.config import AgentConfig


def test_default_configs_are_valid() -> None:
    assert AgentConfig().algo == "ppo"
    assert AgentConfig(algo="sac").algo == "sac"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algo": "dqn"}, r"algo must be one of \('ppo', 'sac'\), got 'dqn'"),
        ({"n_envs": 0}, "n_envs must be >= 1, got 0"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\], got 1.5"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0, got 0.0"),
        ({"net_arch": ()}, r"net_arch must be non-empty positive widths, got \(\)"),
        ({"tau": 0.0}, r"tau must be in \(0, 1\], got 0.0"),
        ({"sac_ent_coef": "fixed"}, "sac_ent_coef must be 'auto' or >= 0, got 'fixed'"),
        ({"n_steps": 100, "batch_size": 64}, "divide n_steps \\* n_envs = 400, got 64; .* 50"),
        ({"sde_sample_freq": 0}, "sde_sample_freq must be -1 .* or >= 1, got 0"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AgentConfig(**kwargs)
