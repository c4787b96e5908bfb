from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from prefgym.agents.text import TokenPPO, TokenPPOConfig
from prefgym.lm import response_mask
from tests.tiny_models import tiny_gpt2

EOS, PAD, TARGET = 0, 1, 5
SMALL = TokenPPOConfig(batch_size=16, minibatch_size=8, ppo_epochs=2, max_new_tokens=6, lr=3e-3)


def target_fraction(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response: torch.Tensor):
    """Share of the real response tokens equal to TARGET."""
    real = response_mask(response, EOS)
    return ((response == TARGET).float() * real).sum(1) / real.sum(1)


def make(config: TokenPPOConfig = SMALL, seed: int = 0, model_seed: int = 0, **kw: Any) -> TokenPPO:
    kw.setdefault("reward_fn", target_fraction)
    return TokenPPO(
        tiny_gpt2(model_seed, eos_id=EOS),
        config,
        eos_id=EOS,
        pad_id=PAD,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


def prompts(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompts of 3 to 6 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 64, (batch, 6), generator=g)
    mask = torch.ones_like(ids)
    for i, pads in enumerate(torch.randint(0, 4, (batch,), generator=g).tolist()):
        ids[i, :pads], mask[i, :pads] = PAD, 0
    return ids, mask


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_value_head_starts_at_zero_and_reference_is_a_frozen_copy() -> None:
    ppo = make()
    head = ppo.value_model["head"]
    assert torch.all(head.weight == 0) and torch.all(head.bias == 0)
    ids, mask = prompts(4, 0)
    response = torch.tensor([[7, 8, EOS]] * 4)
    assert torch.all(ppo._values(ids, mask, response) == 0)
    assert ppo.ref_policy is not ppo.policy
    assert not any(p.requires_grad for p in ppo.ref_policy.parameters())
    ref_before = weights(ppo.ref_policy)
    policy_before = weights(ppo.policy)
    stats = ppo.step(*prompts(16, 1))
    assert abs(stats["kl"]) < 1e-3  # the first batch is sampled by a policy equal to the ref
    assert stats["value"] == 0.0
    for name, tensor in weights(ppo.ref_policy).items():
        assert torch.equal(tensor, ref_before[name])
    assert any(not torch.equal(t, policy_before[k]) for k, t in weights(ppo.policy).items())


def test_step_reports_its_statistics() -> None:
    ppo = make()
    stats = ppo.step(*prompts(16, 1))
    for key in (
        "score", "reward", "kl", "kl_coef", "entropy", "policy_loss", "value_loss",
        "clip_fraction", "value_clip_fraction", "approx_kl", "grad_norm", "response_length",
        "fraction_ended", "tokens_generated", "tokens_per_second", "optimizer_steps",
        "seconds_sampling", "seconds_scoring", "seconds_optimisation",
    ):  # fmt: skip
        assert key in stats and math.isfinite(stats[key]), key
    assert stats["optimizer_steps"] == 4  # 2 epochs x 2 minibatches
    assert 1 <= stats["response_length"] <= 6
    assert stats["tokens_generated"] == pytest.approx(16 * stats["response_length"])
    assert 0 < stats["entropy"] <= math.log(64)
    assert ppo.steps == 1


def test_ppo_raises_the_score_and_keeps_the_kl_finite() -> None:
    config = TokenPPOConfig(
        batch_size=32, minibatch_size=8, ppo_epochs=4, max_new_tokens=8, lr=3e-3, kl_coef=0.01
    )
    ppo = make(config)
    history = [ppo.step(*prompts(32, i)) for i in range(16)]
    first = sum(h["score"] for h in history[:3]) / 3
    last = sum(h["score"] for h in history[-3:]) / 3
    assert first < 0.1  # about 1/64 at random
    assert last > 0.5, (first, last)
    kls = [h["kl"] for h in history]
    assert all(math.isfinite(k) for k in kls)
    assert 1.0 < kls[-1] < 8 * math.log(64)  # at most what a deterministic policy would cost


def test_a_larger_kl_penalty_keeps_the_policy_closer() -> None:
    def final_kl(kl_coef: float) -> float:
        config = dataclasses.replace(SMALL, kl_coef=kl_coef, batch_size=32, ppo_epochs=4)
        ppo = make(config)
        return [ppo.step(*prompts(32, i))["kl"] for i in range(8)][-1]

    penalised, free = final_kl(2.0), final_kl(0.0)
    assert penalised < 1.0 < free, (penalised, free)


def test_shared_value_model_trains_the_trunk_with_the_value_loss() -> None:
    ppo = make(dataclasses.replace(SMALL, value_model="shared"))
    assert "trunk" not in ppo.value_model
    n_policy = sum(p.numel() for p in ppo.policy.parameters())
    n_trained = sum(p.numel() for group in ppo.optimizer.param_groups for p in group["params"])
    assert n_trained == n_policy + 32 + 1
    stats = ppo.step(*prompts(16, 1))
    assert math.isfinite(stats["value_loss"])
    assert torch.any(ppo.value_model["head"].weight != 0)


def test_missing_eos_penalty_lowers_the_reward_of_unended_responses() -> None:
    config = dataclasses.replace(SMALL, missing_eos_penalty=3.0, max_new_tokens=2)
    stats = make(config).step(*prompts(16, 2))
    unended = 1.0 - stats["fraction_ended"]
    assert unended > 0.5
    assert stats["reward"] == pytest.approx(stats["score"] - 3.0 * unended, abs=1e-3)


def test_adaptive_kl_controller_moves_beta() -> None:
    config = dataclasses.replace(SMALL, kl="adaptive", kl_coef=0.05, kl_target=100.0, kl_horizon=32)
    ppo = make(config)
    ppo.step(*prompts(16, 0))
    # KL far below target: error -0.2, over 16 samples of a 32-sample horizon.
    assert ppo.kl_controller.value == pytest.approx(0.05 * (1 - 0.2 * 16 / 32))
    assert ppo.step(*prompts(16, 1))["kl_coef"] == pytest.approx(0.045)


def test_ptx_loss_is_mixed_in() -> None:
    config = dataclasses.replace(SMALL, ptx_coef=0.5)
    ppo = make(config)
    ptx = torch.randint(2, 64, (4, 10), generator=torch.Generator().manual_seed(0))
    stats = ppo.step(*prompts(16, 0), ptx_batch=ptx)
    assert 0.5 * math.log(64) < stats["ptx_loss"] < 2 * math.log(64)
    with pytest.raises(ValueError, match="ptx_batch"):
        ppo.step(*prompts(16, 0))
    with pytest.raises(ValueError, match="ptx_batch"):
        make().step(*prompts(16, 0), ptx_batch=ptx)


@pytest.mark.parametrize("owned_ref", [True, False])
def test_save_load_resumes_identically(tmp_path: Path, owned_ref: bool) -> None:
    config = dataclasses.replace(SMALL, kl="adaptive", kl_horizon=100)
    ref_kw = {} if owned_ref else {"ref_policy": tiny_gpt2(7, eos_id=EOS)}
    original = make(config, seed=0, **ref_kw)
    for i in range(2):
        original.step(*prompts(16, i))
    original.save(tmp_path / "ckpt")

    resumed = make(config, seed=123, model_seed=99, **ref_kw)  # different weights and rng
    resumed.load(tmp_path / "ckpt")
    assert resumed.steps == 2
    assert resumed.kl_controller.value == original.kl_controller.value

    a = original.step(*prompts(16, 5))
    b = resumed.step(*prompts(16, 5))
    for key in a:
        if not key.startswith("seconds") and key != "tokens_per_second":
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    for name, tensor in weights(original.value_model).items():
        torch.testing.assert_close(weights(resumed.value_model)[name], tensor)
    for name, tensor in weights(original.policy).items():
        torch.testing.assert_close(weights(resumed.policy)[name], tensor)


def test_load_refuses_another_config(tmp_path: Path) -> None:
    make().save(tmp_path)
    with pytest.raises(ValueError, match="lr"):
        make(dataclasses.replace(SMALL, lr=1.0)).load(tmp_path)


def test_step_checks_its_inputs() -> None:
    ppo = make()
    with pytest.raises(ValueError, match="batch_size=16"):
        ppo.step(*prompts(8, 0))
    bad = make(reward_fn=lambda p, m, r: torch.zeros(3))
    with pytest.raises(ValueError, match=r"reward_fn must return \(16,\)"):
        bad.step(*prompts(16, 0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minibatch_size": 5}, "minibatch_size must divide batch_size 16"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"kl": "adaptive", "kl_coef": 0.0}, "kl_coef"),
        ({"kl": "nope"}, "kl must be"),
        ({"lam": 1.5}, "lam"),
        ({"value_model": "tied"}, "value_model"),
        ({"missing_eos_penalty": -1.0}, "missing_eos_penalty"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **kwargs)


def test_a_pad_id_outside_the_vocabulary_works() -> None:
    config = dataclasses.replace(SMALL, max_new_tokens=40)
    ppo = TokenPPO(
        tiny_gpt2(eos_id=EOS),
        config,
        reward_fn=target_fraction,
        eos_id=EOS,
        pad_id=99,  # the vocabulary has 64 ids
        generator=torch.Generator().manual_seed(0),
    )
    stats = ppo.step(*prompts(16, 0))
    assert 0 < stats["fraction_ended"] < 1
    assert math.isfinite(stats["policy_loss"]) and math.isfinite(stats["kl"])


@pytest.mark.parametrize("value_model", ["separate", "shared"])
def test_gpt2_fast_path_takes_the_same_steps_as_the_models_own_forward(value_model: str) -> None:
    """A hook on the trunk sends every forward (sampling, reference, value, update) through
    the model's own code; both routes give the same statistics and weights."""
    config = dataclasses.replace(SMALL, value_model=value_model, max_new_tokens=10)
    fast, plain = make(config), make(config)
    plain.policy.transformer.register_forward_hook(lambda *_: None)
    if value_model == "separate":
        plain.value_model["trunk"].register_forward_hook(lambda *_: None)
    plain.ref_policy.transformer.register_forward_hook(lambda *_: None)
    for i in range(2):
        a, b = fast.step(*prompts(16, i)), plain.step(*prompts(16, i))
        for key in ("score", "kl", "policy_loss", "value_loss", "approx_kl", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
        assert 0 < a["fraction_ended"] < 1  # the padded path is exercised
    for name, tensor in weights(plain.policy).items():
        torch.testing.assert_close(weights(fast.policy)[name], tensor, atol=1e-5, rtol=1e-4)
