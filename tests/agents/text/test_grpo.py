"""GRPO: group advantages, learning a synthetic reward, the reference, and resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from prefgym.agents.text import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, group_advantages
from prefgym.lm import response_mask
from tests.tiny_models import tiny_gpt2

EOS, PAD, TARGET = 1, 0, 7

score_tables = st.tuples(st.integers(1, 6), st.integers(2, 9)).flatmap(
    lambda shape: arrays("float64", shape, elements=st.floats(-100, 100))
)


@given(scores=score_tables, scale=st.booleans())
def test_group_advantages_are_zero_mean_per_group(scores: np.ndarray, scale: bool) -> None:
    table = torch.from_numpy(scores)
    advantages = group_advantages(table, scale=scale)
    assert advantages.shape == table.shape
    assert torch.allclose(
        advantages.mean(1), torch.zeros(len(table), dtype=torch.float64), atol=1e-6
    )
    if not scale:
        assert torch.allclose(advantages, table - table.mean(1, keepdim=True))


@given(scores=score_tables)
def test_scaled_advantages_have_unit_std_or_are_zero(scores: np.ndarray) -> None:
    table = torch.from_numpy(scores)
    advantages = group_advantages(table)
    for scores_row, row, std in zip(table, advantages, table.std(1), strict=True):
        if std > 1.0:
            assert float(row.std()) == pytest.approx(float(std / (std + 1e-4)), rel=1e-6)
        if bool((scores_row == scores_row[0]).all()):  # equal scores teach nothing
            assert torch.allclose(row, torch.zeros_like(row), atol=1e-9)
    # a constant added to a group or a positive factor leaves scaled advantages unchanged
    # (where the spread dwarfs eps)
    wide = table.std(1) > 1.0
    shifted = group_advantages(3.0 * table + 5.0)
    assert torch.allclose(shifted[wide], advantages[wide], atol=1e-3)


def test_group_advantages_reject_groups_of_one() -> None:
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="eps must be > 0"):
        group_advantages(torch.zeros(4, 2), eps=0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"group_size": 1}, "group_size must be >= 2"),
        ({"kl_coef": -0.1}, "kl_coef must be >= 0"),
        ({"clip_range": 1.5}, "clip_range"),
        ({"loss_normalisation": "batch"}, "'sequence' or 'token'"),
        ({"num_iterations": 0}, "num_iterations must be >= 1"),
        ({"minibatch_size": 0}, "minibatch_size"),
        ({"temperature": 0.0}, "temperature must be > 0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GRPOConfig(**kwargs)  # type: ignore[arg-type]


def target_fraction(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, responses: torch.Tensor
) -> torch.Tensor:
    """Fraction of each response's tokens that are TARGET, (B,)."""
    mask = response_mask(responses, EOS)
    return ((responses == TARGET).float() * mask).sum(1) / mask.sum(1)


def _prompts(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 64, (n, 5), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, :2] = 0  # some left padding
    return ids.masked_fill(mask == 0, PAD), mask


def _trainer(
    seed: int = 0, ref_policy: torch.nn.Module | None = None, **config: Any
) -> GRPOTrainer:
    settings_ = {
        "group_size": 8,
        "prompts_per_step": 4,
        "max_new_tokens": 8,
        "lr": 3e-3,
    } | config
    return GRPOTrainer(
        tiny_gpt2(seed, eos_id=EOS),
        GRPOConfig(**settings_),  # type: ignore[arg-type]
        reward_fn=target_fraction,
        eos_id=EOS,
        pad_id=PAD,
        generator=torch.Generator().manual_seed(seed),
        ref_policy=ref_policy,
    )


