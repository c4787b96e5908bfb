"""Query selection: which pairs of segments to ask the judge about next.

``uniform`` asks about random pairs. The active methods draw a pool of
``oversample * n_queries`` random candidate pairs and keep the most informative:
``disagreement`` those where the members' probabilities that the left is
preferred vary most (Christiano et al. 2017), ``entropy`` those where the
ensemble-mean probability is closest to one half. Members' returns are computed
once per segment; candidate pairs are then scored with numpy.

A pair and its mirror image are one query: excluding ``(a, b)`` also excludes
``(b, a)``, and no query is returned twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefgym.loop.config import SELECTIONS, Selection
from prefgym.reward import RewardEnsemble
from prefgym.segments import Segment, sample_pairs

_ENUMERATE_UP_TO = 2_000_000
"""Up to this many possible pairs, the pool is drawn from an explicit list of them."""
_MAX_DRAWS = 50
"""Rounds of rejection sampling before giving up on finding enough unasked pairs."""


def _keys(pairs: np.ndarray, n_segments: int) -> np.ndarray:
    """One integer per unordered pair ``(m, 2)`` -> ``(m,)``."""
    return np.minimum(pairs[:, 0], pairs[:, 1]) * n_segments + np.maximum(pairs[:, 0], pairs[:, 1])


def _excluded_keys(exclude: set[tuple[int, int]] | None, n_segments: int) -> np.ndarray:
    if not exclude:
        return np.zeros(0, dtype=np.int64)
    pairs = np.array(sorted(exclude), dtype=np.int64).reshape(-1, 2)
    inside = ((pairs >= 0) & (pairs < n_segments)).all(axis=1) & (pairs[:, 0] != pairs[:, 1])
    return np.unique(_keys(pairs[inside], n_segments))


def candidate_pool(
    n_segments: int,
    n_pool: int,
    rng: np.random.Generator,
    exclude: set[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Up to ``n_pool`` distinct random pairs, none of them (or their mirror) in ``exclude``.

    Each pair's orientation is random. Fewer than ``n_pool`` come back only when
    fewer remain unasked.

    Returns:
        Segment positions ``(min(n_pool, remaining), 2)``, int64.
    """
    excluded = _excluded_keys(exclude, n_segments)
    total = n_segments * (n_segments - 1) // 2
    remaining = total - len(excluded)
    n_pool = min(n_pool, remaining)
    if total <= _ENUMERATE_UP_TO:
        left, right = np.triu_indices(n_segments, k=1)
        allowed = ~np.isin(left * n_segments + right, excluded)
        left, right = left[allowed], right[allowed]
        chosen = rng.choice(len(left), size=n_pool, replace=False)
        pairs = np.stack([left[chosen], right[chosen]], axis=1).astype(np.int64)
        flip = rng.random(n_pool) < 0.5
        pairs[flip] = pairs[flip, ::-1]
        return pairs
    found = np.zeros((0, 2), dtype=np.int64)
    for _ in range(_MAX_DRAWS):
        draws = np.concatenate([found, sample_pairs(n_segments, 2 * n_pool, rng)])
        keys = _keys(draws, n_segments)
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        found = draws[first[~np.isin(keys[first], excluded)]][:n_pool]
        if len(found) == n_pool:
            return found
    raise RuntimeError(
        f"found only {len(found)} unasked pairs of {n_segments} segments after {_MAX_DRAWS} "
        f"rounds, wanted {n_pool}; exclude fewer pairs or add segments"
    )


def preference_probabilities(member_returns: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Each member's Bradley-Terry probability that the left of each pair is preferred.

    Args:
        member_returns: Returns ``(members, n_segments)``.
        pairs: Segment positions ``(m, 2)``.

    Returns:
        Probabilities ``(members, m)``.
    """
    gap = member_returns[:, pairs[:, 0]] - member_returns[:, pairs[:, 1]]
    return 0.5 * (1.0 + np.tanh(0.5 * gap))


def score_pairs(method: Selection, member_returns: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """How informative asking about each pair looks; higher is better.

    Args:
        method: ``"disagreement"`` (variance across members of P(left)) or
            ``"entropy"`` (entropy of the ensemble-mean P(left), in nats).
        member_returns: Returns ``(members, n_segments)``.
        pairs: Segment positions ``(m, 2)``.

    Returns:
        Scores ``(m,)``.
    """
    p = preference_probabilities(member_returns, pairs)
    if method == "disagreement":
        return p.var(axis=0)
    if method == "entropy":
        mean = np.clip(p.mean(axis=0), 1e-12, 1 - 1e-12)
        return -(mean * np.log(mean) + (1 - mean) * np.log1p(-mean))
    raise ValueError(
        f"cannot score pairs with method {method!r}; expected 'disagreement' or 'entropy'"
    )


def select_queries(
    method: Selection,
    ensemble: RewardEnsemble | None,
    segments: Sequence[Segment],
    n_queries: int,
    rng: np.random.Generator,
    *,
    oversample: int = 10,
    exclude: set[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Choose ``n_queries`` pairs of ``segments`` to ask about.

    Args:
        method: ``"uniform"``, ``"disagreement"`` or ``"entropy"``.
        ensemble: The reward model whose members score pairs (by their raw
            returns, the scale the learner fits); unused, and may be None, for ``"uniform"``.
        segments: The segments to choose from.
        n_queries: How many pairs to return.
        rng: Source of the candidate pool and of each pair's orientation.
        oversample: The active methods score ``oversample * n_queries`` candidates.
        exclude: Pairs already asked, as ``(left, right)`` positions into ``segments``;
            neither they nor their mirror images are returned.

    Returns:
        Distinct pairs of segment positions ``(n_queries, 2)``, int64, most informative first
        for the active methods.
    """
    if method not in SELECTIONS:
        raise ValueError(f"method must be one of {SELECTIONS}, got {method!r}")
    if n_queries < 0:
        raise ValueError(f"n_queries must be >= 0, got {n_queries}")
    if oversample < 1:
        raise ValueError(f"oversample must be >= 1, got {oversample}")
    if n_queries == 0:
        return np.zeros((0, 2), dtype=np.int64)
    n = len(segments)
    if n < 2:
        raise ValueError(f"need at least 2 segments to make a pair, got {n}")
    remaining = n * (n - 1) // 2 - len(_excluded_keys(exclude, n))
    if remaining < n_queries:
        raise ValueError(
            f"asked for {n_queries} queries but only {remaining} pairs of {n} segments remain "
            "unasked; ask for fewer or add segments"
        )
    if method == "uniform":
        return candidate_pool(n, n_queries, rng, exclude)
    if ensemble is None:
        raise ValueError(f"method {method!r} needs an ensemble, got None")
    pool = candidate_pool(n, oversample * n_queries, rng, exclude)
    scores = score_pairs(method, ensemble.segment_returns(segments, normalised=False), pool)
    best = np.argsort(-scores, kind="stable")[:n_queries]
    return pool[best]
