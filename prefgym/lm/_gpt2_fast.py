"""A faster forward for plain GPT-2 models.

The last block only at the positions that predict response tokens, a preallocated KV cache
for decoding, a tanh-GELU with a hand-written backward; falls back to transformers' forward
when a module has hooks; matches it to ~1e-7.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

if TYPE_CHECKING:
    from transformers import GPT2LMHeadModel


_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_B = _GELU_A * 0.044715
_GELU_MIN_SIZE = 1 << 14
"""Below this many elements PyTorch's single kernel is faster."""


class _TanhGELU(torch.autograd.Function):
    """``x * sigmoid(x * (A + B x^2))`` and its derivative, in few passes over memory."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        gate = torch.addcmul(x.new_full((), _GELU_A), x, x, value=_GELU_B)
        gate.mul_(x).sigmoid_()
        ctx.save_for_backward(x, gate)
        return x * gate

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        # d/dx = s (1 + x (A + 3 B x^2) (1 - s)) with s the gate.
        x, gate = ctx.saved_tensors
        slope = torch.addcmul(x.new_full((), _GELU_A), x, x, value=3.0 * _GELU_B).mul_(x)
        return slope.addcmul_(slope, gate, value=-1.0).add_(1.0).mul_(gate).mul_(grad)


class TanhGELU(nn.Module):
    """GPT-2's ``gelu_new``, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, made cheap.

    On a CPU it is computed as ``x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))`` (the same
    function: ``0.5 (1 + tanh(z)) = sigmoid(2 z)``) in four passes over memory forward and
    six backward, half and a third of the time of PyTorch's tanh-GELU kernels (whose tanh
    is slow); elsewhere (and on small or half-precision tensors) it is
    ``F.gelu(x, approximate="tanh")``. Outputs agree to float rounding (about 1e-7).
    """

    def forward(self, x: Tensor) -> Tensor:
        """``gelu_new(x)``, elementwise."""
        if (
            x.device.type != "cpu"
            or x.dtype not in (torch.float32, torch.float64)
            or x.numel() < _GELU_MIN_SIZE
        ):
            return F.gelu(x, approximate="tanh")
        return _TanhGELU.apply(x)


def fuse_gelu(model: nn.Module) -> int:
    """Swap transformers' ``NewGELUActivation`` (GPT-2's ``gelu_new``) for :class:`TanhGELU`.

    The same function (outputs agree to float rounding, about 1e-7) in a few passes instead
    of seven, forward and backward: a quarter of a small GPT-2's training time on a CPU.
    Done in place; the weights, the state dict and the saved config are unchanged.

    Args:
        model: any module; other activations are left alone.

    Returns:
        How many activation modules were replaced.
    """
    from transformers.activations import NewGELUActivation

    targets = [
        (parent, name)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, NewGELUActivation)
    ]
    for parent, name in targets:
        setattr(parent, name, TanhGELU())
    return len(targets)


def position_ids(mask: Tensor) -> Tensor:
    """Position ids that ignore padding.

    Args:
        mask: ``(B, L)`` attention mask, 1 on real tokens.

    Returns:
        ``(B, L)`` long: ``cumsum(mask) - 1`` clamped at 0.
    """
    return (mask.long().cumsum(-1) - 1).clamp_(min=0)


def gpt2_decoder(
    model: Any, prompt_ids: Tensor, prompt_mask: Tensor, max_new_tokens: int
) -> tuple[Tensor, Callable[[Tensor, int], Tensor]]:
    """A ``GPT2LMHeadModel`` with a preallocated KV cache (no per-step concatenation).

    The same function as :func:`_hf_decoder`; the last block of the prompt pass works on the
    last position only (the others' outputs are never read).
    """
    trunk, head = model.transformer, model.lm_head
    blocks = list(trunk.h)
    batch, prompt_len = prompt_ids.shape
    total = prompt_len + max_new_tokens
    positions = position_ids(prompt_mask)
    next_position = positions[:, -1:] + 1  # (B, 1)
    hidden = trunk.drop(trunk.wte(prompt_ids) + trunk.wpe(positions))
    shapes = [(batch, b.attn.num_heads, total, b.attn.head_dim) for b in blocks]
    caches = [(hidden.new_empty(shape), hidden.new_empty(shape)) for shape in shapes]
    full = _padding_mask(prompt_mask)
    keys: Tensor | None = None  # which cached keys are real, (B, 1, 1, total); None: all
    if full is not None:
        keys = torch.ones(batch, 1, 1, total, dtype=torch.bool, device=prompt_ids.device)
        keys[:, 0, 0, :prompt_len] = prompt_mask.bool()
    for block, cache in zip(blocks[:-1], caches[:-1], strict=True):
        hidden = _gpt2_block(block, hidden, full, causal=True, cache=cache)
    last = None if full is None else full[..., -1:, :]
    hidden = _gpt2_block(
        blocks[-1], hidden, last, causal=False, start=prompt_len - 1, cache=caches[-1]
    )

    def advance(token: Tensor, t: int) -> Tensor:
        at = prompt_len + t
        mask = None if keys is None else keys[..., : at + 1]
        hidden = trunk.drop(trunk.wte(token[:, None]) + trunk.wpe(next_position + t))
        for block, cache in zip(blocks, caches, strict=True):
            hidden = _gpt2_block(block, hidden, mask, causal=False, cache=cache, at=at)
        return head(trunk.ln_f(hidden))[:, -1]

    return head(trunk.ln_f(hidden))[:, -1], advance


def _hooked(module: nn.Module) -> bool:
    """Whether ``module`` has forward or backward hooks of its own."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    )


def _is_gpt2(module: nn.Module, name: str) -> bool:
    """Whether ``module`` is exactly transformers' GPT-2 class ``name`` (not a subclass).

    Compared by name, so that other models never import GPT-2's code.
    """
    cls = type(module)
    return cls.__name__ == name and cls.__module__ == "transformers.models.gpt2.modeling_gpt2"


def fast_gpt2(trunk: Any) -> bool:
    """Whether :func:`gpt2_hidden` computes what ``trunk`` would, hooks included.

    The fast path calls the blocks' submodules but not the trunk or the blocks themselves,
    so a trunk or block with hooks runs its own forward.
    """
    return (
        _is_gpt2(trunk, "GPT2Model")  # a subclass may change the forward
        and not trunk.config.add_cross_attention
        and not (trunk.gradient_checkpointing and trunk.training)
        and not any(_hooked(m) for m in (trunk, *trunk.h))
    )


def fast_gpt2_lm(model: nn.Module) -> TypeGuard[GPT2LMHeadModel]:
    """Whether ``model`` is a plain ``GPT2LMHeadModel`` the fast paths compute exactly."""
    plain = _is_gpt2(model, "GPT2LMHeadModel") and not _hooked(model)
    return plain and fast_gpt2(model.transformer)


def _padding_mask(mask: Tensor) -> Tensor | None:
    """Causal attention mask with padded keys hidden, ``(B, 1, L, L)`` boolean; None: no padding.

    A left pad that sees no real key sees itself, so that its (unused) output is finite.
    """
    if bool(mask.all()):
        return None
    length = mask.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril_()
    full = causal & mask.bool()[:, None, None, :]
    full |= torch.eye(length, dtype=torch.bool, device=mask.device) & ~full.any(-1, True)
    return full


def gpt2_hidden(trunk: Any, ids: Tensor, mask: Tensor, positions: Tensor, width: int) -> Tensor:
    """``trunk(...).last_hidden_state[:, -width:]`` of a GPT-2, without the unused work.

    Every block but the last runs over all positions (later positions attend to them); the
    last one computes keys and values everywhere but queries, the attention output, the MLP
    and the final layer norm only at the last ``width`` positions. The attention mask is made
    once, not per block; with no padding none is made.

    Args:
        trunk: a ``GPT2Model``.
        ids: ``(B, L)`` long.
        mask: ``(B, L)``, 1 on real tokens.
        positions: ``(B, L)`` position ids.
        width: how many final positions to return.

    Returns:
        ``(B, width, H)``.
    """
    length = ids.shape[1]
    start = length - width
    hidden = trunk.drop(trunk.wte(ids) + trunk.wpe(positions))
    full = _padding_mask(mask)
    blocks = list(trunk.h)
    for block in blocks[:-1]:
        hidden = _gpt2_block(block, hidden, full, causal=True)
    if full is None:
        last = torch.ones(length, length, dtype=torch.bool, device=ids.device).tril_()[start:]
    else:
        last = full[..., start:, :]
    hidden = _gpt2_block(blocks[-1], hidden, last, causal=False, start=start)
    return trunk.ln_f(hidden)


def _gpt2_block(
    block: Any,
    hidden: Tensor,
    attn_mask: Tensor | None,
    *,
    causal: bool,
    start: int = 0,
    cache: tuple[Tensor, Tensor] | None = None,
    at: int = 0,
) -> Tensor:
    """One ``GPT2Block`` (no cross-attention) for the queries from ``start`` on.

    Args:
        block: a ``GPT2Block``.
        hidden: ``(B, L, H)`` its input.
        attn_mask: boolean, broadcasting to ``(B, heads, L - start, keys)``; None: every key,
            or the square causal mask when ``causal``.
        causal: with no ``attn_mask``, mask the future (queries and keys aligned).
        start: the first query position.
        cache: ``(keys, values)`` buffers ``(B, heads, N, head_dim)``: this block's keys and
            values are written at ``at .. at + L`` and attention runs over ``:at + L``.
        at: where the ``L`` positions lie in ``cache``.

    Returns:
        ``(B, L - start, H)``.
    """
    attn = block.attn
    shape = (attn.num_heads, attn.head_dim)
    query, key, value = attn.c_attn(block.ln_1(hidden)).split(attn.split_size, dim=2)
    key = key.unflatten(-1, shape).transpose(1, 2)
    value = value.unflatten(-1, shape).transpose(1, 2)
    if cache is not None:
        end = at + hidden.shape[1]
        cache[0][:, :, at:end] = key
        cache[1][:, :, at:end] = value
        key, value = cache[0][:, :, :end], cache[1][:, :, :end]
    out = F.scaled_dot_product_attention(
        query[:, start:].unflatten(-1, shape).transpose(1, 2),
        key,
        value,
        attn_mask=attn_mask,
        dropout_p=attn.attn_dropout.p if attn.training else 0.0,
        is_causal=causal and attn_mask is None,
        scale=attn.scaling,
    )
    out = attn.resid_dropout(attn.c_proj(out.transpose(1, 2).flatten(2)))
    hidden = out + hidden[:, start:]
    return block.mlp(block.ln_2(hidden)) + hidden
