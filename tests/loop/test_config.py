from __future__ import annotations

import math
from dataclasses import replace

import pytest

from prefgym.loop.config import SELECTIONS, LoopConfig

CONFIG = LoopConfig(labels=40, steps=2_000, segment_length=10, round_steps=400, pool_size=200)


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="selection must be"):
        LoopConfig(selection="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="segment_length must be positive"):
        LoopConfig(segment_length=0)
    for t0 in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=f"label_t0 must be a finite number .*, got {t0}"):
            LoopConfig(label_t0=t0)
    with pytest.raises(ValueError, match="initial_fraction must be in"):
        LoopConfig(initial_fraction=1.5)
    with pytest.raises(ValueError, match="rollout_envs must be positive, got 0"):
        LoopConfig(rollout_envs=0)


def test_label_t0_shapes_the_schedule() -> None:
    assert CONFIG.schedule().t0 is None  # the schedule's own steps / 5
    config = replace(CONFIG, label_t0=50.0)
    assert config.schedule().t0 == 50.0
    first_round = CONFIG.round_steps
    assert config.schedule().due(first_round) > CONFIG.schedule().due(first_round)


def test_selections_are_the_literals_choices() -> None:
    assert SELECTIONS == ("uniform", "disagreement", "entropy")
    for selection in SELECTIONS:
        assert LoopConfig(selection=selection).selection == selection