@pytest.mark.parametrize(
    "config",
    [
        {"kl_coef": 0.04, "lr": 5e-3},
        {"kl_coef": 0.0, "num_iterations": 2, "minibatch_size": 16, "loss_normalisation": "token"},
    ],
    ids=["grpo-kl", "mu2-token-no-kl"],
)
def test_grpo_raises_the_mean_score(config: dict[str, Any]) -> None:
    trainer = _trainer(**config)
    history = trainer.fit(*_prompts(), num_steps=30)
    first = sum(s["score_mean"] for s in history[:3]) / 3
    last = sum(s["score_mean"] for s in history[-3:]) / 3
    assert first < 0.05
    assert last > first + 0.2, [round(s["score_mean"], 3) for s in history]
    assert trainer.steps == 30
    for stats in history:
        assert stats["tokens_generated"] == pytest.approx(32 * stats["response_length"])
        assert 1 <= stats["response_length"] <= 8
        assert 0 <= stats["clip_fraction"] <= 1
        assert stats["seconds_sampling"] > 0 and stats["seconds_optimising"] > 0
    if config["kl_coef"]:
        assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference
        assert history[-1]["kl"] > 0.01
        assert history[0]["clip_fraction"] == 0.0  # one pass: ratio is exactly 1
    else:
        assert all(math.isnan(s["kl"]) for s in history)
        assert max(s["clip_fraction"] for s in history) > 0  # second pass moves off-policy


def _counting(model: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_without_kl_the_reference_is_never_run() -> None:
    ref = tiny_gpt2(9, eos_id=EOS)
    calls = _counting(ref)
    trainer = _trainer(kl_coef=0.0, ref_policy=ref)
    trainer.fit(*_prompts(), num_steps=2)
    assert calls == []
    assert _trainer(kl_coef=0.0).ref_policy is None  # no copy is made either

    with_kl = _trainer(kl_coef=0.1, ref_policy=ref)
    with_kl.fit(*_prompts(), num_steps=2)
    assert len(calls) == 2  # one forward per step, whatever num_iterations


def test_owned_reference_is_a_frozen_copy() -> None:
    trainer = _trainer(kl_coef=0.1)
    assert trainer.ref_policy is not None and trainer.ref_policy is not trainer.policy
    before = {k: v.clone() for k, v in trainer.ref_policy.state_dict().items()}
    trainer.fit(*_prompts(), num_steps=3)
    for key, value in trainer.ref_policy.state_dict().items():
        assert torch.equal(value, before[key]), key
    changed = [not torch.equal(v, before[k]) for k, v in trainer.policy.state_dict().items()]
    assert any(changed)


def test_reward_fn_must_return_one_score_per_response() -> None:
    trainer = GRPOTrainer(
        tiny_gpt2(eos_id=EOS),
        GRPOConfig(group_size=2, max_new_tokens=2),
        reward_fn=lambda p, m, r: torch.zeros(len(r), 1),
        eos_id=EOS,
        pad_id=PAD,
        generator=torch.Generator().manual_seed(0),
    )
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        trainer.step(*_prompts(3))


def test_fit_needs_enough_prompts() -> None:
    with pytest.raises(ValueError, match="prompts_per_step=4 but only 2"):
        _trainer().fit(*_prompts(2), num_steps=1)


def _timeless(stats: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in stats.items() if not k.startswith("seconds")}


@pytest.mark.parametrize("kl_coef", [0.05, 0.0])
def test_save_load_resumes_identically(tmp_path: Path, kl_coef: float) -> None:
    settings_: dict[str, Any] = {"kl_coef": kl_coef, "num_iterations": 2, "minibatch_size": 8}
    prompts = _prompts()
    first = _trainer(seed=0, **settings_)
    first.fit(*prompts, num_steps=2)
    first.save(tmp_path)
    expected = [_timeless(s) for s in first.fit(*prompts, num_steps=2)]

    resumed = _trainer(seed=3, **settings_)  # other weights and generator, replaced by load
    resumed.load(tmp_path)
    assert resumed.steps == 2
    assert [_timeless(s) for s in resumed.fit(*prompts, num_steps=2)] == expected
    resumed_state = resumed.policy.state_dict()
    for name, value in first.policy.state_dict().items():
        assert torch.equal(value, resumed_state[name]), name
    meta = json.loads((tmp_path / "trainer.json").read_text())
    assert meta["kind"] == "grpo" and meta["has_reference"] == (kl_coef > 0)


def test_checkpoints_are_not_interchangeable(tmp_path: Path) -> None:
    _trainer().save(tmp_path / "grpo")
    dpo = DPOTrainer(
        tiny_gpt2(eos_id=EOS), DPOConfig(), eos_id=EOS, pad_id=PAD, generator=torch.Generator()
    )
    with pytest.raises(ValueError, match="holds a 'grpo' checkpoint"):
        dpo.load(tmp_path / "grpo")
    with pytest.raises(ValueError, match="kl_coef=0.04"):
        _trainer(kl_coef=0.1).load(tmp_path / "grpo")
