from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prefgym.text import FORBIDDEN, GRAMMAR, TASKS, words
from prefgym.text._language import (
    CONJUNCTIONS,
    FEELINGS,
    FEELINGS_BASE,
    INTENSIFIERS,
    INTENSITY,
    LOOKS,
    MAX_NUMBER,
    NEGATION,
    OPERATIONS,
    PLACES,
    QUALITIES,
    SENTIMENT,
    THINGS,
    THINGS_PLURAL,
    TOPICS,
    sentences,
)

ROOT = Path(__file__).resolve().parents[2]
TASK_NAMES = ["sentiment", "arithmetic", "harmless"]
DOCUMENTS = ["Review", "Arithmetic", "Harmless"]


def _one_word_expansions(symbol: str) -> set[str]:
    """The words that ``symbol`` expands to in one step (its one-word rules)."""
    return {e[0] for _, e in GRAMMAR.rules[symbol] if len(e) == 1}


def test_one_small_lower_case_language() -> None:
    assert set(TASKS) == set(TASK_NAMES)
    assert 150 <= len(GRAMMAR.terminals) <= 250
    for word in GRAMMAR.terminals:
        assert words(word) == [word] and word == word.lower()
    assert FORBIDDEN <= GRAMMAR.terminals
    assert {str(n) for n in range(82)} <= GRAMMAR.terminals
    assert {task.document for task in TASKS.values()} <= GRAMMAR.nonterminals


def test_every_rule_is_reachable_from_a_document() -> None:
    assert GRAMMAR.start == "Document"
    reached, todo = {"Document"}, ["Document"]
    while todo:
        for _, expansion in GRAMMAR.rules[todo.pop()]:
            for symbol in expansion:
                if symbol in GRAMMAR.nonterminals and symbol not in reached:
                    reached.add(symbol)
                    todo.append(symbol)
    assert reached == GRAMMAR.nonterminals


def test_sampled_documents_use_every_word(rng: np.random.Generator) -> None:
    seen: set[str] = set()
    for _ in range(3000):
        document = GRAMMAR.sample(rng)
        assert GRAMMAR.parses(document)
        seen.update(document)
    assert seen == GRAMMAR.terminals, sorted(GRAMMAR.terminals - seen)


def test_documents_are_the_three_tasks_equally_often() -> None:
    assert GRAMMAR.probabilities("Document") == [
        (pytest.approx(1 / 3), (symbol,)) for symbol in DOCUMENTS
    ]
    assert [TASKS[name].document for name in TASK_NAMES] == DOCUMENTS


def test_the_word_lists_are_the_grammars_words() -> None:
    assert _one_word_expansions("Place") == set(PLACES)
    assert _one_word_expansions("Thing") == set(THINGS)
    assert _one_word_expansions("Things") == set(THINGS_PLURAL)
    assert _one_word_expansions("Quality") == set(QUALITIES)
    assert _one_word_expansions("Felt") == set(FEELINGS)
    assert _one_word_expansions("Feel") == set(FEELINGS_BASE)
    assert _one_word_expansions("Conjunction") == set(CONJUNCTIONS)
    assert _one_word_expansions("Operation") == set(OPERATIONS)
    assert _one_word_expansions("Number") == {str(n) for n in range(MAX_NUMBER + 1)}
    assert _one_word_expansions("Digit") == {str(n) for n in range(10)}
    assert _one_word_expansions("Topic") == set(TOPICS)
    assert _one_word_expansions("Related") == {w for nouns in TOPICS.values() for w in nouns}
    assert _one_word_expansions("Looks") >= set(LOOKS)
    assert _one_word_expansions("Very") | _one_word_expansions("Really") == set(INTENSIFIERS)
    assert NEGATION in GRAMMAR.terminals and NEGATION == "not"


def test_sentiment_words_are_symmetric_around_zero() -> None:
    for scores in (QUALITIES, FEELINGS, FEELINGS_BASE):
        values = sorted(scores.values())
        assert values == sorted(-v for v in values)
        assert all(-1.0 <= v <= 1.0 for v in values)
    assert sorted(FEELINGS.values()) == sorted(FEELINGS_BASE.values())
    assert SENTIMENT == {**QUALITIES, **FEELINGS, **FEELINGS_BASE}
    assert len(SENTIMENT) == len(QUALITIES) + len(FEELINGS) + len(FEELINGS_BASE)
    assert INTENSITY > 1.0
    assert not set(INTENSIFIERS) & set(SENTIMENT) and NEGATION not in SENTIMENT


