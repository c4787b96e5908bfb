"""What the language-model tests share: tiny configs and models, and sampling from them.

Import as ``from tests.lm.helpers import ...``; the ``documents``, ``codec`` and ``model``
fixtures that go with these live in ``tests/lm/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import GPT2LMHeadModel

from prefgym.lm import LanguageModelConfig, SftConfig, build_model, sample_with_logprobs
from prefgym.text import GrammarCodec

TINY = LanguageModelConfig(n_layer=1, n_head=2, n_embd=16, n_positions=48)
"""A one-layer model small enough to build and train in a test."""
TINY_SFT = SftConfig(n_demonstrations=16, steps=3, batch_size=4, warmup=1)
"""A few steps of SFT on a few demonstrations."""

EOS, PAD = 0, 1
"""The token ids of the ``model`` fixture (a tiny GPT-2) and of :func:`prompts`."""


def tiny_model(codec: GrammarCodec, seed: int = 0) -> GPT2LMHeadModel:
    """A :data:`TINY` model for ``codec`` whose weights depend on ``seed`` alone."""
    return build_model(TINY, codec, generator=torch.Generator().manual_seed(seed))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold the same tensors under the same names."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def logits(model: Any, ids: list[int]) -> torch.Tensor:
    """The model's logits for one sequence of ``ids``, without gradients."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def prompts(seed: int = 0, batch: int = 4, length: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompts: row i has i leading pads."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 64, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    for i in range(batch):
        mask[i, : min(i, length - 1)] = 0
        ids[i, : min(i, length - 1)] = PAD
    return ids, mask


def sample(model: Any, ids: torch.Tensor, mask: torch.Tensor, seed: int, **kw: Any) -> Any:
    """:func:`~prefgym.lm.sample_with_logprobs` with :data:`EOS`, :data:`PAD`, 10 new tokens
    unless ``kw`` says otherwise, and a generator seeded with ``seed``."""
    kw.setdefault("max_new_tokens", 10)
    return sample_with_logprobs(
        model,
        ids,
        mask,
        eos_id=EOS,
        pad_id=PAD,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )
