"""The learner: fits a reward-model ensemble to judgments with the Bradley-Terry loss.

Pairwise judgments train with the Bradley-Terry cross-entropy, whose target is
the probability that the left segment is preferred (1, 0, or 0.5 for "equal"),
K-wise rankings with the Plackett-Luce loss. Both assume the judge answers at
random with probability ``label_noise`` (Christiano et al. 2017), which keeps the
loss bounded however confident the model gets (:mod:`prefgym.reward._losses`).

Each member trains on its own bootstrap resample of the training judgments,
realised as per-judgment multiplicities, so that one minibatch serves all
members with a single forward pass over the minibatch's distinct segments.
A held-out split (the same for all members) stops training early and tunes the
L2 coefficient between calls: it doubles when the validation loss exceeds 1.5
times the training loss and halves when it falls below 1.1 times.

One module, longer than most: the split, the bootstrap, the minibatch loop, early stopping
and the L2 tuning are one fitting procedure whose parts share its state; the losses live
in ``_losses``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from prefgym.reward._divergence import (
    DivergenceError,
    all_finite,
    check_finite_inputs,
    finite_tensors,
)
from prefgym.reward._ensemble import RewardEnsemble
from prefgym.reward._losses import (
    Judgments,
)
from prefgym.reward.config import LearnerConfig
from prefgym.segments import Segment

_EVAL_CHUNK = 2048
"""Judgments per forward pass when evaluating losses without gradients."""


@dataclass(frozen=True)
class FitReport:
    """What one call of the learner did.

    Held-out metrics are NaN when there were too few judgments to hold any out
    (fewer than ``min_val`` at ``val_fraction``, e.g. 1 to 4 judgments).
    """

    train_loss: float
    """Mean over members of each member's loss on its own (resampled) training judgments."""
    val_loss: float
    """Mean over members of the loss on the held-out judgments; NaN without a split."""
    val_accuracy: float
    """Held-out non-equal pairs whose label the ensemble reward agrees with; NaN if none."""
    return_correlation: float
    """Pearson r of the ensemble's segment returns and the true returns; NaN if undefined."""
    weight_decay: float
    """L2 coefficient used in this call."""
    next_weight_decay: float
    """L2 coefficient after tuning, used by the next call."""
    epochs: int
    """Epochs run."""
    n_train: int
    """Training judgments (pairs and rankings)."""
    n_val: int
    """Held-out judgments."""
    seconds: float
    """Wall time of the call."""

    def row(self) -> dict[str, float]:
        """The report as ``rm_*`` columns of a run's metrics log."""
        return {
            "rm_train_loss": self.train_loss,
            "rm_val_loss": self.val_loss,
            "rm_val_accuracy": self.val_accuracy,
            "rm_return_correlation": self.return_correlation,
            "rm_weight_decay": self.weight_decay,
            "rm_fit_seconds": self.seconds,
            "rm_epochs": self.epochs,
        }


def _scores_alone(ensemble: RewardEnsemble) -> bool:
    """Whether each member may score its own subset of a minibatch's segments.

    True for MLP members: an MLP scores each segment on its own and deterministically. Other
    members may draw at random (dropout) or normalise over the batch, and
    share one pass over the minibatch as before.
    """
    return ensemble.n_members > 1 and all(m.scores_alone for m in ensemble.members)


