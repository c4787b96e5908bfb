"""DPO and IPO: loss properties, dataset building, learning, and resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from prefgym.agents.text import (
    DPOConfig,
    DPOTrainer,
    PreferenceDataset,
    dataset_from_judgments,
    dpo_loss,
)
from tests.tiny_models import tiny_gpt2

EOS, PAD = 1, 0

finite = st.floats(-50, 50, allow_nan=False)
betas = st.floats(0.01, 2.0)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _loss(margin: float, beta: float, **kwargs: object) -> float:
    losses, _, _ = dpo_loss(_t(margin), _t(0.0), _t(0.0), _t(0.0), beta=beta, **kwargs)  # type: ignore[arg-type]
    return float(losses[0])


@given(pc=finite, pr=finite, shift=finite, beta=betas, smoothing=st.floats(0, 0.49))
def test_sigmoid_loss_is_log2_at_zero_margin(
    pc: float, pr: float, shift: float, beta: float, smoothing: float
) -> None:
    losses, chosen, rejected = dpo_loss(
        _t(pc), _t(pr), _t(pc - shift), _t(pr - shift), beta=beta, label_smoothing=smoothing
    )
    assert float(losses[0]) == pytest.approx(math.log(2), abs=1e-9)
    assert float(chosen[0]) == pytest.approx(beta * shift)
    assert float(rejected[0]) == pytest.approx(beta * shift)


@given(a=finite, b=finite, beta=betas)
def test_sigmoid_loss_decreases_with_the_margin(a: float, b: float, beta: float) -> None:
    low, high = min(a, b), max(a, b)
    assert _loss(low, beta) >= _loss(high, beta)
    if beta * (high - low) > 1e-6 and beta * high < 30:
        assert _loss(low, beta) > _loss(high, beta)


@given(m=finite, beta=betas)
def test_sigmoid_loss_of_swapped_pair_differs_by_the_scaled_margin(m: float, beta: float) -> None:
    # -log s(x) + log s(-x) = -x: swapping chosen and rejected costs exactly beta * margin.
    assert _loss(m, beta) - _loss(-m, beta) == pytest.approx(-beta * m, abs=1e-9)


@given(beta=betas, smoothing=st.floats(0.01, 0.45), m=finite)
def test_label_smoothing_has_its_minimum_at_the_log_odds(
    beta: float, smoothing: float, m: float
) -> None:
    best = math.log((1 - smoothing) / smoothing) / beta
    assert (
        _loss(best, beta, label_smoothing=smoothing)
        <= _loss(m, beta, label_smoothing=smoothing) + 1e-12
    )


@given(beta=betas, m=finite)
def test_ipo_loss_has_its_minimum_at_half_inverse_beta(beta: float, m: float) -> None:
    target = 1 / (2 * beta)
    assert _loss(target, beta, loss_type="ipo") == pytest.approx(0.0, abs=1e-12)
    assert _loss(m, beta, loss_type="ipo") == pytest.approx((m - target) ** 2)
    assert _loss(target + abs(m), beta, loss_type="ipo") == pytest.approx(
        _loss(target - abs(m), beta, loss_type="ipo")
    )


def test_rewards_carry_no_gradient_and_loss_does() -> None:
    pc = torch.tensor([-3.0, -1.0], requires_grad=True)
    losses, chosen, rejected = dpo_loss(
        pc, _t(-2, -2).float(), _t(-3, -3).float(), _t(-2, -2).float(), beta=0.5
    )
    assert not chosen.requires_grad and not rejected.requires_grad
    losses.sum().backward()
    assert pc.grad is not None and bool((pc.grad < 0).all())  # raising chosen log-probs helps
    assert torch.allclose(chosen, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta": 0.0}, "beta must be > 0"),
        ({"beta": 0.1, "label_smoothing": 0.5}, "label_smoothing"),
        ({"beta": 0.1, "loss_type": "ipo", "label_smoothing": 0.1}, "sigmoid loss only"),
        ({"beta": 0.1, "loss_type": "hinge"}, "'sigmoid' or 'ipo'"),
    ],
)
def test_dpo_loss_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dpo_loss(_t(0), _t(0), _t(0), _t(0), **kwargs)  # type: ignore[arg-type]


def test_dpo_loss_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        dpo_loss(_t(0, 1), _t(0), _t(0, 1), _t(0), beta=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta": -1.0}, "beta must be > 0"),
        ({"loss_type": "kto"}, "loss_type"),
        ({"loss_type": "ipo", "label_smoothing": 0.1}, "only applies"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": 0.0}, "lr > 0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DPOConfig(**kwargs)  # type: ignore[arg-type]


def _ids(*tokens: int) -> torch.Tensor:
    return torch.tensor(tokens, dtype=torch.long)


def test_dataset_skips_ties_and_orients_pairs() -> None:
    judgments = [
        (_ids(5, 6), _ids(10, EOS), _ids(11, 12, EOS), 1.0),
        (_ids(7), _ids(13, EOS), _ids(14, EOS), 0.5),
        (_ids(8, 9, 9), _ids(15, EOS, 30, 31), _ids(16, EOS), 0.0),
        (_ids(4), _ids(17, EOS), _ids(18, EOS), 0.8),
    ]
    data = dataset_from_judgments(judgments, eos_id=EOS, pad_id=PAD)
    assert len(data) == 3
    assert data.prompt_ids.tolist() == [[PAD, 5, 6], [8, 9, 9], [PAD, PAD, 4]]
    assert data.prompt_mask.tolist() == [[0, 1, 1], [1, 1, 1], [0, 0, 1]]
    assert data.chosen_ids.tolist() == [[10, EOS, PAD], [16, EOS, PAD], [17, EOS, PAD]]
    # tokens after the first eos are cut off
    assert data.rejected_ids.tolist() == [[11, 12, EOS], [15, EOS, PAD], [18, EOS, PAD]]


def test_dataset_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="all 1 judgments are ties"):
        dataset_from_judgments([(_ids(3), _ids(4), _ids(5), 0.5)], eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match="target 1.5"):
        dataset_from_judgments([(_ids(3), _ids(4), _ids(5), 1.5)], eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match="no eos_id"):
        dataset_from_judgments([(_ids(3), _ids(4), _ids(5, 6, EOS), 1.0)], eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match="one R"):
        PreferenceDataset(
            torch.ones(2, 3, dtype=torch.long),
            torch.ones(2, 3, dtype=torch.long),
            torch.ones(2, 4, dtype=torch.long),
            torch.ones(2, 5, dtype=torch.long),
        )


def _random_dataset(n: int, seed: int) -> PreferenceDataset:
    g = torch.Generator().manual_seed(seed)

    def tokens(low: int, high: int) -> torch.Tensor:
        return torch.randint(2, 64, (int(torch.randint(low, high, (), generator=g)),), generator=g)

    judgments = [
        (
            tokens(2, 8),
            torch.cat([tokens(1, 8), _ids(EOS)]),
            torch.cat([tokens(1, 8), _ids(EOS)]),
            1.0,
        )
        for _ in range(n)
    ]
    return dataset_from_judgments(judgments, eos_id=EOS, pad_id=PAD)


def _trainer(seed: int = 0, **config: object) -> DPOTrainer:
    settings_ = {"lr": 1e-3, "batch_size": 8, "epochs": 1} | config
    return DPOTrainer(
        tiny_gpt2(seed, eos_id=EOS, dropout=0.0),
        DPOConfig(**settings_),  # type: ignore[arg-type]
        eos_id=EOS,
        pad_id=PAD,
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_raises_chosen_over_rejected(loss_type: str) -> None:
    trainer = _trainer(loss_type=loss_type)
    data = trainer.with_reference(_random_dataset(24, seed=1))
    before = trainer.evaluate(data)
    assert before["loss"] == pytest.approx(math.log(2) if loss_type == "sigmoid" else 25.0)
    assert before["reward_margin"] == 0.0 and before["reward_accuracy"] == 0.0
    history = [trainer.fit_epoch(data) for _ in range(8)]
    after = trainer.evaluate(data)
    assert after["loss"] < before["loss"]
    assert after["reward_margin"] > 0.3
    assert after["reward_accuracy"] > 0.9
    assert (
        after["logp_chosen"] - after["logp_rejected"]
        > before["logp_chosen"] - before["logp_rejected"] + 3.0
    )
    assert history[-1]["reward_margin"] > history[0]["reward_margin"]
    assert trainer.steps == 8 * 3


def test_reference_is_a_frozen_copy_run_once_per_dataset() -> None:
    trainer = _trainer(epochs=3, ref_batch_size=10)
    assert trainer.ref_policy is not trainer.policy
    calls = []
    trainer.ref_policy.register_forward_hook(lambda *_: calls.append(1))
    before = {k: v.clone() for k, v in trainer.ref_policy.state_dict().items()}
    stats = trainer.fit(_random_dataset(24, seed=2))
    assert len(stats) == 3
    assert len(calls) == 3  # ceil(24 / 10) forward passes, once for all epochs
    for key, value in trainer.ref_policy.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(p.requires_grad for p in trainer.ref_policy.parameters())


def test_dropout_is_off_so_policy_matches_reference() -> None:
    policy = tiny_gpt2(0, eos_id=EOS, dropout=0.5).train()
    trainer = DPOTrainer(
        policy, DPOConfig(), eos_id=EOS, pad_id=PAD, generator=torch.Generator().manual_seed(0)
    )
    stats = trainer.evaluate(_random_dataset(8, seed=3))
    assert stats["reward_margin"] == 0.0
    assert stats["loss"] == pytest.approx(math.log(2))
    assert not trainer.policy.training


def test_save_load_resumes_identically(tmp_path: Path) -> None:
    data = _random_dataset(16, seed=4)
    first = _trainer(seed=0)
    first.fit_epoch(data)
    first.save(tmp_path / "ckpt")
    expected = first.fit_epoch(data)

    resumed = _trainer(seed=5)  # other initial weights and generator, replaced by load
    resumed.load(tmp_path / "ckpt")
    assert resumed.steps == 2
    assert resumed.fit_epoch(data) == expected
    resumed_state = resumed.policy.state_dict()
    for name, value in first.policy.state_dict().items():
        assert torch.equal(value, resumed_state[name]), name
    meta = json.loads((tmp_path / "ckpt" / "trainer.json").read_text())
    assert meta["kind"] == "dpo" and meta["config"]["beta"] == 0.1


def test_load_refuses_another_config(tmp_path: Path) -> None:
    _trainer().save(tmp_path)
    with pytest.raises(ValueError, match="lr=0.001"):
        _trainer(lr=1e-4).load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no trainer checkpoint"):
        _trainer().load(tmp_path / "missing")
