"""Pretraining and SFT: the configs, the shared loop (batches, schedule, decay, clipping),
what each stage trains on, and how an example is split into prompt and response."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from prefgym.lm import (
    LanguageModelConfig,
    PretrainConfig,
    SftConfig,
    build_model,
    encode_example,
    pretrain,
    sft,
)
from prefgym.text import GrammarCodec
from tests.lm.helpers import TINY, TINY_SFT, logits, same_weights, tiny_model
from tests.tiny_models import tiny_gpt2


def record_inputs(model: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    """Every forward's keyword arguments (input_ids, attention_mask, labels), in order."""
    seen: list[dict[str, torch.Tensor]] = []
    model.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append({k: v.clone() for k, v in kwargs.items()}),
        with_kwargs=True,
    )
    return seen


# --- configs -------------------------------------------------------------------------


def test_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError, match=r"warmup must be in \[0, steps=5\], got 10"):
        PretrainConfig(steps=5, warmup=10)
    with pytest.raises(ValueError, match="n_demonstrations must be >= 1"):
        SftConfig(n_demonstrations=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        SftConfig(lr=0.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PretrainConfig(steps=0), "steps must be >= 1, got 0"),
        (lambda: PretrainConfig(batch_size=0), "batch_size must be >= 1, got 0"),
        (lambda: PretrainConfig(min_lr_ratio=1.5), "min_lr_ratio must be in"),
        (lambda: PretrainConfig(weight_decay=-0.1), "weight_decay and grad_clip must be >= 0"),
        (lambda: SftConfig(grad_clip=-1.0), "weight_decay and grad_clip must be >= 0"),
        (lambda: PretrainConfig(n_documents=0), "n_documents must be >= 1, got 0"),
        (lambda: SftConfig(steps=10), r"warmup must be in \[0, steps=10\], got 30"),
    ],
)
def test_every_setting_is_checked(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# --- pretraining ----------------------------------------------------------------------


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


class RecordingAdamW(torch.optim.AdamW):
    """AdamW that notes the learning rate of every step."""

    made: list[RecordingAdamW] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lrs: list[float] = []
        RecordingAdamW.made.append(self)

    def step(self, closure: Any = None) -> Any:
        self.lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_the_learning_rate_warms_up_linearly_then_decays_by_a_cosine(
    codec: GrammarCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RecordingAdamW, "made", [])
    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    config = PretrainConfig(steps=10, warmup=3, lr=0.01, min_lr_ratio=0.1, batch_size=2)
    pretrain(
        tiny_model(codec),
        [codec.encode("the soup was good .")],
        config,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    (optimizer,) = RecordingAdamW.made
    lrs = optimizer.lrs
    assert len(lrs) == 10
    assert lrs[:4] == pytest.approx([0.01 / 3, 0.02 / 3, 0.01, 0.01])  # ramp, then the peak
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:], strict=False))  # then strictly down
    for step in range(3, 10):
        done = (step - 3) / 7
        expected = 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        assert lrs[step] == pytest.approx(expected), step
    assert lrs[-1] > 0.01 * 0.1


def test_weight_decay_is_on_matrices_and_embeddings_only(
    codec: GrammarCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RecordingAdamW, "made", [])
    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    model = tiny_model(codec)
    pretrain(
        model,
        [codec.encode("hello")],
        PretrainConfig(steps=1, warmup=0, weight_decay=0.05),
        generator=torch.Generator(),
        progress=False,
    )
    decayed, plain = RecordingAdamW.made[0].param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert decayed["params"] and all(p.ndim >= 2 for p in decayed["params"])
    assert plain["params"] and all(p.ndim < 2 for p in plain["params"])
    grouped = {id(p) for p in decayed["params"] + plain["params"]}
    assert grouped == {id(p) for p in model.parameters()}
    assert model.transformer.wte.weight in decayed["params"]


