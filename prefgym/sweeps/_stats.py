"""Statistics over seeds with rliable (Agarwal et al. 2021): IQM, mean, median, profiles.

Scores come as a matrix of runs (seeds) by tasks. Point estimates are rliable's
aggregates; 95% confidence intervals are stratified bootstrap intervals (runs are
resampled within each task). The bootstrap is seeded, so a report is the same
every time it is drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

REPS = 2000
"""Bootstrap resamples of an interval (rliable's default for profiles; its 50,000 for
aggregates takes seconds a row and moves the bounds by about 0.01 here)."""
CONFIDENCE = 0.95
AGGREGATES = ("iqm", "mean", "median")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"


def _functions(tasks: int) -> dict[str, object]:
    """Rliable's aggregates; the median of one task is over its runs.

    rliable's median is of the per-task means (the median task), which for one task
    would be the mean again; a row of one task gets the median run instead.
    """
    from rliable import metrics

    median = metrics.aggregate_median if tasks > 1 else np.median
    return {"iqm": metrics.aggregate_iqm, "mean": metrics.aggregate_mean, "median": median}


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Numpy's global generator seeded, and restored after.

    rliable's bootstraps draw their indices with ``np.random.choice`` (its ``random_state``
    argument reaches arch, which does not draw them), so the global state is what seeds them.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state is deprecated")
            yield
    finally:
        np.random.set_state(state)


def aggregates(scores: np.ndarray, *, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """IQM, mean and median of ``scores`` (runs x tasks) with stratified bootstrap CIs."""
    from rliable import library as rly

    scores = _matrix(scores)
    functions = _functions(scores.shape[1])

    def all_three(x: np.ndarray) -> np.ndarray:
        return np.array([functions[name](x) for name in AGGREGATES])  # type: ignore[operator]

    with _seeded(seed):
        points, intervals = rly.get_interval_estimates(
            {"x": scores}, all_three, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return {
        name: Estimate(
            float(points["x"][i]), float(intervals["x"][0, i]), float(intervals["x"][1, i])
        )
        for i, name in enumerate(AGGREGATES)
    }


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, *, reps: int = REPS, seed: int = 0
) -> Estimate:
    """P(X > Y): the chance a run of X beats a run of Y on the same task, averaged over tasks.

    Args:
        x: Scores of X, runs x tasks.
        y: Scores of Y on the same tasks (in the same column order), runs x tasks.
        reps: Bootstrap resamples.
        seed: Seeds the bootstrap.
    """
    from rliable import library as rly
    from rliable import metrics

    x, y = _matrix(x), _matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y need the same tasks, got {x.shape[1]} and {y.shape[1]} columns")
    with _seeded(seed):
        points, intervals = rly.get_interval_estimates(
            {"xy": [x, y]},
            lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
            reps=reps,
            confidence_interval_size=CONFIDENCE,
        )
    return Estimate(
        float(points["xy"][0]), float(intervals["xy"][0, 0]), float(intervals["xy"][1, 0])
    )


def performance_profile(
    scores: dict[str, np.ndarray], taus: np.ndarray, *, reps: int = REPS, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each configuration, the fraction of runs scoring above each tau, with a CI band.

    Returns:
        ``{configuration: (fraction, low, high)}``, each of ``taus``' length.
    """
    from rliable import library as rly

    with _seeded(seed):
        points, intervals = rly.create_performance_profile(
            {k: _matrix(v) for k, v in scores.items()}, taus, reps=reps
        )
    return {k: (points[k], intervals[k][0], intervals[k][1]) for k in scores}


def _matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(
            f"scores must be runs x tasks with at least one of each, got {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return scores
