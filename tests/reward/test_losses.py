from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.reward._losses import (
    Judgments,
    bradley_terry_loss,
    plackett_luce_loss,
    ranking_pairs_loss,
)

finite = st.floats(-50, 50, allow_nan=False)
noise = st.floats(0.0, 0.5, exclude_max=True)


@settings(max_examples=50, deadline=None)
@given(target=st.floats(0, 1), eps=noise)
def test_bradley_terry_loss_is_log_two_at_zero_logit(target: float, eps: float) -> None:
    targets = torch.tensor([target], dtype=torch.float64)
    loss = bradley_terry_loss(torch.zeros(1, dtype=torch.float64), targets, eps)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(left=finite, right=finite, eps=noise)
def test_bradley_terry_probabilities_of_both_orders_sum_to_one(
    left: float, right: float, eps: float
) -> None:
    logit = torch.tensor([left - right], dtype=torch.float64)
    p_left = torch.exp(-bradley_terry_loss(logit, torch.ones(1), eps))
    p_right = torch.exp(-bradley_terry_loss(-logit, torch.ones(1), eps))
    assert (p_left + p_right).item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_label_noise_bounds_the_loss_at_huge_logits(dtype: torch.dtype) -> None:
    eps = 0.1
    logits = torch.tensor([1e30, -1e30, 1e4, -1e4], dtype=dtype, requires_grad=True)
    targets = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    loss = bradley_terry_loss(logits, targets, eps)
    assert torch.isfinite(loss).all()
    np.testing.assert_allclose(loss.detach().numpy(), -math.log(eps / 2), rtol=1e-6)
    loss.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # Without noise, the same mistakes cost (linearly) unbounded loss.
    assert bradley_terry_loss(logits.detach()[2:], targets[2:]).min() > 1e3
    ranked = plackett_luce_loss(torch.tensor([[-1e30, 0.0, 1e30]], dtype=dtype), eps)
    assert ranked.item() == pytest.approx(-math.log(eps / 6), rel=1e-6)


def test_soft_targets_mix_the_two_cross_entropies() -> None:
    logits = torch.tensor([0.7, -2.0], dtype=torch.float64)
    mixed = bradley_terry_loss(logits, torch.full((2,), 0.3), 0.05)
    left = bradley_terry_loss(logits, torch.ones(2), 0.05)
    right = bradley_terry_loss(logits, torch.zeros(2), 0.05)
    torch.testing.assert_close(mixed, 0.3 * left + 0.7 * right)
    p = 0.95 * torch.sigmoid(logits) + 0.025
    torch.testing.assert_close(left, -torch.log(p))


@settings(max_examples=50, deadline=None)
@given(first=finite, second=finite, eps=noise)
def test_plackett_luce_for_two_equals_bradley_terry(
    first: float, second: float, eps: float
) -> None:
    returns = torch.tensor([[first, second]], dtype=torch.float64)
    expected = bradley_terry_loss(returns[:, 0] - returns[:, 1], torch.ones(1), eps)
    torch.testing.assert_close(plackett_luce_loss(returns, eps), expected)


def test_plackett_luce_for_three_matches_the_product_formula() -> None:
    a, b, c = 0.3, -1.2, 2.0
    loss = plackett_luce_loss(torch.tensor([a, b, c], dtype=torch.float64))
    p = (
        math.exp(a)
        / (math.exp(a) + math.exp(b) + math.exp(c))
        * math.exp(b)
        / (math.exp(b) + math.exp(c))
    )
    assert loss.item() == pytest.approx(-math.log(p))


def test_mixed_batches_line_each_loss_up_with_its_judgment() -> None:
    returns = torch.tensor(
        [[0.5, -1.0, 2.0, 0.0, 1.5], [1.0, 0.2, -0.3, 0.8, 0.0]], dtype=torch.float64
    )
    pairs, targets = np.array([[0, 1], [3, 2], [4, 0]]), np.array([1.0, 0.5, 0.0])
    rankings = [[2, 0, 1], [4, 3], [1, 2, 3, 4], [0, 4, 2]]
    judgments = Judgments(5, pairs, targets, rankings)
    ids = np.array([5, 0, 4, 6, 2, 3, 1])
    losses, order = judgments.losses(ids, lambda positions: returns[:, positions], 0.1)
    assert sorted(order.tolist()) == sorted(ids.tolist())
    for column, j in enumerate(order):
        if j < 3:
            left, right = pairs[j]
            expected = bradley_terry_loss(
                returns[:, left] - returns[:, right], torch.tensor(targets[j]), 0.1
            )
        else:
            expected = plackett_luce_loss(returns[:, rankings[j - 3]], 0.1)
        torch.testing.assert_close(losses[:, column], expected)


def test_positions_lists_the_compared_segments() -> None:
    judgments = Judgments(6, np.array([[0, 1], [3, 2]]), np.array([1.0, 0.5]), [[5, 0, 4], [2, 1]])
    assert judgments.positions(np.array([1, 2])).tolist() == [3, 2, 5, 0, 4]
    assert judgments.positions(np.array([3, 0])).tolist() == [0, 1, 2, 1]
    assert judgments.positions(np.array([], dtype=np.int64)).tolist() == []