class _Problem:
    """One call's data on the ensemble's device, and the losses computed from it.

    A judgment outside a member's bootstrap resample (multiplicity 0) adds
    nothing to that member's loss, so MLP members score only the segments of
    their weighted judgments: about a third fewer forward and backward passes
    with three members, and the same losses and gradients.
    """

    def __init__(
        self,
        ensemble: RewardEnsemble,
        segments: Sequence[Segment],
        judgments: Judgments,
        weights: np.ndarray,
        eps: float,
    ) -> None:
        lengths = np.array([s.length for s in segments])
        if len(lengths) and (lengths != lengths[0]).any():
            other = int(np.flatnonzero(lengths != lengths[0])[0])
            raise ValueError(
                f"the learner batches segments of one length: segment 0 has {lengths[0]} steps "
                f"but segment {other} has {lengths[other]}; cut all segments with the same length"
            )
        device = ensemble.device
        self.ensemble, self.judgments, self.weights, self.eps = ensemble, judgments, weights, eps
        self.observations = torch.as_tensor(
            np.stack([s.observations for s in segments]), device=device
        )
        self.actions = torch.as_tensor(np.stack([s.actions for s in segments]), device=device)
        self._weights = torch.as_tensor(weights, dtype=torch.float32, device=device)
        self._per_member = _scores_alone(ensemble)

    def _segments(self, positions: np.ndarray) -> tuple[Tensor, Tensor]:
        """Observations and actions of segments ``positions`` ``(n,)``."""
        index = torch.from_numpy(positions).to(self.ensemble.device)
        return self.observations[index], self.actions[index]

    def returns(self, positions: np.ndarray) -> Tensor:
        """Raw member returns ``(members, n)`` of segments ``positions`` ``(n,)``.

        One forward pass over the distinct segments, whatever the repeats.
        """
        unique, inverse = np.unique(positions, return_inverse=True)
        r = self.ensemble.member_returns(*self._segments(unique), normalised=False)
        return r[:, torch.as_tensor(inverse.reshape(-1), device=self.ensemble.device)]

    def weighted_returns(self, ids: np.ndarray) -> Callable[[np.ndarray], Tensor]:
        """:meth:`returns` for judgments ``ids`` whose losses will be bootstrap-weighted.

        Where members may score their own subsets, each skips the segments that
        only its unweighted judgments compare; their returns read 0, and their losses
        are multiplied by 0.
        """
        if not self._per_member:
            return self.returns
        device = self.ensemble.device

        def returns(positions: np.ndarray) -> Tensor:
            needs = [
                np.unique(self.judgments.positions(ids[self.weights[m, ids] > 0]))
                for m in range(self.ensemble.n_members)
            ]
            if not any(len(needed) for needed in needs):  # nothing weighs: score as usual
                return self.returns(positions)
            unique, inverse = np.unique(positions, return_inverse=True)
            scored = [
                member(*self._segments(needed)).sum(-1) if len(needed) else None
                for member, needed in zip(self.ensemble.members, needs, strict=True)
            ]
            zeros = next(r for r in scored if r is not None).new_zeros(len(unique))
            rows = []
            for needed, r in zip(needs, scored, strict=True):
                if r is None:
                    rows.append(zeros)
                else:
                    where = torch.as_tensor(np.searchsorted(unique, needed), device=device)
                    rows.append(zeros.index_copy(0, where, r))
            r = torch.stack(rows)
            return r[:, torch.as_tensor(inverse.reshape(-1), device=device)]

        return returns

    def batch_loss(self, ids: np.ndarray) -> Tensor:
        """Sum over members of each member's bootstrap-weighted mean loss on judgments ``ids``."""
        losses, order = self.judgments.losses(ids, self.weighted_returns(ids), self.eps)
        return (self._weights[:, order] * losses).sum() / len(ids)

    @torch.no_grad()
    def mean_loss(self, ids: np.ndarray, *, weighted: bool) -> float:
        """Mean over members of the (bootstrap-weighted, if ``weighted``) loss on ``ids``."""
        total = torch.zeros(self.ensemble.n_members, dtype=torch.float64)
        for i in range(0, len(ids), _EVAL_CHUNK):
            chunk = ids[i : i + _EVAL_CHUNK]
            returns = self.weighted_returns(chunk) if weighted else self.returns
            losses, order = self.judgments.losses(chunk, returns, self.eps)
            w = self._weights[:, order] if weighted else torch.ones_like(losses)
            total += (w * losses).sum(1).double().cpu()
        counts = self.weights[:, ids].sum(1) if weighted else np.full(len(total), len(ids))
        return float(np.mean(total.numpy() / np.maximum(counts, 1e-12)))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation, NaN when it is undefined (fewer than 2 points, a constant, a NaN)."""
    if len(x) < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator > 0 else math.nan


class Learner:
    """Fits reward-model ensembles; keeps the tuned L2 coefficient and Adam state across calls.

    Calling :meth:`fit` again on the same ensemble warm-starts from its current
    weights and optimiser state, as the refits of the Christiano loop do.
    """

    def __init__(
        self, config: LearnerConfig | None = None, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        """Create a learner.

        Args:
            config: How to fit; None means the defaults.
            clock: Seconds since some fixed point, for the report's wall time.
        """
        self.config = config if config is not None else LearnerConfig()
        self.weight_decay = self.config.weight_decay
        """The L2 coefficient the next call uses."""
        self._clock = clock
        self._optimizer: torch.optim.Optimizer | None = None
        self._owner: RewardEnsemble | None = None
        self.steps = 0
        """Adam steps this learner has taken over all calls (see ``min_steps``); a resumed
        run sets it back to what it was."""

    def state(self) -> dict[str, float | int]:
        """What a resumed run needs to fit as this learner would: the tuned L2 and the step count.

        Adam's moments are not kept: a resumed run's first fit starts them afresh.
        """
        return {"weight_decay": self.weight_decay, "steps": self.steps}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (read from a run's store).

        Raises:
            ValueError: A value is missing or is not a finite number of the right kind.
        """
        weight_decay, steps = state.get("weight_decay"), state.get("steps")
        if not isinstance(weight_decay, (int, float)) or not math.isfinite(weight_decay):
            raise ValueError(
                f"learner state: weight_decay must be a finite number, got {weight_decay!r}"
            )
        if weight_decay < 0:
            raise ValueError(f"learner state: weight_decay must be >= 0, got {weight_decay}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"learner state: steps must be an integer >= 0, got {steps!r}")
        self.weight_decay, self.steps = float(weight_decay), steps

    def _optimizer_for(self, ensemble: RewardEnsemble) -> torch.optim.Optimizer:
        if self._optimizer is None or self._owner is not ensemble:
            self._optimizer = torch.optim.Adam(
                ensemble.parameters(), lr=self.config.lr, foreach=True
            )
            self._owner = ensemble
        for group in self._optimizer.param_groups:
            group["weight_decay"] = self.weight_decay
        return self._optimizer

    def _split(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n_val = int(round(n * self.config.val_fraction))
        if n_val < self.config.min_val or n - n_val < 1:
            n_val = 0
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def fit(
        self,
        ensemble: RewardEnsemble,
        segments: Sequence[Segment],
        pairs: np.ndarray,
        targets: np.ndarray,
        rankings: Sequence[Sequence[int]] = (),
        *,
        rng: np.random.Generator,
    ) -> FitReport:
        """Fit ``ensemble`` to pairwise judgments and rankings of ``segments``.

        Training stops early once the held-out loss has not improved for
        ``patience`` epochs, and the best weights are restored. With too few
        judgments to hold any out (see ``min_val``), every judgment trains for
        ``max_epochs`` epochs, the L2 coefficient is left alone, and the held-out
        metrics of the report are NaN. Held-out accuracy counts non-equal pairs
        only; held-out rankings count toward the validation loss.

        Args:
            ensemble: The reward model, trained in place from its current weights.
            segments: The judged segments, all of one length.
            pairs: Positions into ``segments`` of the compared pairs, ``(n, 2)``.
            targets: Probability that the left of each pair is preferred, ``(n,)``.
            rankings: Positions into ``segments``, best first, of each K-wise ranking.
            rng: Source of the split, the bootstrap resamples and the minibatch order.

        Returns:
            Losses, held-out accuracy, correlation with the true return and the L2 used.

        Raises:
            ValueError: Bad judgments, or segments whose observations or actions
                are not finite (checked before any step).
            DivergenceError: The loss or a weight became NaN or infinite during the
                fit; the ensemble is left with its weights from before that step.
        """
        start = self._clock()
        judgments = Judgments(
            len(segments), pairs, targets, rankings, ranking_loss=self.config.ranking_loss
        )
        if judgments.n == 0:
            raise ValueError("fit needs at least one judgment, got no pairs and no rankings")
        check_finite_inputs(segments)
        if not all_finite(finite_tensors(ensemble)):
            raise ValueError(
                "the ensemble's weights hold NaN or inf before the fit; load a checkpoint "
                "written before it went wrong, or build a fresh ensemble"
            )
        if self.config.standardise_inputs:
            ensemble.standardise_inputs(segments)
        train_ids, val_ids = self._split(judgments.n, rng)
        weights = np.zeros((ensemble.n_members, judgments.n))
        for m in range(ensemble.n_members):
            if self.config.bootstrap:
                draws = rng.integers(0, len(train_ids), size=len(train_ids))
                weights[m, train_ids] = np.bincount(draws, minlength=len(train_ids))
            else:
                weights[m, train_ids] = 1.0
        problem = _Problem(ensemble, segments, judgments, weights, self.config.label_noise)
        weight_decay = self.weight_decay
        epochs = self._train(problem, train_ids, val_ids, rng)
        train_loss = problem.mean_loss(train_ids, weighted=True)
        val_loss = problem.mean_loss(val_ids, weighted=False) if len(val_ids) else math.nan
        if len(val_ids) and self.config.tune_weight_decay:
            self.weight_decay = self._tuned(weight_decay, train_loss, val_loss)
        if self.config.normalise:
            ensemble.normalise(segments)
        predicted = ensemble.segment_returns(segments).mean(0)
        true = np.array([s.true_return for s in segments])
        return FitReport(
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=_accuracy(judgments, val_ids, predicted),
            return_correlation=_pearson(predicted, true),
            weight_decay=weight_decay,
            next_weight_decay=self.weight_decay,
            epochs=epochs,
            n_train=len(train_ids),
            n_val=len(val_ids),
            seconds=self._clock() - start,
        )

    def _train(
        self,
        problem: _Problem,
        train_ids: np.ndarray,
        val_ids: np.ndarray,
        rng: np.random.Generator,
    ) -> int:
        """Minibatch Adam with early stopping on the held-out loss; returns the epochs run."""
        ensemble, config = problem.ensemble, self.config
        optimizer = self._optimizer_for(ensemble)
        # members scored apart may weigh no judgment of a minibatch; they still take their step
        may_go_unscored = [
            p
            for group in optimizer.param_groups
            for p in group["params"]
            if problem._per_member and p.requires_grad
        ]
        live = finite_tensors(ensemble)
        saved = [t.detach().clone() for t in live]  # the weights before the current step
        best_loss, best_state, waited, epochs = math.inf, None, 0, 0
        while epochs < config.max_epochs or self.steps < config.min_steps:
            epochs += 1
            ensemble.train()
            shuffled = rng.permutation(train_ids)
            for i in range(0, len(shuffled), config.batch_size):
                with torch.no_grad():
                    torch._foreach_copy_(saved, live)
                loss = problem.batch_loss(shuffled[i : i + config.batch_size])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for parameter in may_go_unscored:
                    if parameter.grad is None:
                        parameter.grad = torch.zeros_like(parameter)
                try:
                    optimizer.step()
                except RuntimeError as error:  # Adam's step size overflows float32
                    if "overflow" not in str(error):
                        raise
                    self._diverged(live, saved, float(loss.detach()), epochs)
                if not all_finite(live, loss.detach()):
                    self._diverged(live, saved, float(loss.detach()), epochs)
                self.steps += 1
            ensemble.eval()
            if len(val_ids) == 0 or self.steps < config.min_steps:
                continue
            val_loss = problem.mean_loss(val_ids, weighted=False)
            if val_loss < best_loss:
                best_loss, waited = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in ensemble.state_dict().items()}
            else:
                waited += 1
                if waited >= config.patience:
                    break
        if best_state is not None:
            ensemble.load_state_dict(best_state)
        return epochs

    def _diverged(
        self, live: list[Tensor], saved: list[Tensor], loss: float, epoch: int
    ) -> NoReturn:
        """Put back the weights from before the step, drop Adam's state, and raise."""
        with torch.no_grad():
            torch._foreach_copy_(live, saved)
        self._optimizer, self._owner = None, None  # its moments may hold the NaN too
        what = f"the loss is {loss}" if not math.isfinite(loss) else "a weight became non-finite"
        raise DivergenceError(
            f"the reward-model fit diverged at Adam step {self.steps + 1} (epoch {epoch}): "
            f"{what}. The weights from before that step are restored. Likely causes: "
            f"non-finite inputs or targets, or too high a learning rate (lr={self.config.lr}); "
            "lower LearnerConfig.lr"
        )

    def _tuned(self, weight_decay: float, train_loss: float, val_loss: float) -> float:
        """The L2 coefficient moved toward keeping val / train loss inside the band."""
        if not (math.isfinite(val_loss) and train_loss > 0):
            return weight_decay
        low, high = self.config.ratio_band
        ratio = val_loss / train_loss
        if ratio > high:
            weight_decay *= self.config.weight_decay_factor
        elif ratio < low:
            weight_decay /= self.config.weight_decay_factor
        least, most = self.config.weight_decay_range
        return min(max(weight_decay, least), most)


def _accuracy(judgments: Judgments, val_ids: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of held-out non-equal pairs whose predicted return gap has the label's sign."""
    ids = val_ids[val_ids < judgments.n_pairs]
    ids = ids[judgments.targets[ids] != 0.5]
    if len(ids) == 0:
        return math.nan
    gap = predicted[judgments.pairs[ids, 0]] - predicted[judgments.pairs[ids, 1]]
    return float(np.mean(np.where(judgments.targets[ids] > 0.5, gap > 0, gap < 0)))


def fit(
    ensemble: RewardEnsemble,
    segments: Sequence[Segment],
    pairs: np.ndarray,
    targets: np.ndarray,
    rankings: Sequence[Sequence[int]] = (),
    config: LearnerConfig | None = None,
    *,
    rng: np.random.Generator,
) -> FitReport:
    """Fit ``ensemble`` once with a fresh :class:`Learner` (see :meth:`Learner.fit`).

    The tuned L2 coefficient comes back as ``report.next_weight_decay``; pass it
    on with ``dataclasses.replace(config, weight_decay=...)``, or keep a
    :class:`Learner` across calls.
    """
    return Learner(config).fit(ensemble, segments, pairs, targets, rankings, rng=rng)
