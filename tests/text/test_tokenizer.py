from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.text import (
    EOS_TOKEN,
    GRAMMAR,
    PAD_TOKEN,
    GrammarCodec,
    TextCodec,
    codec_key,
    corpus,
    grammar_codec,
    train_tokenizer,
    words,
)
from prefgym.text import _tokenizer as text_tokenizer

SMALL = 1500
"""Documents of the small corpora the tests train on (the real one has 20,000)."""


@pytest.fixture(scope="module")
def documents() -> list[str]:
    return corpus(np.random.default_rng(0), SMALL)


@pytest.fixture(scope="module")
def codec(documents: list[str]) -> GrammarCodec:
    return GrammarCodec(train_tokenizer(documents))


def test_special_tokens_come_first(codec: GrammarCodec) -> None:
    assert (codec.pad_id, codec.eos_id) == (0, 1)
    assert codec.tokenizer.id_to_token(0) == PAD_TOKEN
    assert codec.tokenizer.id_to_token(1) == EOS_TOKEN
    assert codec.vocab_size == codec.tokenizer.get_vocab_size() <= 512
    assert isinstance(codec, TextCodec)


def test_training_is_deterministic(documents: list[str], codec: GrammarCodec) -> None:
    again = train_tokenizer(documents)
    assert again.to_str() == codec.tokenizer.to_str()
    other = train_tokenizer(corpus(np.random.default_rng(1), SMALL))
    assert other.to_str() != codec.tokenizer.to_str()


def test_training_is_deterministic_across_processes(codec: GrammarCodec) -> None:
    script = (
        "import numpy as np, sys\n"
        "from prefgym.text._tasks import corpus\n"
        "from prefgym.text._tokenizer import train_tokenizer\n"
        f"docs = corpus(np.random.default_rng(0), {SMALL})\n"
        "sys.stdout.write(train_tokenizer(docs).to_str())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout == codec.tokenizer.to_str()


def test_every_grammar_word_round_trips(codec: GrammarCodec) -> None:
    for word in sorted(GRAMMAR.terminals):
        assert codec.decode(codec.encode(word)) == word
    everything = " ".join(sorted(GRAMMAR.terminals))
    assert codec.decode(codec.encode(everything)) == everything


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_grammar_text_round_trips(codec: GrammarCodec, seed: int) -> None:
    rng = np.random.default_rng(seed)
    text = " ".join(GRAMMAR.sample(rng))
    ids = codec.encode(text)
    assert all(0 <= i < codec.vocab_size for i in ids)
    assert codec.pad_id not in ids and codec.eos_id not in ids
    assert codec.decode(ids) == text


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(sorted(GRAMMAR.terminals)), max_size=12))
def test_any_word_sequence_round_trips(codec: GrammarCodec, sequence: list[str]) -> None:
    text = " ".join(sequence)
    assert codec.decode(codec.encode(text)) == text


def test_decode_stops_at_eos_and_drops_padding(codec: GrammarCodec) -> None:
    first, second = codec.encode("the soup was good ."), codec.encode("my dog is old .")
    pad, eos = codec.pad_id, codec.eos_id
    assert codec.decode(first + [eos] + second) == "the soup was good ."
    assert codec.decode([pad] + first[:2] + [pad, pad] + first[2:] + [pad]) == "the soup was good ."
    assert codec.decode(np.array(first + [eos, eos])) == "the soup was good ."
    assert codec.decode([eos] + first) == ""
    assert codec.decode([]) == ""


def test_decode_normalises_spacing(codec: GrammarCodec) -> None:
    assert codec.decode(codec.encode("  the soup\nwas   good . ")) == "the soup was good ."


def test_bad_ids_and_characters_are_refused(codec: GrammarCodec) -> None:
    with pytest.raises(ValueError, match=f"token id {codec.vocab_size} is outside"):
        codec.decode([2, codec.vocab_size])
    with pytest.raises(ValueError, match=r"token id -1"):
        codec.decode([-1])
    with pytest.raises(ValueError, match=r"characters \['H', '!'\]|characters \['!', 'H'\]"):
        codec.encode("Hello there!")


def test_save_and_load(tmp_path: Path, codec: GrammarCodec) -> None:
    file = codec.save(tmp_path / "tok")
    assert file == tmp_path / "tok" / "tokenizer.json" and file.is_file()
    loaded = GrammarCodec.load(tmp_path / "tok")
    assert loaded.tokenizer.to_str() == codec.tokenizer.to_str()
    assert (loaded.vocab_size, loaded.pad_id, loaded.eos_id) == (
        codec.vocab_size,
        codec.pad_id,
        codec.eos_id,
    )
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        GrammarCodec.load(tmp_path / "nothing")


