from __future__ import annotations

import pytest

from prefgym.loop import LabelRounds, LabelSchedule, StepRounds


def test_label_rounds_ask_each_round_at_its_start_and_end_at_the_next() -> None:
    plan = LabelRounds(counts=(50, 20, 20, 10), starts=(0, 5, 10, 15), total=20)
    assert [plan.due(p) for p in (0, 4, 5, 9, 10, 15, 20)] == [50, 50, 70, 70, 90, 100, 100]
    assert [plan.round_end(p) for p in (0, 3, 5, 14, 15, 19)] == [5, 5, 10, 15, 20, 20]
    assert [plan.round_of(p) for p in (0, 4, 5, 19, 20)] == [0, 0, 1, 3, 3]


def test_rounds_that_start_together_are_merged() -> None:
    """A run shorter than its rounds (2 iterations, 4 rounds) asks the first rounds at once."""
    plan = LabelRounds.merged([40, 20, 20, 20], [0, 0, 1, 1], total=3)
    assert plan.counts == (60, 40) and plan.starts == (0, 1)
    assert plan.round_of(0) == 0 and plan.due(0) == 60 and plan.round_end(0) == 1
    assert plan.round_end(1) == 3  # the last round ends with the run


@pytest.mark.parametrize(
    ("counts", "starts", "message"),
    [
        ((1, 2), (0,), "one count per start"),
        ((1, 2), (1, 3), "first start at 0"),
        ((1, 2), (0, 0), "increase strictly"),
        ((1, -2), (0, 3), "counts must be >= 0"),
    ],
)
def test_label_rounds_refuse_a_plan_that_cannot_be(
    counts: tuple[int, ...], starts: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LabelRounds(counts, starts, total=10)


def test_step_rounds_follow_the_label_schedule_and_cut_rounds_at_round_steps() -> None:
    schedule = LabelSchedule(100, 10_000)
    plan = StepRounds(schedule, round_steps=3_000)
    assert plan.total == 10_000
    assert [plan.due(s) for s in (0, 3_000, 10_000)] == [
        schedule.due(s) for s in (0, 3_000, 10_000)
    ]
    assert plan.due(10_000) == 100
    assert [plan.round_end(s) for s in (0, 3_000, 9_000)] == [3_000, 6_000, 10_000]


def test_a_round_that_would_start_at_the_end_is_never_asked() -> None:
    plan = LabelRounds.merged([50, 20, 20, 10], [0, 1, 1, 2], total=2)  # 2 updates, 4 rounds
    assert plan.counts == (50, 40) and plan.starts == (0, 1)
    assert plan.due(2) == 90
