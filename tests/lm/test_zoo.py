"""The model zoo: specs, the cache of base and SFT models, sampling and evaluating responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from prefgym.lm import (
    METADATA_FILE,
    LanguageModel,
    PretrainConfig,
    base_model,
    evaluate_samples,
    generate_responses,
    load_language_model,
    save_language_model,
    sft_model,
)
from prefgym.lm import _zoo as text_models
from prefgym.text import TASKS, GrammarCodec
from tests.lm.helpers import TINY, TINY_SFT, same_weights, tiny_model

TINY_PRETRAIN = PretrainConfig(n_documents=64, steps=4, batch_size=4, warmup=1)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for the tests that build through it, so the tokenizer trains once."""
    return tmp_path_factory.mktemp("prefgym-cache")


# --- specs ---------------------------------------------------------------------------------


def test_unknown_spec_is_rejected() -> None:
    with pytest.raises(
        ValueError, match="'base', 'sft', 'sft-<task>', 'smollm2'.*got 'no/such/dir'"
    ):
        load_language_model("no/such/dir")


def test_specs_name_the_cached_models_and_smollm2(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    def fake(name: str) -> Any:
        def build(*args: Any, **kwargs: Any) -> str:
            calls.append((name, (*args, *sorted(kwargs.items()))))
            return name

        return build

    for name in ("base_model", "sft_model", "load_smollm2"):
        monkeypatch.setattr(text_models, name, fake(name))
    assert load_language_model("base", progress=False) == "base_model"
    assert load_language_model("sft", task="arithmetic", progress=False) == "sft_model"
    assert load_language_model("sft-harmless") == "sft_model"
    assert load_language_model("smollm2", progress=False) == "load_smollm2"
    assert calls == [
        ("base_model", (("progress", False),)),
        ("sft_model", ("arithmetic", ("progress", False))),
        ("sft_model", ("harmless", ("progress", True))),
        ("load_smollm2", (("progress", False),)),
    ]


def test_a_directory_named_like_a_task_is_loaded_as_a_directory(
    codec: GrammarCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    save_language_model(LanguageModel(tiny_model(codec, 2), codec, "mine"), tmp_path / "sft-local")

    def no_task(*args: Any, **kwargs: Any) -> LanguageModel:
        raise AssertionError("an existing directory was read as a task name")

    monkeypatch.setattr(text_models, "sft_model", no_task)
    lm = load_language_model("sft-local", progress=False)
    assert lm.name == "mine" and same_weights(lm.model, tiny_model(codec, 2))
    assert not lm.model.training


# --- sampling and evaluating ----------------------------------------------------------


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


def test_generate_responses_checks_its_arguments(codec: GrammarCodec) -> None:
    lm = LanguageModel(tiny_model(codec), codec, "tiny")
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        generate_responses(lm, ["hello"], max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0.0"):
        generate_responses(lm, ["hello"], temperature=0.0)
    with pytest.raises(ValueError, match="prompt '' encodes to no tokens"):
        generate_responses(lm, ["hello", ""])
    long = " ".join(["the soup was good ."] * 20)
    assert len(codec.encode(long)) >= TINY.n_positions
    with pytest.raises(ValueError, match="leaves no room in the model's 48 positions"):
        generate_responses(lm, [long])


def test_generate_responses_samples_batch_after_batch_in_order(codec: GrammarCodec) -> None:
    """With ``batch_size=1`` each prompt is sampled alone, in order, from one generator."""
    lm = LanguageModel(tiny_model(codec), codec, "tiny")
    prompts = ["tell me about the garden .", "hello", "question : what is 2 plus 2 ? answer :"]
    together = generate_responses(
        lm, prompts, generator=torch.Generator().manual_seed(4), max_new_tokens=6, batch_size=1
    )
    generator = torch.Generator().manual_seed(4)
    alone = [generate_responses(lm, [p], generator=generator, max_new_tokens=6)[0] for p in prompts]
    assert together == alone
    assert len(together) == 3


def test_evaluate_samples_measures_the_responses_it_samples(codec: GrammarCodec) -> None:
    """The four numbers are those of the task's judgment of ``generate_responses``' output
    for the prompts ``rng`` draws, and the model's training mode is left as it was."""
    lm = LanguageModel(tiny_model(codec).train(), codec, "tiny")
    task = TASKS["sentiment"]
    result = evaluate_samples(
        lm,
        task,
        5,
        rng=np.random.default_rng(3),
        generator=torch.Generator().manual_seed(3),
        temperature=0.7,
        max_new_tokens=6,
    )
    assert lm.model.training
    rng = np.random.default_rng(3)
    prompts = [task.sample_prompt(rng) for _ in range(5)]
    lm.model.eval()
    responses = generate_responses(
        lm, prompts, generator=torch.Generator().manual_seed(3), temperature=0.7, max_new_tokens=6
    )
    texts = [codec.decode(r).strip() for r in responses]
    ended = [r[-1] == codec.eos_id for r in responses]
    assert result["ended"] == pytest.approx(np.mean(ended))
    assert result["length"] == pytest.approx(
        np.mean([len(r) - e for r, e in zip(responses, ended, strict=True)])
    )
    assert result["score"] == pytest.approx(
        np.mean([task.score(p, t) for p, t in zip(prompts, texts, strict=True)])
    )
    assert result["fluency"] == pytest.approx(
        np.mean([task.fluent(p, t) for p, t in zip(prompts, texts, strict=True)])
    )
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        evaluate_samples(lm, task, 0, rng=np.random.default_rng(0))


# --- the cache ------------------------------------------------------------------------


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


def test_sft_models_of_two_tasks_share_one_base_and_two_directories(
    shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(shared_cache))
    base = base_model(config=TINY, pretrain_config=TINY_PRETRAIN, progress=False)

    def no_training(*args: Any, **kwargs: Any) -> list[float]:
        raise AssertionError("the cached base model was trained again")

    monkeypatch.setattr(text_models, "pretrain", no_training)
    tuned = {
        task: sft_model(
            task, config=TINY, pretrain_config=TINY_PRETRAIN, sft_config=TINY_SFT, progress=False
        )
        for task in ("arithmetic", "harmless")
    }
    keys = {task: lm.info["key"] for task, lm in tuned.items()}
    assert keys["arithmetic"] != keys["harmless"]
    for task, lm in tuned.items():
        assert lm.name == f"sft-{task}" and lm.info["base_key"] == base.info["key"]
        assert (shared_cache / "models" / f"sft-{task}-{keys[task]}" / METADATA_FILE).is_file()
    assert not same_weights(tuned["arithmetic"].model, tuned["harmless"].model)


def test_a_failed_write_leaves_no_model_and_no_debris(
    codec: GrammarCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "base-abc"
    real_save = text_models.save_language_model

    def half_save(lm: LanguageModel, directory: Path, **kwargs: Any) -> Path:
        (Path(directory) / "model.safetensors").write_bytes(b"half a model")
        raise OSError("disk full")

    def build() -> LanguageModel:
        return LanguageModel(tiny_model(codec), codec, "base")

    monkeypatch.setattr(text_models, "save_language_model", half_save)
    with pytest.raises(OSError, match="disk full"):
        text_models._cached(target, build, refresh=False, progress=False)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(text_models, "save_language_model", real_save)
    text_models._cached(target, build, refresh=False, progress=False)
    loaded = text_models._cached(target, build, refresh=False, progress=False)
    assert same_weights(loaded.model, tiny_model(codec))
    assert [p.name for p in tmp_path.iterdir()] == ["base-abc"]


# --- the shipped defaults (slow) ------------------------------------------------------


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
