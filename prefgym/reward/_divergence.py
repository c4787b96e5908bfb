"""Divergence of a reward-model fit: non-finite inputs refused up front, non-finite steps caught.

One NaN in one observation used to turn every weight NaN while the fit returned
normally. The learner checks its inputs with :func:`check_finite_inputs`, and
after every Adam step checks the loss and weights with :func:`all_finite`; when a
step goes non-finite it puts back the weights from before it and raises
:class:`DivergenceError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from prefgym.errors import Failure
from prefgym.reward._ensemble import RewardEnsemble
from prefgym.segments import Segment, first_non_finite


class DivergenceError(Failure):
    """A fit's loss or weights stopped being finite; the ensemble keeps its last finite weights."""


def check_finite_inputs(segments: Sequence[Segment]) -> None:
    """Refuse segments whose observations or actions hold NaN or an infinity."""
    for i, segment in enumerate(segments):
        bad = first_non_finite(segment, ("observations", "actions"))
        if bad is not None:
            raise ValueError(
                f"segment {i} (env_id {segment.env_id!r}) has {bad.value} in its "
                f"{bad.array} at index {list(bad.index)}; a reward model fits finite inputs "
                "only: drop the segment, or find where the NaN or inf came from"
            )


def finite_tensors(ensemble: RewardEnsemble) -> list[Tensor]:
    """The ensemble's floating-point weights and buffers, sharing their storage."""
    return [t for t in ensemble.state_dict().values() if t.is_floating_point()]


def all_finite(tensors: Sequence[Tensor], *also: Tensor) -> bool:
    """Whether every element of every tensor is finite, in a few fused ops and one sync.

    ``0 * x`` is 0 for a finite ``x`` and NaN for NaN or an infinity, so the norms of the
    zeroed tensors are all 0 exactly when every element is finite (however large).
    """
    tensors = [*tensors, *also]
    if not tensors:
        return True
    norms = torch._foreach_norm(torch._foreach_mul(tensors, 0.0))
    return bool(torch.isfinite(torch.stack(norms)).all())
