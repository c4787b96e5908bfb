"""Sampling and scoring responses of a causal language model, token by token.

Conventions shared by the token-level trainers (PPO, DPO, GRPO):

- prompts are LEFT-padded ``(B, P)`` id tensors with a ``(B, P)`` mask (1 for a real token);
- responses are ``(B, R)`` ids, RIGHT-padded with ``pad_id`` after the first ``eos_id``, the
  eos itself being part of the response; a response that never ended has no eos;
- position ids come from the mask (``cumsum - 1``, clamped at 0), so left padding changes
  nothing but the shape.

The sampler is a plain loop over the model's KV cache (no ``generate()``): one forward over
the prompts, then one forward of one token per step, stopping as soon as every row has ended.
Everything is generic over Hugging Face causal LMs that accept ``logits_to_keep`` and expose
their trunk as ``base_model`` and their head as ``get_output_embeddings()``. Plain GPT-2s
(``GPT2LMHeadModel``, ``GPT2Model``, without hooks) take a fast path computing the same
function: no work on outputs nothing reads (the last block runs only at the positions that
predict response tokens), attention masks made once per forward, and a preallocated KV cache;
it lives in :mod:`prefgym.lm._gpt2_fast`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from prefgym.lm._gpt2_fast import (
    fast_gpt2,
    fast_gpt2_lm,
    gpt2_decoder,
    gpt2_hidden,
    position_ids,
)


class Samples(NamedTuple):
    """Responses drawn by :func:`sample_with_logprobs`, with what the sampler saw."""

    response_ids: Tensor
    """``(B, R)`` long: the responses, ``pad_id`` after the first eos."""
    logprobs: Tensor
    """``(B, R)`` float: log-probability of each drawn token (of ``logits / temperature``)."""
    entropy: Tensor
    """``(B, R)`` float: entropy of the sampling distribution at each step."""


def response_mask(response_ids: Tensor, eos_id: int) -> Tensor:
    """Mask of the real tokens of each response: up to and including the first eos.

    Works when ``pad_id == eos_id``: only the first eos counts.

    Args:
        response_ids: ``(B, R)`` long.
        eos_id: the end-of-sequence token id.

    Returns:
        ``(B, R)`` float, 1 up to and including the first eos, 0 after it.
    """
    is_eos = (response_ids == eos_id).long()
    eos_before = is_eos.cumsum(-1) - is_eos
    return (eos_before == 0).float()


def trim_left_padding(prompt_ids: Tensor, prompt_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the leading columns that are padding in every row (a pure speed-up).

    Args:
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``, 1 on real tokens.

    Returns:
        ``(B, P')`` ids and mask with ``P' <= P``; logits and log-probs are unchanged.
    """
    real_columns = prompt_mask.bool().any(0).nonzero()
    first = int(real_columns[0]) if len(real_columns) else prompt_mask.shape[1]
    first = min(first, prompt_mask.shape[1] - 1)  # keep at least one column
    return prompt_ids[:, first:], prompt_mask[:, first:]


def _check_prompts(prompt_ids: Tensor, prompt_mask: Tensor) -> None:
    if prompt_ids.ndim != 2 or prompt_ids.shape != prompt_mask.shape:
        raise ValueError(
            "prompt_ids and prompt_mask must both be (batch, prompt_len), got "
            f"{tuple(prompt_ids.shape)} and {tuple(prompt_mask.shape)}"
        )
    if prompt_mask.shape[1] == 0 or not bool(prompt_mask[:, -1].all()):
        raise ValueError(
            "prompts must be LEFT-padded with at least one real token per row (the last "
            "column of prompt_mask all ones); pad on the left, e.g. tokenizer.padding_side='left'"
        )


