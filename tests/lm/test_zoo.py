from __future__ import annotations


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
