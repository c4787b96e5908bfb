"""Preference losses: Bradley-Terry for pairs, Plackett-Luce for rankings, with random answers.

Pairwise judgments train with the Bradley-Terry cross-entropy, whose target is
the probability that the left segment is preferred (1, 0, or 0.5 for "equal"),
K-wise rankings with the Plackett-Luce loss. Both assume the judge answers at
random with probability ``label_noise`` (Christiano et al. 2017), which keeps the
loss bounded however confident the model gets.

:class:`Judgments` holds a call's pairs and rankings as one list of judgments,
checked once, and computes every member's loss on any batch of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from prefgym.reward.config import RankingLoss


def _check_label_noise(label_noise: float) -> None:
    """Refuse a label noise that is no probability below 1 (its logs would be undefined)."""
    if not 0 <= label_noise < 1:
        raise ValueError(
            f"label_noise is the probability that the judge answered at random, in [0, 1); "
            f"got {label_noise}"
        )


def _check_ranking(returns: Tensor) -> int:
    """K of a batch of rankings ``(..., K)``; a ranking needs K >= 2 segments."""
    if returns.ndim == 0 or returns.shape[-1] < 2:
        shape = tuple(returns.shape)
        raise ValueError(
            f"a ranking compares at least 2 segments: returns must have shape (..., K) with "
            f"K >= 2, got shape {shape}; leave rankings of fewer segments out of training"
        )
    return int(returns.shape[-1])


def _with_random_answers(log_p: Tensor, eps: float, n_outcomes: float) -> Tensor:
    """log((1 - eps) P + eps / n_outcomes), computed from log P in log space."""
    if eps == 0:
        return log_p
    floor = torch.full_like(log_p, math.log(eps) - math.log(n_outcomes))
    return torch.logaddexp(log_p + math.log1p(-eps), floor)


def bradley_terry_loss(logits: Tensor, targets: Tensor, label_noise: float = 0.0) -> Tensor:
    """Elementwise cross-entropy of the Bradley-Terry model with random answers.

    Args:
        logits: Return of the left minus return of the right segment, ``(...)``.
        targets: Probability that the left is preferred, ``(...)``: 1, 0 or 0.5.
        label_noise: Probability that the judge answered at random.

    Returns:
        Losses ``(...)``; at most ``-log(label_noise / 2)`` when ``label_noise > 0``.

    Raises:
        ValueError: ``label_noise`` is outside ``[0, 1)``.
    """
    _check_label_noise(label_noise)
    log_left = _with_random_answers(F.logsigmoid(logits), label_noise, 2)
    log_right = _with_random_answers(F.logsigmoid(-logits), label_noise, 2)
    return -(targets * log_left + (1 - targets) * log_right)


def plackett_luce_loss(returns: Tensor, label_noise: float = 0.0) -> Tensor:
    """Negative log-likelihood of rankings under the Plackett-Luce model with random answers.

    A random answer picks one of the ``K!`` orders uniformly. For ``K = 2`` this
    is :func:`bradley_terry_loss` with target 1.

    Args:
        returns: Returns of the ranked segments, best first, ``(..., K)``.
        label_noise: Probability that the judge answered at random.

    Returns:
        Losses ``(...)``.

    Raises:
        ValueError: ``K < 2`` (a ranking of one says nothing), or ``label_noise``
            is outside ``[0, 1)``.
    """
    k = _check_ranking(returns)
    _check_label_noise(label_noise)
    suffix = torch.logcumsumexp(returns.flip(-1), dim=-1).flip(-1)
    log_p = (returns - suffix)[..., :-1].sum(-1)
    if label_noise == 0:
        return -log_p
    floor = torch.full_like(log_p, math.log(label_noise) - math.lgamma(k + 1))
    return -torch.logaddexp(log_p + math.log1p(-label_noise), floor)


def ranking_pairs_loss(returns: Tensor, label_noise: float = 0.0) -> Tensor:
    """A ranking's loss as the mean Bradley-Terry loss of its C(K, 2) ordered pairs.

    InstructGPT's reward-model loss: each better-worse pair of the ranking is a
    comparison with target 1, and the C(K, 2) of them are averaged, so that a
    ranking weighs as much as one pair however large ``K`` is.

    Args:
        returns: Returns of the ranked segments, best first, ``(..., K)``.
        label_noise: Probability that the judge answered each pair at random.

    Returns:
        Losses ``(...)``.

    Raises:
        ValueError: ``K < 2`` (a ranking of one has no pair to average, so its
            mean would be NaN), or ``label_noise`` is outside ``[0, 1)``.
    """
    k = _check_ranking(returns)
    better, worse = torch.triu_indices(k, k, offset=1, device=returns.device)
    gaps = returns[..., better] - returns[..., worse]
    return bradley_terry_loss(gaps, torch.ones_like(gaps), label_noise).mean(-1)


_RANKING_LOSSES = {"plackett_luce": plackett_luce_loss, "pairs": ranking_pairs_loss}


class Judgments:
    """Pairs and rankings as one list of judgments: pairs first, then rankings."""

    def __init__(
        self,
        n_segments: int,
        pairs: np.ndarray,
        targets: np.ndarray,
        rankings: Sequence[Sequence[int]],
        ranking_loss: RankingLoss = "plackett_luce",
    ) -> None:
        if ranking_loss not in _RANKING_LOSSES:
            raise ValueError(
                f"ranking_loss must be one of {sorted(_RANKING_LOSSES)}, got {ranking_loss!r}"
            )
        self._ranking_loss = _RANKING_LOSSES[ranking_loss]
        pairs = np.asarray(pairs)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        targets = np.asarray(targets, dtype=np.float64).reshape(-1)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
            raise ValueError(
                f"pairs must be integer positions (n, 2), got {pairs.dtype} {pairs.shape}"
            )
        if len(targets) != len(pairs):
            raise ValueError(
                f"need one target per pair: {len(pairs)} pairs, {len(targets)} targets"
            )
        outside = np.flatnonzero(((pairs < 0) | (pairs >= n_segments)).any(axis=1))
        if len(outside):
            raise ValueError(
                f"pairs[{outside[0]}] = {pairs[outside[0]].tolist()} is out of range: there are "
                f"{n_segments} segments, so positions must be in 0..{n_segments - 1}"
            )
        same = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
        if len(same):
            raise ValueError(f"pairs[{same[0]}] compares segment {pairs[same[0], 0]} with itself")
        bad = np.flatnonzero(~((targets >= 0) & (targets <= 1)))
        if len(bad):
            raise ValueError(
                f"targets[{bad[0]}] = {targets[bad[0]]}: targets are the probability that the left "
                "is preferred, in [0, 1]; leave incomparable judgments out of training"
            )
        self.pairs = pairs.astype(np.int64)
        self.targets = targets
        self.rankings: list[np.ndarray] = []
        for i, ranking in enumerate(rankings):
            order = np.asarray(ranking, dtype=np.int64)
            if order.ndim != 1 or len(order) < 2 or len(np.unique(order)) != len(order):
                raise ValueError(
                    f"rankings[{i}] = {list(ranking)} must list at least 2 distinct segments"
                )
            if order.min() < 0 or order.max() >= n_segments:
                raise ValueError(
                    f"rankings[{i}] = {order.tolist()} is out of range: there are {n_segments} "
                    f"segments, so positions must be in 0..{n_segments - 1}"
                )
            self.rankings.append(order)
        self.n_pairs = len(self.pairs)
        self.n = self.n_pairs + len(self.rankings)
        # Rankings grouped by K, so a batch gathers each group's rows without a Python loop.
        self._k = np.array([len(r) for r in self.rankings], dtype=np.int64)
        self._row = np.zeros(len(self.rankings), dtype=np.int64)
        self._by_k: dict[int, np.ndarray] = {}
        for k in np.unique(self._k):
            members = np.flatnonzero(self._k == k)
            self._row[members] = np.arange(len(members))
            self._by_k[int(k)] = np.stack([self.rankings[i] for i in members])

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """The segment positions that judgments ``ids`` ``(b,)`` compare, repeats kept, flat."""
        pair_ids = ids[ids < self.n_pairs]
        ranking_ids = ids[ids >= self.n_pairs] - self.n_pairs
        parts = [self.pairs[pair_ids].ravel()]
        parts += [self.rankings[i] for i in ranking_ids]
        return np.concatenate(parts)

    def losses(
        self, ids: np.ndarray, returns: Callable[[np.ndarray], Tensor], eps: float
    ) -> tuple[Tensor, np.ndarray]:
        """Every member's loss on judgments ``ids``.

        Args:
            ids: Judgment ids ``(b,)``.
            returns: Maps segment positions ``(n,)`` to member returns ``(members, n)``.
            eps: Label noise.

        Returns:
            Losses ``(members, b)`` and the judgment ids ``(b,)`` in the order of the losses.
        """
        pair_ids = ids[ids < self.n_pairs]
        ranking_ids = ids[ids >= self.n_pairs] - self.n_pairs
        blocks, order = [self.pairs[pair_ids]], [pair_ids]
        for k in np.unique(self._k[ranking_ids]):
            chosen = ranking_ids[self._k[ranking_ids] == k]
            blocks.append(self._by_k[int(k)][self._row[chosen]])
            order.append(chosen + self.n_pairs)
        r = returns(np.concatenate([b.ravel() for b in blocks]))
        m = r.shape[0]
        pair_r = r[:, : 2 * len(pair_ids)].reshape(m, -1, 2)
        targets = torch.as_tensor(self.targets[pair_ids], dtype=r.dtype, device=r.device)
        parts = [bradley_terry_loss(pair_r[..., 0] - pair_r[..., 1], targets, eps)]
        used = 2 * len(pair_ids)
        for block in blocks[1:]:
            parts.append(
                self._ranking_loss(r[:, used : used + block.size].reshape(m, *block.shape), eps)
            )
            used += block.size
        return torch.cat(parts, dim=1), np.concatenate(order)