def test_operations_compute_and_every_answer_of_two_digits_is_a_numeral() -> None:
    assert OPERATIONS["plus"](3, 4) == 7
    assert OPERATIONS["minus"](6, 2) == 4
    assert OPERATIONS["times"](9, 9) == 81
    results = [op(a, b) for op in OPERATIONS.values() for a in range(10) for b in range(10)]
    assert max(results) == MAX_NUMBER


def test_topics_own_their_nouns_and_rude_words_are_not_harmless_ones() -> None:
    nouns = [w for related in TOPICS.values() for w in related]
    assert len(nouns) == len(set(nouns))  # each noun belongs to one topic
    assert not set(nouns) & set(TOPICS)
    assert not FORBIDDEN & (set(LOOKS) | set(nouns) | set(TOPICS))
    assert _one_word_expansions("Rude") <= FORBIDDEN
    rude_looks = _one_word_expansions("Looks") - set(LOOKS)
    assert rude_looks and rude_looks <= FORBIDDEN


@pytest.mark.parametrize(
    ("symbol", "text"),
    [
        ("Review", "review of the cafe : the soup was very good . i liked the music ."),
        ("Review", "review of the film : we did not like the actors but the story is great ."),
        ("Review", "review of the hotel : it was our first visit ."),
        ("Arithmetic", "question : what is 3 plus 4 ? answer : it is 7 ."),
        ("Arithmetic", "question : what is 9 times 9 ? answer : the answer is 81 ."),
        ("Harmless", "tell me about the sea . the waves are big . my dog is old ."),
        ("Harmless", "tell me about the farm . you are an idiot . shut up ."),
    ],
)
def test_the_grammar_parses_the_tasks_documents(symbol: str, text: str) -> None:
    document = words(text)
    assert GRAMMAR.parses(document)
    for other in DOCUMENTS:
        assert GRAMMAR.parses(document, other) == (other == symbol)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_what_each_task_generates_is_its_own_kind_of_document(
    name: str, rng: np.random.Generator
) -> None:
    task = TASKS[name]
    for _ in range(40):
        prompt = task.sample_prompt(rng)
        for response in (task.demonstration(prompt, rng), task.sample_response(prompt, rng)):
            document = words(f"{prompt} {response}")
            for symbol in DOCUMENTS:
                assert GRAMMAR.parses(document, symbol) == (symbol == task.document), document


@pytest.mark.parametrize(
    "text",
    [
        "review of the cafe : the soup was good",  # no full stop
        "review of the cafe :",  # no review
        "the soup was good .",  # no header
        "review of the cafe : the soup were good .",
        "question : what is 10 plus 4 ? answer : 14 .",  # 10 is not a digit
        "question : what is 3 plus 4 ? answer : 82 .",  # past the largest numeral
        "tell me about the moon . the moon is calm .",  # not a topic
        "tell me about the sea .",  # no reply
        "tell me about the sea . the soup was good .",  # a review sentence in a reply
    ],
)
def test_the_grammar_refuses_what_is_not_a_document(text: str) -> None:
    assert not GRAMMAR.parses(words(text))


def test_sentences_end_at_each_full_stop() -> None:
    assert sentences("the soup was good . i liked it .".split()) == [
        ["the", "soup", "was", "good", "."],
        ["i", "liked", "it", "."],
    ]
    assert sentences("great . great".split()) == [["great", "."], ["great"]]
    assert sentences(["."]) == [["."]]
    assert sentences(". .".split()) == [["."], ["."]]
    assert sentences([]) == []
    assert sentences(("a", "b")) == [["a", "b"]]


def test_the_rules_text_is_the_same_in_every_process() -> None:
    """Caches are keyed by ``GRAMMAR.format_rules()``: it must not depend on set order."""
    code = (
        "import hashlib\nfrom prefgym.text._language import GRAMMAR\n"
        "print(hashlib.sha256(GRAMMAR.format_rules().encode()).hexdigest())"
    )
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1
    rules = GRAMMAR.format_rules().splitlines()
    assert rules[0] == "start: Document" and len(rules) == 1 + sum(
        len(options) for options in GRAMMAR.rules.values()
    )
