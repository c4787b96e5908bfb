"""Tokenizers for the text game: text to token ids and back.

The environments take any :class:`TextCodec`. The suite's own is a byte-level
BPE (:class:`GrammarCodec`) trained on the game's corpus with the
``tokenizers`` package: words get a leading space marker (``Ġsoup``), so the
same word is always the same tokens, and with the default 512 entries every
word of :data:`~prefgym.text._language.GRAMMAR` is a single token. Its
alphabet is the characters of the training documents; text with any other
character cannot be encoded (:meth:`GrammarCodec.encode` says which).

:func:`grammar_codec` trains that tokenizer once and keeps it in the cache
directory (:func:`prefgym.cache.cache_dir`) under a name that changes with the
grammar, the corpus and the vocabulary size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from prefgym.cache import cache_dir

PAD_TOKEN = "<pad>"
"""Padding; id 0."""
EOS_TOKEN = "<eos>"
"""End of a response; id 1."""
TOKENIZER_FILE = "tokenizer.json"
"""File name of a saved tokenizer."""
CORPUS_SEED = 0
"""Seed of the corpus :func:`grammar_codec` trains on."""
CORPUS_SIZE = 20_000
"""Documents in that corpus."""
FORMAT_VERSION = 1
"""Bumped when training changes in a way the cache key cannot see (the sampler code)."""


@runtime_checkable
class TextCodec(Protocol):
    """What an environment needs from a tokenizer."""

    @property
    def vocab_size(self) -> int:
        """Number of token ids; ids are ``0 .. vocab_size - 1``."""
        ...

    @property
    def pad_id(self) -> int:
        """Id of the padding token."""
        ...

    @property
    def eos_id(self) -> int:
        """Id of the token that ends a response."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, with no special tokens added."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` up to the first end token, padding dropped, words single-spaced."""
        ...


def train_tokenizer(documents: Sequence[str], vocab_size: int = 512) -> tokenizers.Tokenizer:
    """Train a byte-level BPE tokenizer with ``<pad>`` (id 0) and ``<eos>`` (id 1).

    Training is deterministic: the same documents give the same tokenizer.

    Args:
        documents: Training text.
        vocab_size: Largest number of tokens, special tokens included; training
            stops earlier when no pair of tokens is left to merge.

    Returns:
        The tokenizer, with the byte-level decoder set.
    """
    if not documents:
        raise ValueError("documents is empty; give the tokenizer some text to train on")
    alphabet = {char for document in documents for char in document if not char.isspace()}
    minimum = 2 + len(alphabet) + 1
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size must be >= {minimum} (2 special tokens, the {len(alphabet)} characters of "
            f"the documents, the word marker), got {vocab_size}"
        )
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD_TOKEN, EOS_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator(documents, trainer)
    return tokenizer


class GrammarCodec:
    """A :class:`TextCodec` over a ``tokenizers`` tokenizer that has ``<pad>`` and ``<eos>``."""

    def __init__(self, tokenizer: tokenizers.Tokenizer) -> None:
        """Wrap ``tokenizer``.

        Args:
            tokenizer: A tokenizer holding the tokens :data:`PAD_TOKEN` and
                :data:`EOS_TOKEN`, as :func:`train_tokenizer` makes.

        Raises:
            ValueError: If a special token is missing.
        """
        pad_id, eos_id = tokenizer.token_to_id(PAD_TOKEN), tokenizer.token_to_id(EOS_TOKEN)
        if pad_id is None or eos_id is None:
            missing = [t for t, i in ((PAD_TOKEN, pad_id), (EOS_TOKEN, eos_id)) if i is None]
            raise ValueError(
                f"tokenizer lacks the special tokens {missing}; train it with train_tokenizer()"
            )
        self.tokenizer = tokenizer
        """The wrapped tokenizer."""
        self.vocab_size: int = tokenizer.get_vocab_size()
        """Number of token ids."""
        self.pad_id: int = pad_id
        """Id of ``<pad>``."""
        self.eos_id: int = eos_id
        """Id of ``<eos>``."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, with no special tokens added.

        Whitespace is normalised first (words joined by single spaces), so
        ``decode(encode(text)) == " ".join(text.split())``.

        Raises:
            ValueError: If ``text`` has characters outside the tokenizer's
                alphabet (they would be lost); the message names them.
        """
        text = " ".join(text.split())
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if self.decode(ids) != text:
            alphabet = "".join(self.tokenizer.get_vocab())
            unknown = sorted({c for c in text if not c.isspace() and c not in alphabet})
            raise ValueError(
                f"cannot encode {text!r}: characters {unknown} are not in the tokenizer's "
                "alphabet; write text in the grammar's words (see prefgym.text.words)"
            )
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of ``ids`` up to the first ``<eos>``, ``<pad>`` dropped, words single-spaced.

        Raises:
            ValueError: If an id is outside ``0 .. vocab_size - 1``.
        """
        kept: list[int] = []
        for token in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"token id {token} is outside 0 .. {self.vocab_size - 1}")
            if token == self.eos_id:
                break
            if token != self.pad_id:
                kept.append(token)
        return " ".join(self.tokenizer.decode(kept, skip_special_tokens=False).split())

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` into ``directory`` (created if needed); returns its path."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        file = path / TOKENIZER_FILE
        self.tokenizer.save(str(file))
        return file

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> GrammarCodec:
        """Read the codec that :meth:`save` wrote into ``directory``."""
        file = Path(directory) / TOKENIZER_FILE
        if not file.is_file():
            raise FileNotFoundError(
                f"no {TOKENIZER_FILE} in {str(directory)!r}; save a codec there"
            )
        return cls(tokenizers.Tokenizer.from_file(str(file)))


def codec_key(vocab_size: int) -> str:
    """The cache key of :func:`grammar_codec`: a hash of everything its tokenizer depends on."""
    from prefgym.text._language import GRAMMAR

    content = {
        "format": FORMAT_VERSION,
        "grammar": GRAMMAR.format_rules(),
        "corpus_seed": CORPUS_SEED,
        "corpus_size": CORPUS_SIZE,
        "vocab_size": vocab_size,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def grammar_codec(*, vocab_size: int = 512, refresh: bool = False) -> GrammarCodec:
    """The text game's tokenizer, trained on its corpus once and then read from the cache.

    It is trained on ``corpus(np.random.default_rng(0), 20_000)`` and kept in
    ``cache_dir() / f"tokenizer-{codec_key(vocab_size)}"``. Processes that
    train it at the same time each write a private directory and rename it
    into place; the first rename wins and the others read its result.

    Args:
        vocab_size: Largest number of tokens.
        refresh: Train again even if a cached tokenizer exists.

    Returns:
        The codec.
    """
    from prefgym.text._tasks import corpus

    root = cache_dir()
    target = root / f"tokenizer-{codec_key(vocab_size)}"
    if not refresh and (target / TOKENIZER_FILE).is_file():
        return GrammarCodec.load(target)
    documents = corpus(np.random.default_rng(CORPUS_SEED), CORPUS_SIZE)
    codec = GrammarCodec(train_tokenizer(documents, vocab_size))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        codec.save(staging)
        if refresh and target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=root))
            try:
                os.replace(target, stale / "old")
            except FileNotFoundError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / TOKENIZER_FILE).is_file():
                raise
            return GrammarCodec.load(target)  # another process put one there first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return codec
