"""Pretraining and supervised fine-tuning of a causal language model.

:func:`pretrain` fits a causal LM to a corpus of token-id documents;
:func:`sft` fine-tunes it on (prompt, demonstration) pairs with the loss on the
response tokens only, the first stage of RLHF. Both share one loop: AdamW,
linear warmup, cosine decay, batches drawn from a ``torch.Generator`` so a seed
gives the same weights. :mod:`prefgym.lm._zoo` runs them on the
grammar's corpus and caches the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

if TYPE_CHECKING:
    from prefgym.text import TextCodec


_IGNORE = -100
"""Label that transformers' causal LM loss skips."""


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation shared by pretraining and SFT: AdamW, linear warmup, cosine decay."""

    steps: int = 3_000
    """Optimiser steps."""
    batch_size: int = 32
    """Sequences per step, drawn uniformly with replacement."""
    lr: float = 3e-3
    """Peak learning rate."""
    warmup: int = 100
    """Steps of linear warmup from 0 to ``lr``."""
    min_lr_ratio: float = 0.1
    """The cosine decay ends at ``lr * min_lr_ratio``."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay on matrices and embeddings (not biases or norms)."""
    grad_clip: float = 1.0
    """Largest gradient norm; 0 turns clipping off."""
    seed: int = 0
    """Seeds the data (documents, demonstrations) and the batch order."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0.0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup <= self.steps:
            raise ValueError(f"warmup must be in [0, steps={self.steps}], got {self.warmup}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0.0 or self.grad_clip < 0.0:
            raise ValueError(
                f"weight_decay and grad_clip must be >= 0, got {self.weight_decay} "
                f"and {self.grad_clip}"
            )


@dataclass(frozen=True)
class PretrainConfig(TrainingConfig):
    """Pretraining on the grammar's corpus; the defaults take 2-3 minutes on one CPU thread."""

    n_documents: int = 20_000
    """Documents ("prompt response") drawn from the grammar's corpus."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_documents < 1:
            raise ValueError(f"n_documents must be >= 1, got {self.n_documents}")


@dataclass(frozen=True)
class SftConfig(TrainingConfig):
    """Supervised fine-tuning on a task's demonstrations (fluent, on-task responses)."""

    n_demonstrations: int = 2_000
    """(prompt, demonstration) pairs drawn from the task."""
    steps: int = 300
    """About five passes over the default demonstrations."""
    lr: float = 1e-3
    """A third of pretraining's, to refine rather than relearn."""
    warmup: int = 30
    """A tenth of the steps."""
    weight_decay: float = 0.0
    """None: the few steps stay close to the base model anyway."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_demonstrations < 1:
            raise ValueError(f"n_demonstrations must be >= 1, got {self.n_demonstrations}")


def _special_ids(model: PreTrainedModel) -> tuple[int, int]:
    """(pad, eos) ids from the model's config; pad falls back to eos."""
    eos = model.config.eos_token_id
    if isinstance(eos, list):
        eos = eos[0]
    if eos is None:
        raise ValueError(f"{type(model).__name__} has no eos_token_id in its config; set it")
    pad = model.config.pad_token_id
    return (int(eos) if pad is None else int(pad)), int(eos)


def _fit(
    model: PreTrainedModel,
    inputs: list[list[int]],
    labels: list[list[int]],
    config: TrainingConfig,
    *,
    generator: torch.Generator,
    progress: bool,
    desc: str,
) -> list[float]:
    """Minimise the causal LM loss of ``inputs`` against ``labels`` (-100: no loss).

    Returns:
        The loss of every step.
    """
    pad_id, _ = _special_ids(model)
    lengths = torch.tensor([len(x) for x in inputs])
    width = int(lengths.max())
    ids = torch.full((len(inputs), width), pad_id, dtype=torch.long)
    targets = torch.full((len(inputs), width), _IGNORE, dtype=torch.long)
    for row, (x, y) in enumerate(zip(inputs, labels, strict=True)):
        ids[row, : len(x)] = torch.tensor(x)
        targets[row, : len(y)] = torch.tensor(y)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()

    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )

    def schedule(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        done = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * done)
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    device = next(model.parameters()).device
    losses: list[float] = []
    model.train()
    bar = tqdm(total=config.steps, desc=desc, unit="step", disable=not progress)
    for step in range(config.steps):
        batch = torch.randint(len(inputs), (config.batch_size,), generator=generator)
        cut = int(lengths[batch].max())
        out = model(
            input_ids=ids[batch, :cut].to(device),
            attention_mask=mask[batch, :cut].to(device),
            labels=targets[batch, :cut].to(device),
        )
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(out.loss.item())
        bar.update()
        if step % 20 == 0 or step == config.steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    return losses