def _draw(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One token per row by inverting the cumulative distribution.

    Same distribution as ``torch.multinomial(probs, 1)``, cheaper on a CPU for a large
    vocabulary: one uniform number per row, no per-entry randomness.

    Args:
        probs: ``(B, V)`` probabilities (rows need not be normalised exactly).
        generator: the source of randomness.

    Returns:
        ``(B,)`` long token ids.
    """
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[1] - 1).squeeze(1)


def _hf_decoder(
    model: nn.Module, prompt_ids: Tensor, prompt_mask: Tensor, max_new_tokens: int
) -> tuple[Tensor, Callable[[Tensor, int], Tensor]]:
    """Any causal LM, through its own forward and KV cache."""
    batch, prompt_len = prompt_ids.shape
    attention = torch.ones(
        batch, prompt_len + max_new_tokens, dtype=torch.long, device=prompt_ids.device
    )
    attention[:, :prompt_len] = prompt_mask
    positions = position_ids(prompt_mask)
    next_position = positions[:, -1:] + 1  # (B, 1)
    out = model(
        input_ids=prompt_ids,
        attention_mask=attention[:, :prompt_len],
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    cache = [out.past_key_values]

    def advance(token: Tensor, t: int) -> Tensor:
        out = model(
            input_ids=token[:, None],
            attention_mask=attention[:, : prompt_len + t + 1],
            position_ids=next_position + t,
            past_key_values=cache[0],
            use_cache=True,
            logits_to_keep=1,
        )
        cache[0] = out.past_key_values
        return out.logits[:, -1]

    return out.logits[:, -1], advance


@torch.no_grad()
def sample_with_logprobs(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Samples:
    """Sample responses with the KV cache and keep each token's log-prob and entropy.

    Args:
        model: a causal LM; called as ``model(input_ids=..., attention_mask=...,
            position_ids=..., past_key_values=..., use_cache=True, logits_to_keep=1)``
            (a plain ``GPT2LMHeadModel`` runs through its modules with its own cache).
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``, 1 on real tokens.
        max_new_tokens: most tokens drawn per response.
        eos_id: the token that ends a response (kept in it).
        pad_id: the token written after a response ended.
        temperature: the logits are divided by it before sampling; must be > 0.
        generator: the source of randomness (on the model's device).

    Returns:
        :class:`Samples` of width ``R <= max_new_tokens``: sampling stops once every row ended.
    """
    _check_prompts(prompt_ids, prompt_mask)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use e.g. 1e-4 for greedy")
    batch = prompt_ids.shape[0]
    device = prompt_ids.device
    tokens = torch.empty(batch, max_new_tokens, dtype=torch.long, device=device)
    logprobs = torch.empty(batch, max_new_tokens, device=device)
    entropy = torch.empty(batch, max_new_tokens, device=device)
    ended = torch.zeros(batch, dtype=torch.bool, device=device)

    ids = prompt_ids.masked_fill(prompt_mask == 0, 0)  # pad ids may lie outside the vocab
    logits, advance = (gpt2_decoder if fast_gpt2_lm(model) else _hf_decoder)(
        model, ids, prompt_mask, max_new_tokens
    )
    length = max_new_tokens
    for t in range(max_new_tokens):
        logits = logits.float()
        logp = torch.log_softmax(logits / temperature if temperature != 1.0 else logits, dim=-1)
        probs = logp.exp()  # (B, V)
        drawn = _draw(probs, generator)  # fed back in: always a valid id, even where pad is not
        token = drawn.masked_fill(ended, pad_id)
        tokens[:, t] = token
        logprobs[:, t] = logp.gather(1, drawn[:, None]).squeeze(1)  # meaningless once ended
        entropy[:, t] = -(probs * logp).sum(-1)
        ended |= token == eos_id
        if t + 1 == max_new_tokens or bool(ended.all()):
            length = t + 1
            break
        logits = advance(drawn, t)
    return Samples(tokens[:, :length], logprobs[:, :length], entropy[:, :length])


def sample_responses(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample one response per prompt (see :func:`sample_with_logprobs` for the arguments).

    Returns:
        ``(B, R)`` long with ``R <= max_new_tokens``, ``pad_id`` after each row's first eos.
    """
    return sample_with_logprobs(
        model,
        prompt_ids,
        prompt_mask,
        max_new_tokens=max_new_tokens,
        eos_id=eos_id,
        pad_id=pad_id,
        temperature=temperature,
        generator=generator,
    ).response_ids


def _joined(
    prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor, eos_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The inputs that predict the response: ``(B, P+R-1)`` ids, attention mask, position ids.

    Prompt and response side by side, without the last response token: it predicts nothing
    and, being last, is attended to by nothing, so leaving it out changes no output.
    """
    _check_prompts(prompt_ids, prompt_mask)
    response_ids = response_ids[:, :-1]
    mask = torch.cat([prompt_mask.long(), response_mask(response_ids, eos_id).long()], dim=1)
    ids = torch.cat([prompt_ids, response_ids], dim=1).masked_fill_(mask == 0, 0)  # pads: any id
    return ids, mask, position_ids(mask)


def response_logits(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    response_ids: Tensor,
    *,
    eos_id: int,
    temperature: float = 1.0,
) -> Tensor:
    """Logits that predicted each response token, from one forward over prompt + response.

    Args:
        model: a causal LM accepting ``logits_to_keep``.
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``.
        response_ids: ``(B, R)`` long.
        eos_id: ends each response; the tokens after it are masked out of attention.
        temperature: the logits are divided by it.

    Returns:
        ``(B, R, V)`` float: row ``t`` is the distribution ``response_ids[:, t]`` was drawn from.
    """
    if fast_gpt2_lm(model):
        return response_logits_and_hidden(
            model, prompt_ids, prompt_mask, response_ids, eos_id=eos_id, temperature=temperature
        )[0]
    ids, mask, positions = _joined(prompt_ids, prompt_mask, response_ids, eos_id)
    # Only the R positions that predict a response token go through the LM head.
    logits = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        logits_to_keep=response_ids.shape[1],
    ).logits
    return logits.float() / temperature if temperature != 1.0 else logits.float()


def response_logits_and_hidden(
    model: PreTrainedModel,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    response_ids: Tensor,
    *,
    eos_id: int,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Logits and the trunk's last hidden states at the positions predicting the response.

    Runs ``model.base_model`` then ``model.get_output_embeddings()`` on the ``R`` positions
    only, so a value head can share the forward pass with the policy. (Models whose logits
    are more than the head applied to the trunk, e.g. soft-capped ones, need
    :func:`response_logits` instead.)

    Args:
        model: a causal LM with a ``base_model`` trunk and an output-embedding head.
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``.
        response_ids: ``(B, R)`` long.
        eos_id: ends each response.
        temperature: the logits are divided by it.

    Returns:
        ``(B, R, V)`` logits and ``(B, R, H)`` hidden states; position ``t`` sees the prompt and
        ``response_ids[:, :t]``.
    """
    hidden = response_hidden(model.base_model, prompt_ids, prompt_mask, response_ids, eos_id=eos_id)
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings; pass a causal LM")
    logits = head(hidden).float()
    return (logits / temperature if temperature != 1.0 else logits), hidden


def response_hidden(
    trunk: nn.Module, prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor, *, eos_id: int
) -> Tensor:
    """Last hidden states of a trunk (a model without LM head) before each response token.

    A ``GPT2Model`` runs through :func:`gpt2_hidden`, which skips the work whose output
    nothing reads; any other trunk through its own forward.

    Args:
        trunk: e.g. ``GPT2Model``, returning ``last_hidden_state``.
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``.
        response_ids: ``(B, R)`` long.
        eos_id: ends each response.

    Returns:
        ``(B, R, H)``: position ``t`` sees the prompt and ``response_ids[:, :t]``.
    """
    ids, mask, positions = _joined(prompt_ids, prompt_mask, response_ids, eos_id)
    width = response_ids.shape[1]
    if fast_gpt2(trunk):
        return gpt2_hidden(trunk, ids, mask, positions, width)
    hidden = trunk(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
    return hidden[:, -width:]


def token_logprobs(logits: Tensor, token_ids: Tensor) -> Tensor:
    """Log-probability of the given tokens.

    Args:
        logits: ``(B, R, V)``.
        token_ids: ``(B, R)`` long.

    Returns:
        ``(B, R)`` float.
    """
    # log_softmax is one fused kernel (forward and backward); logsumexp is not, on a CPU.
    return torch.log_softmax(logits, dim=-1).gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)


def response_logprobs(
    model: nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    response_ids: Tensor,
    *,
    eos_id: int,
    temperature: float = 1.0,
) -> Tensor:
    """Log-prob of each response token under ``model``, from one forward pass.

    Gradients flow when enabled. Entries after a response's first eos are 0, so
    ``.sum(-1)`` is the log-probability of the whole response.

    Args:
        model: a causal LM accepting ``logits_to_keep``.
        prompt_ids: ``(B, P)`` long, left-padded.
        prompt_mask: ``(B, P)``.
        response_ids: ``(B, R)`` long.
        eos_id: ends each response.
        temperature: the logits are divided by it.

    Returns:
        ``(B, R)`` float.
    """
    logits = response_logits(
        model, prompt_ids, prompt_mask, response_ids, eos_id=eos_id, temperature=temperature
    )
    real = response_mask(response_ids, eos_id)
    return token_logprobs(logits, response_ids.masked_fill(real == 0, 0)) * real
