"""The fast GPT-2 path: the fused tanh-GELU, the forward that skips unused work, the
KV-cache decoder, and when the model's own forward runs instead."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GPT2LMHeadModel
from transformers.activations import NewGELUActivation

from prefgym.lm import (
    TanhGELU,
    _gpt2_fast,
    fuse_gelu,
    position_ids,
    response_hidden,
    response_logits,
    response_logprobs,
    response_mask,
)
from prefgym.lm._gpt2_fast import fast_gpt2_lm, gpt2_decoder, gpt2_hidden
from tests.lm.helpers import EOS, PAD, prompts, sample
from tests.tiny_models import tiny_gpt2


def full_forward(model: Any, ids: torch.Tensor, mask: torch.Tensor, response: torch.Tensor):
    """The model's own forward over prompt + response: logits and hidden states that predict
    each response token."""
    full_mask = torch.cat([mask, response_mask(response, EOS).long()], 1)
    full = torch.cat([ids, response], 1).masked_fill(full_mask == 0, 0)
    out = model(
        input_ids=full,
        attention_mask=full_mask,
        position_ids=position_ids(full_mask),
        output_hidden_states=True,
    )
    width = response.shape[1]
    return out.logits[:, -width - 1 : -1], out.hidden_states[-1][:, -width - 1 : -1]


def test_position_ids_ignore_left_padding() -> None:
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert position_ids(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]


def test_fused_gelu_computes_the_same_function() -> None:
    plain = tiny_gpt2(3, eos_id=EOS).eval()
    fused = tiny_gpt2(3, eos_id=EOS).eval()
    assert fuse_gelu(fused) == 2  # one per block
    assert fuse_gelu(fused) == 0
    assert all(isinstance(block.mlp.act, TanhGELU) for block in fused.transformer.h)
    assert plain.state_dict().keys() == fused.state_dict().keys()
    ids, mask = prompts()
    response = torch.tensor([[5, 6, 7, EOS]] * 4)
    torch.testing.assert_close(
        response_logprobs(fused, ids, mask, response, eos_id=EOS),
        response_logprobs(plain, ids, mask, response, eos_id=EOS),
        atol=1e-5,
        rtol=1e-5,
    )


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.1, 20.0), rows=st.sampled_from([1, 8, 64]))
def test_tanh_gelu_matches_torch_value_and_gradient(scale: float, rows: int) -> None:
    """Both the sigmoid form (large tensors) and the plain kernel (small ones) are gelu_new."""
    x = (torch.randn(rows, 4096, generator=torch.Generator().manual_seed(rows)) * scale).double()
    grad = torch.randn_like(x)
    expected = x.clone().requires_grad_()
    torch.nn.functional.gelu(expected, approximate="tanh").backward(grad)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        got = x.to(dtype, copy=True).requires_grad_()
        value = TanhGELU()(got)
        value.backward(grad.to(dtype))
        reference = torch.nn.functional.gelu(x, approximate="tanh")
        torch.testing.assert_close(value.double(), reference, atol=tol * scale, rtol=tol)
        torch.testing.assert_close(got.grad.double(), expected.grad, atol=tol * 10, rtol=tol)


def test_tanh_gelu_has_exact_gradients() -> None:
    x = torch.randn(4, 8192, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(TanhGELU(), (x,), fast_mode=True)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_layer": 1}, {"n_layer": 3, "scale_attn_by_inverse_layer_idx": True}],
)
@pytest.mark.parametrize("padded", [True, False])
def test_gpt2_fast_path_matches_the_models_own_forward(overrides: dict, padded: bool) -> None:
    """With padding (left-padded prompts, early eos) and without (every token attended)."""
    model = tiny_gpt2(4, eos_id=EOS, **overrides).eval()
    ids, mask = prompts(batch=5)
    response = torch.randint(2, 64, (5, 7), generator=torch.Generator().manual_seed(1))
    if padded:
        response[1, 2:] = torch.tensor([EOS, PAD, PAD, PAD, PAD])
        response[3, 0] = EOS
    else:
        ids, mask = ids[:, -2:], mask[:, -2:]
        assert bool(mask.all()) and not bool((response == EOS).any())
    with torch.no_grad():
        expected_logits, expected_hidden = full_forward(model, ids, mask, response)
        logits = response_logits(model, ids, mask, response, eos_id=EOS)
        hidden = response_hidden(model.base_model, ids, mask, response, eos_id=EOS)
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden, expected_hidden, atol=1e-5, rtol=1e-5)


def test_gpt2_fast_path_has_the_models_gradients() -> None:
    fast = tiny_gpt2(5, eos_id=EOS).eval()
    plain = tiny_gpt2(5, eos_id=EOS).eval()
    ids, mask = prompts()
    response = torch.tensor([[5, 6, EOS, PAD], [7, 8, 9, 10], [11, EOS, PAD, PAD], [3, 4, 5, 6]])
    weights = torch.randn(4, 4, 64, generator=torch.Generator().manual_seed(0))
    real = response_mask(response, EOS)[..., None]
    (response_logits(fast, ids, mask, response, eos_id=EOS) * weights * real).sum().backward()
    (full_forward(plain, ids, mask, response)[0] * weights * real).sum().backward()
    for (name, a), b in zip(fast.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_fast_sampler_draws_what_the_models_own_forward_draws(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts(batch=6)
    fast = sample(model, ids, mask, 7, max_new_tokens=12, temperature=0.8)
    handle = model.register_forward_hook(lambda *_: None)  # a hooked model runs its forward
    try:
        plain = sample(model, ids, mask, 7, max_new_tokens=12, temperature=0.8)
    finally:
        handle.remove()
    assert torch.equal(fast.response_ids, plain.response_ids)
    torch.testing.assert_close(fast.logprobs, plain.logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.entropy, plain.entropy, atol=1e-5, rtol=1e-5)


def test_hooks_on_the_model_still_fire(model: GPT2LMHeadModel) -> None:
    ids, mask = prompts()
    response = torch.tensor([[5, 6, EOS]] * 4)
    calls: list[str] = []
    handles = [
        model.register_forward_hook(lambda *_: calls.append("model")),
        model.transformer.h[0].register_forward_hook(lambda *_: calls.append("block")),
    ]
    try:
        response_logprobs(model, ids, mask, response, eos_id=EOS)
        response_hidden(model.base_model, ids, mask, response, eos_id=EOS)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ["block", "model", "block"]


def test_tanh_gelu_leaves_small_and_low_precision_tensors_to_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below 2**14 elements, or in half precision, PyTorch's own kernel runs (bit for bit);
    large float tensors on a CPU take the fused form."""

    def fused(x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the fused form ran")

    monkeypatch.setattr(_gpt2_fast._TanhGELU, "apply", fused)
    gelu = TanhGELU()
    g = torch.Generator().manual_seed(0)
    small = torch.randn(4, 1024, generator=g)  # 2**12 elements
    half = torch.randn(8, 4096, generator=g).to(torch.bfloat16)
    for x in (small, half):
        assert torch.equal(gelu(x), torch.nn.functional.gelu(x, approximate="tanh"))
    with pytest.raises(AssertionError, match="the fused form ran"):
        gelu(torch.randn(8, 4096, generator=g))


def test_fuse_gelu_swaps_only_gpt2s_gelu_new() -> None:
    relu = tiny_gpt2(eos_id=EOS, activation_function="relu")
    assert fuse_gelu(relu) == 0
    assert not any(isinstance(m, TanhGELU) for m in relu.modules())
    mixed = torch.nn.Sequential(torch.nn.Linear(3, 3), NewGELUActivation(), torch.nn.GELU())
    assert fuse_gelu(mixed) == 1
    assert [type(m) for m in mixed] == [torch.nn.Linear, TanhGELU, torch.nn.GELU]


def test_only_plain_unhooked_gpt2_models_take_the_fast_path() -> None:
    class Subclass(GPT2LMHeadModel):
        pass

    plain = tiny_gpt2(eos_id=EOS).eval()
    assert fast_gpt2_lm(plain)
    assert not fast_gpt2_lm(Subclass(plain.config))  # it may change the forward
    assert not fast_gpt2_lm(tiny_gpt2(eos_id=EOS, add_cross_attention=True))

    hooked = tiny_gpt2(eos_id=EOS)
    handle = hooked.transformer.h[1].register_forward_pre_hook(lambda *_: None)
    assert not fast_gpt2_lm(hooked)
    handle.remove()
    assert fast_gpt2_lm(hooked)

    checkpointed = tiny_gpt2(eos_id=EOS)
    checkpointed.activation_checkpointing_enable()
    assert not fast_gpt2_lm(checkpointed.train())
    assert fast_gpt2_lm(checkpointed.eval())  # no backward pass, nothing to checkpoint


@pytest.mark.parametrize(("padded", "width"), [(True, 1), (True, 3), (False, 6)])
def test_gpt2_hidden_is_the_trunks_last_width_positions(
    model: GPT2LMHeadModel, padded: bool, width: int
) -> None:
    ids, mask = prompts(batch=4, length=6)  # at most 3 leading pads
    if not padded:
        mask = torch.ones_like(mask)
    positions = position_ids(mask)
    with torch.no_grad():
        expected = model.transformer(
            input_ids=ids, attention_mask=mask, position_ids=positions
        ).last_hidden_state
        hidden = gpt2_hidden(model.transformer, ids, mask, positions, width)
    assert hidden.shape == (4, width, 32)
    real = mask[:, -width:].bool()
    torch.testing.assert_close(hidden[real], expected[:, -width:][real], atol=1e-5, rtol=1e-5)


def test_gpt2_decoder_continues_as_the_full_forward_does(model: GPT2LMHeadModel) -> None:
    """The first logits are the prompt's; each ``advance`` appends a token to the cache."""
    ids, mask = prompts(batch=4, length=6)
    tokens = torch.randint(2, 64, (4, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, advance = gpt2_decoder(model, ids, mask, max_new_tokens=4)
        steps = [logits] + [advance(tokens[:, t], t) for t in range(3)]
        for t, got in enumerate(steps):
            full = torch.cat([ids, tokens[:, :t]], 1)
            full_mask = torch.cat([mask, torch.ones_like(tokens[:, :t])], 1)
            expected = model(
                input_ids=full, attention_mask=full_mask, position_ids=position_ids(full_mask)
            ).logits[:, -1]
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5, msg=f"step {t}")