def test_refuses_what_it_cannot_use() -> None:
    bare = tokenizers.Tokenizer(tokenizers.models.BPE())
    with pytest.raises(ValueError, match=r"lacks the special tokens \['<pad>', '<eos>'\]"):
        GrammarCodec(bare)
    with pytest.raises(ValueError, match="vocab_size must be >= .* got 10"):
        train_tokenizer(["the soup was good ."], vocab_size=10)
    with pytest.raises(ValueError, match="documents is empty"):
        train_tokenizer([])


class _WordCodec:
    """A codec written elsewhere: one id per word."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.itos = ["<pad>", "<eos>", *vocabulary]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.vocab_size, self.pad_id, self.eos_id = len(self.itos), 0, 1

    def encode(self, text: str) -> list[int]:
        return [self.stoi[w] for w in words(text)]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i != self.pad_id:
                out.append(self.itos[i])
        return " ".join(out)


def test_other_codecs_satisfy_the_protocol() -> None:
    other = _WordCodec(sorted(GRAMMAR.terminals))
    assert isinstance(other, TextCodec)
    assert not isinstance(object(), TextCodec)


@pytest.fixture
def small_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PREFGYM_CACHE", str(tmp_path))
    monkeypatch.setattr(text_tokenizer, "CORPUS_SIZE", 300)
    return tmp_path


def _count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = text_tokenizer.train_tokenizer

    def counting(documents: Sequence[str], vocab_size: int = 512) -> tokenizers.Tokenizer:
        calls.append(len(documents))
        return real(documents, vocab_size)

    monkeypatch.setattr(text_tokenizer, "train_tokenizer", counting)
    return calls


def test_grammar_codec_is_cached(monkeypatch: pytest.MonkeyPatch, small_cache: Path) -> None:
    calls = _count_training(monkeypatch)
    first = grammar_codec()
    assert calls == [300]
    folder = small_cache / f"tokenizer-{codec_key(512)}"
    assert (folder / "tokenizer.json").is_file()
    second = grammar_codec()
    assert calls == [300]  # read, not trained
    assert second.tokenizer.to_str() == first.tokenizer.to_str()
    grammar_codec(refresh=True)
    assert calls == [300, 300]
    smaller = grammar_codec(vocab_size=300)
    assert calls == [300, 300, 300] and smaller.vocab_size <= 300
    assert codec_key(300) != codec_key(512)
    assert sorted(p.name for p in small_cache.iterdir()) == sorted(
        [folder.name, f"tokenizer-{codec_key(300)}"]
    )  # no staging or stale folders left behind


def test_key_covers_corpus_and_format(monkeypatch: pytest.MonkeyPatch) -> None:
    key = codec_key(512)
    assert key == codec_key(512)
    monkeypatch.setattr(text_tokenizer, "CORPUS_SIZE", 100)
    assert codec_key(512) != key
    monkeypatch.undo()
    monkeypatch.setattr(text_tokenizer, "FORMAT_VERSION", 99)
    assert codec_key(512) != key


def test_grammar_codec_yields_to_a_concurrent_writer(
    monkeypatch: pytest.MonkeyPatch, small_cache: Path, documents: list[str]
) -> None:
    """Another process finishes first: its tokenizer is kept and read back."""
    theirs = GrammarCodec(train_tokenizer(documents[:200]))
    real = text_tokenizer.train_tokenizer

    def racing(docs: Sequence[str], vocab_size: int = 512) -> tokenizers.Tokenizer:
        theirs.save(small_cache / f"tokenizer-{codec_key(vocab_size)}")
        return real(docs, vocab_size)

    monkeypatch.setattr(text_tokenizer, "train_tokenizer", racing)
    got = grammar_codec()
    assert got.tokenizer.to_str() == theirs.tokenizer.to_str()
    assert [p.name for p in small_cache.iterdir()] == [f"tokenizer-{codec_key(512)}"]


def test_default_codec_has_one_token_per_word(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFGYM_CACHE", str(tmp_path))
    codec = grammar_codec()
    assert codec.vocab_size <= 512
    assert all(len(codec.encode(word)) == 1 for word in GRAMMAR.terminals)
    text = "review of the restaurant : the waiters were not very friendly ."
    assert codec.decode(codec.encode(text)) == text
    assert len(codec.encode(text)) == len(text.split())
