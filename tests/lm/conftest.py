"""Fixtures the language-model tests share; their helpers are in ``tests/lm/helpers.py``."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import GPT2LMHeadModel

from prefgym.text import GrammarCodec, corpus, train_tokenizer
from tests.lm.helpers import EOS
from tests.tiny_models import tiny_gpt2


@pytest.fixture(scope="module")
def documents() -> list[str]:
    """300 documents of the grammar's corpus (a fixed seed)."""
    return corpus(np.random.default_rng(0), 300)


@pytest.fixture(scope="module")
def codec(documents: list[str]) -> GrammarCodec:
    """A 400-token codec trained on ``documents``."""
    return GrammarCodec(train_tokenizer(documents, vocab_size=400))


@pytest.fixture(scope="module")
def model() -> GPT2LMHeadModel:
    """A tiny GPT-2 (``tests.tiny_models``) that ends on ``EOS``, in eval mode."""
    return tiny_gpt2(eos_id=EOS).eval()
