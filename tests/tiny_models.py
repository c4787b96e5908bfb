"""A tiny randomly initialised GPT-2 language model, built the same way by the agent tests."""

from __future__ import annotations

from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel

DEFAULTS: dict[str, Any] = {
    "n_layer": 2,
    "n_head": 2,
    "n_embd": 32,
    "vocab_size": 64,
    "n_positions": 64,
}
"""The config values every caller shares unless it overrides them."""


def tiny_gpt2(
    seed: int = 0, *, eos_id: int, dropout: float | None = None, **overrides: Any
) -> GPT2LMHeadModel:
    """A small GPT-2 whose weights depend on ``seed`` alone, returned in training mode.

    Args:
        seed: Seeds torch for the initialisation; the global RNG state is left untouched.
        eos_id: Both the ``eos_token_id`` and the ``bos_token_id`` of the config.
        dropout: When given, the residual, embedding and attention dropout; otherwise
            GPT-2's defaults.
        **overrides: Further ``GPT2Config`` values, replacing :data:`DEFAULTS`.
    """
    if dropout is not None:
        pdrops = {"resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout}
        overrides = pdrops | overrides
    config = GPT2Config(**(DEFAULTS | overrides), bos_token_id=eos_id, eos_token_id=eos_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)
