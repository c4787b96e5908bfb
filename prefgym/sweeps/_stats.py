"""Statistics over seeds with rliable (Agarwal et al. 2021): IQM, mean, median, profiles.

Scores come as a matrix of runs (seeds) by tasks. Point estimates are rliable's
(``aggregate_iqm``, ``aggregate_mean``, ``aggregate_median``,
``probability_of_improvement``, the run-score distribution of its performance
profiles). Their 95% confidence intervals are percentile intervals of a
stratified bootstrap, as rliable's: each resample draws the runs again within
each task. The bootstrap is drawn here, from a seeded ``np.random.Generator``,
because rliable's draws from numpy's global generator; so a report is the same
every time it is drawn, and no global state is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

REPS = 2000
"""Bootstrap resamples of an interval."""
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


def _functions(tasks: int) -> dict[str, Callable[[np.ndarray], float]]:
    """Rliable's aggregates; the median of one task is over its runs.

    rliable's median is of the per-task means (the median task), which for one task
    would be the mean again; a row of one task gets the median run instead.
    """
    from rliable import metrics

    median = metrics.aggregate_median if tasks > 1 else np.median
    return {"iqm": metrics.aggregate_iqm, "mean": metrics.aggregate_mean, "median": median}


def stratified_bootstrap(
    matrices: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    reps: int = REPS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``statistic(*matrices)``, runs resampled within each task.

    Args:
        matrices: Runs x tasks score matrices (one per configuration the statistic
            takes), each resampled on its own.
        statistic: Maps the (resampled) matrices to an array of estimates.
        reps: Resamples.
        seed: Seeds the resampling.

    Returns:
        The lower and upper ends, each shaped like ``statistic``'s result.
    """
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        resampled = []
        for m in matrices:
            rows = rng.integers(0, m.shape[0], size=m.shape)  # per task, its own runs
            resampled.append(np.take_along_axis(m, rows, axis=0))
        draws.append(np.atleast_1d(statistic(*resampled)))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(np.array(draws), [tail, 100 - tail], axis=0)
    return low, high


def aggregates(scores: np.ndarray, *, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """IQM, mean and median of ``scores`` (runs x tasks) with stratified bootstrap CIs."""
    scores = _matrix(scores)
    functions = _functions(scores.shape[1])

    def all_three(x: np.ndarray) -> np.ndarray:
        return np.array([functions[name](x) for name in AGGREGATES])

    points = all_three(scores)
    low, high = stratified_bootstrap([scores], all_three, reps=reps, seed=seed)
    return {
        name: Estimate(float(points[i]), float(low[i]), float(high[i]))
        for i, name in enumerate(AGGREGATES)
    }


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, *, reps: int = REPS, seed: int = 0
) -> Estimate:
    """P(X > Y): the chance a run of X beats a run of Y on the same task, averaged over tasks.

    Args:
        x: Scores of X, runs x tasks.
        y: Scores of Y on the same tasks (in the same column order), runs x tasks; the
            number of runs may differ from X's.
        reps: Bootstrap resamples.
        seed: Seeds the bootstrap.
    """
    from rliable import metrics

    x, y = _matrix(x), _matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y need the same tasks, got {x.shape[1]} and {y.shape[1]} columns")

    def improvement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([metrics.probability_of_improvement(a, b)])

    point = float(improvement(x, y)[0])
    low, high = stratified_bootstrap([x, y], improvement, reps=reps, seed=seed)
    return Estimate(point, float(low[0]), float(high[0]))


def performance_profile(
    scores: dict[str, np.ndarray], taus: np.ndarray, *, reps: int = REPS, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each configuration, the fraction of runs scoring above each tau, with a CI band.

    Each task weighs the same (the fraction is averaged over tasks, as rliable's run-score
    distribution), and the band resamples runs within tasks.

    Args:
        scores: Configuration -> runs x tasks matrix.
        taus: The thresholds.
        reps: Bootstrap resamples.
        seed: Seeds the bootstrap.

    Returns:
        ``{configuration: (fraction, low, high)}``, each of ``taus``' length.
    """

    def fraction(m: np.ndarray) -> np.ndarray:
        """Rliable's run-score distribution (``library.score_distributions``), vectorised."""
        return (m[..., None] > taus).mean(axis=(0, 1))

    profiles = {}
    for name, matrix in scores.items():
        matrix = _matrix(matrix)
        low, high = stratified_bootstrap([matrix], fraction, reps=reps, seed=seed)
        profiles[name] = (fraction(matrix), low, high)
    return profiles


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