def pretrain(
    model: PreTrainedModel,
    documents: Sequence[Sequence[int]],
    config: PretrainConfig,
    *,
    generator: torch.Generator,
    progress: bool = True,
) -> list[float]:
    """Fit ``model`` to ``documents`` with the causal LM loss, in place.

    An eos (``model.config.eos_token_id``) is appended to every document that does
    not end with one, so the model learns where texts stop; documents longer than
    the model's context are cut. Padding is masked out of attention and loss.

    Args:
        model: A causal LM, e.g. from :func:`~prefgym.lm._model.build_model`.
        documents: Token ids of each document (``config.n_documents`` is not used here).
        config: Optimisation settings.
        generator: Draws the batches; the same seed gives the same weights.
        progress: Whether to show a progress bar with rate and ETA.

    Returns:
        The training loss of every step.
    """
    if not documents:
        raise ValueError("documents is empty; pass at least one tokenised document")
    _, eos_id = _special_ids(model)
    limit = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    inputs = []
    for doc in documents:
        ids = [int(i) for i in doc]
        if not ids or ids[-1] != eos_id:
            ids.append(eos_id)
        inputs.append(ids[:limit])
    return _fit(
        model, inputs, inputs, config, generator=generator, progress=progress, desc="pretrain"
    )


def sft(
    model: PreTrainedModel,
    examples: Sequence[tuple[Sequence[int], Sequence[int]]],
    config: SftConfig,
    *,
    generator: torch.Generator,
    progress: bool = True,
) -> list[float]:
    """Supervised fine-tuning on (prompt, response) pairs, in place.

    The model reads ``prompt + response`` and is trained to predict the response
    tokens only: prompt positions carry the label -100.

    Args:
        model: A causal LM.
        examples: ``(prompt ids, response ids)``; the response should end with eos.
        config: Optimisation settings (``n_demonstrations`` is not used here).
        generator: Draws the batches.
        progress: Whether to show a progress bar with rate and ETA.

    Returns:
        The training loss of every step (mean over response tokens).
    """
    if not examples:
        raise ValueError("examples is empty; pass at least one (prompt, response) pair")
    limit = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    inputs, labels = [], []
    for prompt, response in examples:
        if not response:
            raise ValueError(f"an example for prompt {list(prompt)} has an empty response")
        if len(prompt) + len(response) > limit:
            raise ValueError(
                f"an example of {len(prompt)} prompt and {len(response)} response tokens exceeds "
                f"the model's {limit} positions; build the model with more n_positions"
            )
        inputs.append([int(i) for i in prompt] + [int(i) for i in response])
        labels.append([_IGNORE] * len(prompt) + [int(i) for i in response])
    return _fit(model, inputs, labels, config, generator=generator, progress=progress, desc="sft")


def encode_example(codec: TextCodec, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids of a prompt and of its response (ending with eos), as in the corpus.

    The pair is encoded as the document ``"prompt response"`` and split after the
    prompt's own encoding, so the response's ids are those the model continues
    the prompt with.

    Raises:
        ValueError: The codec tokenises the prompt differently inside the document.
    """
    prompt_ids = codec.encode(prompt)
    ids = codec.encode(f"{prompt} {response}")
    if ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(
            f"the codec splits prompt {prompt!r} differently when a response follows it; "
            "use a tokenizer that pre-splits on whitespace"
        )
    return prompt_ids, ids[len(prompt_ids) :] + [codec.eos_id]
