from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefgym.loop import LabelSchedule


def test_asks_the_initial_share_before_training() -> None:
    schedule = LabelSchedule(budget=100, total_steps=10_000, initial_fraction=0.25)
    assert schedule.due(0) == 25


def test_reaches_the_budget_exactly_at_the_end() -> None:
    schedule = LabelSchedule(budget=700, total_steps=1_000_000)
    assert schedule.due(1_000_000) == 700
    assert schedule.due(5_000_000) == 700


def test_asks_more_early_than_late() -> None:
    schedule = LabelSchedule(budget=1000, total_steps=100_000, initial_fraction=0.0)
    first_tenth = schedule.due(10_000) - schedule.due(0)
    last_tenth = schedule.due(100_000) - schedule.due(90_000)
    assert first_tenth > 2 * last_tenth


def test_rate_follows_t0_over_t_plus_t0() -> None:
    schedule = LabelSchedule(budget=100_000, total_steps=1000, initial_fraction=0.0, t0=200)
    rate_at_0 = schedule.due(10) - schedule.due(0)
    rate_at_200 = schedule.due(210) - schedule.due(200)
    assert rate_at_200 / rate_at_0 == pytest.approx(0.5, rel=0.05)


@given(
    budget=st.integers(0, 5000),
    steps=st.integers(1, 10**7),
    fraction=st.floats(0, 1),
    a=st.integers(0, 10**7),
    b=st.integers(0, 10**7),
)
def test_is_monotone_and_bounded(budget: int, steps: int, fraction: float, a: int, b: int) -> None:
    schedule = LabelSchedule(budget=budget, total_steps=steps, initial_fraction=fraction)
    lo, hi = sorted((a, b))
    assert schedule.initial <= schedule.due(lo) <= schedule.due(hi) <= budget


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="initial_fraction must be in"):
        LabelSchedule(budget=10, total_steps=10, initial_fraction=1.5)
    with pytest.raises(ValueError, match="budget must be >= 0"):
        LabelSchedule(budget=-1, total_steps=10)
    for t0 in (0.0, -5.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"t0 must be a finite number of steps > 0, got {t0}"):
            LabelSchedule(budget=10, total_steps=10, t0=t0)