@given(
    st.lists(st.floats(-5, 5), min_size=2, max_size=6),
    st.sampled_from([0.0, 0.1]),
)
@settings(max_examples=40, deadline=None)
def test_ranking_pairs_loss_averages_the_ordered_pairs(values: list[float], eps: float) -> None:
    r = torch.tensor(values, dtype=torch.float64)
    k = len(values)
    expected = np.mean(
        [
            float(bradley_terry_loss(r[i] - r[j], torch.tensor(1.0, dtype=torch.float64), eps))
            for i in range(k)
            for j in range(i + 1, k)
        ]
    )
    assert float(ranking_pairs_loss(r, eps)) == pytest.approx(expected)


def test_ranking_pairs_loss_for_two_is_bradley_terry_and_batches() -> None:
    r = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    ones = torch.ones(2)
    torch.testing.assert_close(
        ranking_pairs_loss(r, 0.1), bradley_terry_loss(r[:, 0] - r[:, 1], ones, 0.1)
    )


def test_judgments_train_rankings_as_pairs_when_asked() -> None:
    judgments = Judgments(4, np.zeros((0, 2), dtype=np.int64), np.zeros(0), [[0, 1, 2, 3]], "pairs")
    returns = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    losses, _ = judgments.losses(np.array([0]), lambda positions: returns[:, positions], 0.0)
    torch.testing.assert_close(losses[0, 0], ranking_pairs_loss(returns[0], 0.0))
    with pytest.raises(ValueError, match="ranking_loss"):
        Judgments(4, np.zeros((0, 2), dtype=np.int64), np.zeros(0), [], "listwise")  # type: ignore[arg-type]


# --- finite in, finite out; anything else is an error or a NaN, never a quiet number ------

any_finite = st.floats(allow_nan=False, allow_infinity=False)
bounded = st.floats(-1e6, 1e6)
noise_to_one = st.floats(0.0, 1.0, exclude_max=True)


@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(any_finite, min_size=1, max_size=8), target=st.floats(0, 1), eps=noise_to_one
)
def test_finite_logits_give_finite_non_negative_losses(
    logits: list[float], target: float, eps: float
) -> None:
    x = torch.tensor(logits, dtype=torch.float64)
    loss = bradley_terry_loss(x, torch.full_like(x, target), eps)
    assert torch.isfinite(loss).all() and (loss >= -1e-12).all()


@settings(max_examples=40, deadline=None)
@given(
    values=st.integers(2, 6).flatmap(lambda k: st.lists(bounded, min_size=k, max_size=k)),
    eps=noise_to_one,
)
def test_finite_rankings_give_finite_losses(values: list[float], eps: float) -> None:
    r = torch.tensor([values], dtype=torch.float64)
    for loss in (plackett_luce_loss(r, eps), ranking_pairs_loss(r, eps)):
        assert loss.shape == (1,) and torch.isfinite(loss).all() and loss.item() >= -1e-9


@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(bounded, min_size=2, max_size=6),
    at=st.integers(0, 5),
    eps=noise,
)
def test_a_nan_return_is_never_hidden_in_a_finite_loss(
    logits: list[float], at: int, eps: float
) -> None:
    at %= len(logits)
    x = torch.tensor(logits, dtype=torch.float64)
    x[at] = math.nan
    losses = bradley_terry_loss(x, torch.ones_like(x), eps)
    assert torch.isnan(losses[at]) and torch.isfinite(losses[torch.arange(len(x)) != at]).all()
    rankings = x[None]
    assert torch.isnan(plackett_luce_loss(rankings, eps)).all()
    assert torch.isnan(ranking_pairs_loss(rankings, eps)).all()


@pytest.mark.parametrize("loss", [plackett_luce_loss, ranking_pairs_loss])
@pytest.mark.parametrize("shape", [(3, 1), (2, 0), (1,), ()])
def test_a_ranking_of_fewer_than_two_is_refused(loss: object, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"K >= 2, got shape {re.escape(str(shape))}"):
        loss(torch.zeros(shape))  # type: ignore[operator]


@settings(max_examples=30, deadline=None)
@given(
    eps=st.one_of(
        st.floats(max_value=0.0, exclude_max=True), st.floats(min_value=1.0), st.just(math.nan)
    )
)
def test_label_noise_outside_zero_to_one_is_refused_by_value(eps: float) -> None:
    got = re.escape(f"got {eps}")
    for call in (
        lambda: bradley_terry_loss(torch.zeros(2), torch.ones(2), eps),
        lambda: plackett_luce_loss(torch.zeros(1, 3), eps),
        lambda: ranking_pairs_loss(torch.zeros(1, 3), eps),
    ):
        with pytest.raises(ValueError, match=rf"label_noise .* in \[0, 1\); {got}"):
            call()
