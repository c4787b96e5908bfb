from __future__ import annotations


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
