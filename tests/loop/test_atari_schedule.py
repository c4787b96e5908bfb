from __future__ import annotations

import math

import pytest

from prefgym.loop import ATARI_T0, LabelSchedule


def test_atari_preset_asks_500_labels_first_then_at_christianos_rate() -> None:
    schedule = LabelSchedule.atari(5_500, 10_000_000)
    assert schedule.initial == schedule.due(0) == 500
    assert schedule.due(10_000_000) == 5_500
    # the rate is proportional to T0 / (T + T0): cumulative labels grow with log(1 + T / T0)
    rest = 5_000 / math.log1p(10_000_000 / ATARI_T0)
    for step in (1_000_000, 5_000_000):
        assert schedule.due(step) == pytest.approx(500 + rest * math.log1p(step / ATARI_T0), abs=1)
    early = schedule.due(1_000_000) - schedule.due(0)
    late = schedule.due(10_000_000) - schedule.due(9_000_000)
    assert early > 2 * late


def test_atari_preset_needs_room_for_the_initial_labels() -> None:
    with pytest.raises(ValueError, match="budget must be >= 500, got 100"):
        LabelSchedule.atari(100)
