"""rliable's aggregates and intervals, checked against hand computations on fixed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from prefgym.sweeps._stats import aggregates, performance_profile, probability_of_improvement


def test_iqm_mean_and_median_of_a_known_array() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0, 7.0])  # 8 seeds of one task
    est = aggregates(scores, reps=200)
    assert est["iqm"].value == pytest.approx(4.5)  # mean of the middle half: 3, 4, 5, 6
    assert est["mean"].value == pytest.approx(16.0)  # 128 / 8: the outlier pulls it up
    assert est["median"].value == pytest.approx(4.5)
    two_tasks = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0]])
    assert aggregates(two_tasks, reps=200)["iqm"].value == pytest.approx(6.5)  # 2, 3, 10, 11


def test_intervals_hold_the_point_are_seeded_and_are_95_percent_percentile_bootstraps() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(0.8, 0.2, size=(10, 2))
    first, again = aggregates(scores, reps=2000), aggregates(scores, reps=2000)
    assert first == again
    for e in first.values():
        assert e.low <= e.value <= e.high and e.high - e.low > 0.01
    # The mean's interval by hand: resample the 10 runs within each task, 95% percentiles.
    hand = np.random.default_rng(1)
    means = [np.mean([scores[hand.integers(0, 10, 10), t] for t in range(2)]) for _ in range(4000)]
    low, high = np.percentile(means, [2.5, 97.5])
    assert first["mean"].low == pytest.approx(low, abs=0.02)
    assert first["mean"].high == pytest.approx(high, abs=0.02)
    constant = aggregates(np.full((5, 1), 0.7), reps=100)
    assert (constant["iqm"].low, constant["iqm"].high) == pytest.approx((0.7, 0.7))


def test_probability_of_improvement_by_hand() -> None:
    def p(x: list[list[float]], y: list[list[float]]) -> float:
        return probability_of_improvement(np.array(x), np.array(y), reps=100).value

    assert p([[5.0], [6.0]], [[1.0], [2.0]]) == pytest.approx(1.0)
    assert p([[1.0], [2.0]], [[0.0], [3.0]]) == pytest.approx(0.5)  # 2 of 4 pairs
    assert p([[1.0], [3.0]], [[1.0], [2.0]]) == pytest.approx(0.625)  # a tie counts half
    assert p([[5.0, 0.0], [6.0, 1.0]], [[1.0, 5.0], [2.0, 6.0]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(np.ones((2, 2)), np.ones((2, 3)))


def test_performance_profile_is_the_fraction_of_runs_above_each_tau() -> None:
    profile = performance_profile(
        {"a": np.array([0.1, 0.5, 0.9, 1.3])}, np.array([0.0, 0.5, 1.0]), reps=100
    )
    fraction, low, high = profile["a"]
    assert fraction == pytest.approx([1.0, 0.5, 0.25])
    assert np.all(low <= fraction) and np.all(fraction <= high)


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        aggregates(np.array([1.0, np.nan]))


def test_the_profile_is_rliable_s_run_score_distribution() -> None:
    from rliable import library as rly

    rng = np.random.default_rng(3)
    scores = rng.normal(0.7, 0.3, size=(6, 3))
    taus = np.linspace(0.0, 1.5, 16)
    fraction, _, _ = performance_profile({"a": scores}, taus, reps=50)["a"]
    np.testing.assert_allclose(fraction, rly.score_distributions(scores, taus))
