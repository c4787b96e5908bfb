"""Non-finite inputs are refused by name; non-finite weights or losses are detected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prefgym.errors import Failure
from prefgym.reward import DivergenceError
from prefgym.reward._divergence import all_finite, check_finite_inputs
from prefgym.segments import Segment


def _segment(value: float, name: str = "observations") -> Segment:
    arrays = {
        "observations": np.zeros((3, 2), dtype=np.float32),
        "actions": np.zeros((3, 1), dtype=np.float32),
        "true_rewards": np.zeros(3, dtype=np.float32),
    }
    arrays[name][1, 0] = value
    return Segment(**arrays, env_id="prefgym/Pendulum-v1")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["observations", "actions"])
def test_non_finite_inputs_are_named(value: float, name: str) -> None:
    check_finite_inputs([_segment(1e30, name)])  # huge but finite is fine
    with pytest.raises(
        ValueError, match=rf"segment 1 .*Pendulum-v1.* in its {name} at index \[1, 0\]"
    ):
        check_finite_inputs([_segment(0.0), _segment(value, name)])


def test_all_finite_sees_one_bad_element_among_many() -> None:
    tensors = [torch.randn(50, 50), torch.full((7,), 3e38)]
    assert all_finite(tensors) and all_finite([])
    for bad in (float("nan"), float("inf"), float("-inf")):
        tensors[0][13, 29] = bad
        assert not all_finite(tensors)
        tensors[0][13, 29] = 0.0
    assert not all_finite(tensors, torch.tensor(float("nan")))  # the loss, passed beside


def test_divergence_is_a_failure_not_bad_input() -> None:
    assert issubclass(DivergenceError, Failure) and not issubclass(DivergenceError, ValueError)
