from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.agents.text import (
    AdaptiveKLController,
    FixedKLController,
    gae,
    kl_penalised_rewards,
    last_token_index,
    masked_mean,
    masked_var,
    policy_loss,
    value_loss,
    whiten,
)

# No deadline: the machine is shared and the first call warms torch up.
relaxed = settings(deadline=None, max_examples=50)
finite = st.floats(-10.0, 10.0, allow_nan=False, width=32)


@st.composite
def batches(draw: st.DrawFn, min_real: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``(B, R)`` and a prefix mask with at least ``min_real`` real tokens per row."""
    b = draw(st.integers(1, 5))
    r = draw(st.integers(max(min_real, 1), 7))
    values = torch.tensor(draw(st.lists(finite, min_size=b * r, max_size=b * r))).view(b, r)
    lengths = draw(st.lists(st.integers(min_real, r), min_size=b, max_size=b))
    mask = (torch.arange(r)[None, :] < torch.tensor(lengths)[:, None]).float()
    return values, mask


@relaxed
@given(batches(), finite)
def test_masked_mean_ignores_masked_entries(batch: tuple, junk: float) -> None:
    x, mask = batch
    polluted = torch.where(mask.bool(), x, torch.full_like(x, junk))
    torch.testing.assert_close(masked_mean(polluted, mask), masked_mean(x, mask))
    torch.testing.assert_close(masked_mean(x, mask), x[mask.bool()].mean())


def test_masked_mean_over_a_dimension() -> None:
    x = torch.tensor([[1.0, 3.0, 100.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert masked_mean(x, mask, dim=1).tolist() == [2.0, 2.0]


@relaxed
@given(batches())
def test_masked_var_matches_torch(batch: tuple) -> None:
    x, mask = batch
    real = x[mask.bool()]
    if real.numel() < 2:
        with pytest.raises(ValueError, match="unbiased"):
            masked_var(x, mask)
        return
    torch.testing.assert_close(masked_var(x, mask), real.var(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        masked_var(x, mask, unbiased=False), real.var(unbiased=False), atol=1e-4, rtol=1e-4
    )


@relaxed
@given(batches())
def test_whitening_gives_mean_zero_and_std_one_under_the_mask(batch: tuple) -> None:
    x, mask = batch
    real = x[mask.bool()]
    if real.numel() < 2 or real.std() < 1e-2:
        return
    out = whiten(x, mask)[mask.bool()]
    assert abs(float(out.mean())) < 1e-4
    assert abs(float(out.std()) - 1.0) < 1e-3
    kept = whiten(x, mask, shift_mean=False)[mask.bool()]
    torch.testing.assert_close(kept.mean(), real.mean(), atol=1e-4, rtol=1e-4)
    assert abs(float(kept.std()) - 1.0) < 1e-3


def test_whitening_a_single_entry_gives_zero() -> None:
    assert whiten(torch.tensor([[3.0, 9.0]]), torch.tensor([[1.0, 0.0]]))[0, 0] == 0.0


def test_kl_penalty_on_every_token_and_score_on_the_last_real_one() -> None:
    logprobs = torch.tensor([[-1.0, -1.0, -1.0, -1.0], [-2.0, -2.0, -2.0, -2.0]])
    ref = torch.tensor([[-1.5, -0.5, -1.0, -9.0], [-1.0, -1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])  # row 1 never ended
    scores = torch.tensor([10.0, 20.0])
    rewards, kl = kl_penalised_rewards(logprobs, ref, scores, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.5, -0.5, 0.0, 0.0], [-1.0] * 4]))
    expected = torch.tensor([[-0.05, 0.05, 10.0, 0.0], [0.1, 0.1, 0.1, 20.1]])
    torch.testing.assert_close(rewards, expected)
    assert last_token_index(mask).tolist() == [2, 3]


@relaxed
@given(batches(), st.floats(0.0, 2.0))
def test_rewards_sum_to_score_minus_beta_kl(batch: tuple, beta: float) -> None:
    logprobs, mask = batch
    ref = logprobs.flip(1)
    scores = torch.arange(len(mask), dtype=torch.float)
    rewards, kl = kl_penalised_rewards(logprobs, ref, scores, mask, kl_coef=beta)
    torch.testing.assert_close(rewards.sum(1), scores - beta * kl.sum(1), atol=1e-3, rtol=1e-4)
    assert torch.all(rewards[mask == 0] == 0) and torch.all(kl[mask == 0] == 0)


def test_gae_hand_computed_case() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 5.0]])
    values = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # row 0: d2 = 1 - .3 = .7; d1 = .3 - .2 = .1; d0 = .2 - .1 = .1
    a2, a1 = 0.7, 0.1 + 0.95 * 0.7
    a0 = 0.1 + 0.95 * a1
    # row 1 ends at t=1: d1 = 2 - .5 = 1.5; d0 = .5 - .5 = 0
    expected = torch.tensor([[a0, a1, a2], [0.95 * 1.5, 1.5, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(
        returns, torch.tensor([[a0 + 0.1, a1 + 0.2, 1.0], [1.925, 2.0, 0.0]])
    )


@relaxed
@given(batches())
def test_gae_with_lambda_one_returns_reward_to_go(batch: tuple) -> None:
    rewards, mask = batch
    values = rewards.roll(1, dims=1) * 0.5  # arbitrary values must not matter
    _, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    to_go = (rewards * mask).flip(1).cumsum(1).flip(1) * mask
    torch.testing.assert_close(returns, to_go, atol=1e-3, rtol=1e-4)


def test_policy_loss_at_ratio_one_is_minus_the_mean_advantage() -> None:
    logprobs = torch.tensor([[-1.0, -2.0, -3.0]])
    advantages = torch.tensor([[1.0, -3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, clip_fraction, approx_kl = policy_loss(logprobs, logprobs, advantages, mask, 0.2)
    assert loss.item() == pytest.approx(1.0)
    assert clip_fraction.item() == 0.0 and approx_kl.item() == 0.0


@pytest.mark.parametrize(
    ("advantage", "log_ratio", "clipped"),
    [
        (1.0, math.log(1.5), True),  # gain beyond 1 + eps: no more push
        (-1.0, math.log(1.5), False),  # a loss is never clipped away
        (-1.0, math.log(0.5), True),
        (1.0, math.log(0.5), False),
        (1.0, math.log(1.1), False),  # inside the range
    ],
)
def test_policy_loss_clipping(advantage: float, log_ratio: float, clipped: bool) -> None:
    old = torch.tensor([[-1.0]])
    new = (old + log_ratio).requires_grad_(True)
    loss, clip_fraction, _ = policy_loss(
        new, old, torch.tensor([[advantage]]), torch.ones(1, 1), 0.2
    )
    loss.backward()
    assert new.grad is not None
    assert clip_fraction.item() == float(clipped)
    assert (new.grad.abs().item() == 0.0) == clipped


@relaxed
@given(finite, finite, finite)
def test_policy_loss_is_pessimistic(log_ratio: float, advantage: float, old: float) -> None:
    log_ratio = max(min(log_ratio, 3.0), -3.0)
    lp, adv, one = torch.tensor([[old + log_ratio]]), torch.tensor([[advantage]]), torch.ones(1, 1)
    loss, _, approx_kl = policy_loss(lp, torch.tensor([[old]]), adv, one, 0.2)
    assert loss.item() >= -advantage * math.exp(log_ratio) - 1e-3 * (1 + abs(advantage))
    assert approx_kl.item() >= -1e-6


def test_value_loss_is_half_mse_inside_the_clip_range() -> None:
    values = torch.tensor([[0.1, -0.1, 7.0]])
    returns = torch.tensor([[1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, clip_fraction = value_loss(values, torch.zeros(1, 3), returns, mask, clip_range=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.81 + 1.21) / 2)
    assert clip_fraction.item() == 0.0


def test_value_loss_takes_the_worse_of_clipped_and_unclipped() -> None:
    values = torch.tensor([[1.0]], requires_grad=True)
    loss, clip_fraction = value_loss(
        values, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2
    )
    assert loss.item() == pytest.approx(0.5 * 0.8**2)  # the clipped 0.2 misses by 0.8
    assert clip_fraction.item() == 1.0
    loss.backward()
    assert values.grad is not None and values.grad.item() == 0.0


@pytest.mark.parametrize("n_samples", [1, 16, 64, 10_000])
def test_adaptive_controller_moves_with_samples_over_horizon(n_samples: int) -> None:
    up = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    up.update(current_kl=600.0, n_samples=n_samples)  # error clipped to +0.2
    assert up.value == pytest.approx(0.1 * (1 + 0.2 * n_samples / 10_000))
    down = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    down.update(current_kl=0.0, n_samples=n_samples)  # error clipped to -0.2
    assert down.value == pytest.approx(0.1 * (1 - 0.2 * n_samples / 10_000))


@relaxed
@given(st.floats(0.0, 50.0), st.integers(1, 512))
def test_adaptive_controller_moves_towards_the_target(kl: float, n: int) -> None:
    controller = AdaptiveKLController(0.05, target=6.0, horizon=1000)
    controller.update(kl, n)
    if kl > 6.0:
        assert controller.value > 0.05
    elif kl < 6.0:
        assert controller.value < 0.05
    error = min(max(kl / 6.0 - 1, -0.2), 0.2)
    assert controller.value == pytest.approx(0.05 * (1 + error * n / 1000))


def test_fixed_controller_stays_put() -> None:
    controller = FixedKLController(0.05)
    controller.update(1e6, 64)
    assert controller.value == 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"init_coef": 0.0, "target": 6.0, "horizon": 10}, "init_coef"),
        ({"init_coef": 0.1, "target": -1.0, "horizon": 10}, "target"),
        ({"init_coef": 0.1, "target": 6.0, "horizon": 0}, "horizon"),
    ],
)
def test_adaptive_controller_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveKLController(**kwargs)