@pytest.mark.parametrize("grad_clip", [0.25, 0.0])
def test_gradients_are_clipped_to_grad_clip_unless_it_is_zero(
    codec: GrammarCodec, monkeypatch: pytest.MonkeyPatch, grad_clip: float
) -> None:
    norms: list[float] = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip(parameters: Any, max_norm: float, *args: Any, **kwargs: Any) -> torch.Tensor:
        parameters = list(parameters)
        total = real_clip(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
        norms.append(float(after))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    config = PretrainConfig(steps=3, warmup=0, batch_size=4, grad_clip=grad_clip)
    pretrain(
        tiny_model(codec),
        [codec.encode("tell me about the garden .")],
        config,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    if grad_clip:
        assert len(norms) == 3
        assert all(n == pytest.approx(grad_clip, rel=1e-4) for n in norms)  # random init: large
    else:
        assert norms == []


def test_long_documents_are_cut_to_the_context_and_batches_to_their_longest(
    codec: GrammarCodec,
) -> None:
    model = tiny_model(codec)  # 48 positions
    seen = record_inputs(model)
    ended = [7, 8, codec.eos_id]
    documents = [[9] * 100, ended]
    pretrain(
        model,
        documents,
        PretrainConfig(steps=8, batch_size=1, warmup=0),
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    rows = {tuple(batch["input_ids"][0].tolist()) for batch in seen}
    # the long document is cut to the context (its eos falls off), the short one keeps
    # its own eos (none is added), and a batch of one has no padding column
    assert rows == {(9,) * 48, tuple(ended)}
    assert all(bool(batch["attention_mask"].all()) for batch in seen)


def test_without_a_pad_id_the_eos_pads() -> None:
    eos = 3
    model = tiny_gpt2(eos_id=eos)
    assert model.config.pad_token_id is None
    seen = record_inputs(model)
    pretrain(
        model,
        [[5, 6, 7, 8, 9], [10]],
        PretrainConfig(steps=4, batch_size=8, warmup=0),
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    padded = [b["input_ids"][b["attention_mask"] == 0] for b in seen]
    assert sum(len(p) for p in padded) > 0
    assert all(bool((p == eos).all()) for p in padded)


def test_a_model_without_an_eos_id_is_refused() -> None:
    model = tiny_gpt2(eos_id=0)
    model.config.eos_token_id = None
    with pytest.raises(ValueError, match="GPT2LMHeadModel has no eos_token_id"):
        pretrain(model, [[5, 6]], PretrainConfig(steps=1, warmup=0), generator=torch.Generator())


def test_empty_data_is_refused(codec: GrammarCodec) -> None:
    model = tiny_model(codec)
    with pytest.raises(ValueError, match="documents is empty"):
        pretrain(model, [], PretrainConfig(steps=1, warmup=0), generator=torch.Generator())
    with pytest.raises(ValueError, match="examples is empty"):
        sft(model, [], TINY_SFT, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"prompt \[5, 6\] has an empty response"):
        sft(model, [([5, 6], [])], TINY_SFT, generator=torch.Generator())


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


def test_sft_changes_the_model_and_is_deterministic_from_a_seed(codec: GrammarCodec) -> None:
    examples = [
        encode_example(codec, "review of the cafe : the soup was", "very good ."),
        encode_example(codec, "question : what is 2 plus 2 ? answer :", "it is 4 ."),
    ]

    def run(seed: int) -> tuple[GPT2LMHeadModel, list[float]]:
        model = tiny_model(codec)
        losses = sft(
            model, examples, TINY_SFT, generator=torch.Generator().manual_seed(seed), progress=False
        )
        return model, losses

    (a, la), (b, lb), (c, _) = run(0), run(0), run(1)
    assert la == lb and len(la) == TINY_SFT.steps
    assert same_weights(a, b)
    assert not same_weights(a, c)  # another batch order
    assert not same_weights(a, tiny_model(codec))
    assert not a.training


class JoiningCodec:
    """A codec that reads a whole text as one token, so a prompt's ids change when a
    response follows it."""

    vocab_size, pad_id, eos_id = 100, 0, 1

    def encode(self, text: str) -> list[int]:
        return [len(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return ""


def test_encode_example_refuses_a_codec_that_splits_the_prompt_differently() -> None:
    with pytest.raises(ValueError, match="splits prompt 'the soup' differently"):
        encode_example(JoiningCodec(), "the soup", "was good .")
