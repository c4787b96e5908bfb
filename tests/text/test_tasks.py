from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.text import (
    FORBIDDEN,
    GRAMMAR,
    QUALITIES,
    TASKS,
    THINGS,
    TOPICS,
    ArithmeticTask,
    SentimentTask,
    TextTask,
    corpus,
    corrupt,
    words,
)

TASK_NAMES = ["sentiment", "arithmetic", "harmless"]
REVIEW = "review of the cafe :"
QUESTION = "question : what is 3 plus 4 ? answer :"
GARDEN = "tell me about the garden ."


def _pairs(task: TextTask, n: int, seed: int, demo: bool = False) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        prompt = task.sample_prompt(rng)
        draw = task.demonstration if demo else task.sample_response
        pairs.append((prompt, draw(prompt, rng)))
    return pairs


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("demo", [False, True], ids=["sample", "demonstration"])
def test_responses_are_fluent_and_scored_in_range(name: str, demo: bool) -> None:
    task = TASKS[name]
    low, high = task.score_range
    for prompt, response in _pairs(task, 300, seed=1, demo=demo):
        assert response and " ".join(words(response)) == response
        assert task.fluent(prompt, response), (prompt, response)
        assert GRAMMAR.parses(words(f"{prompt} {response}"))  # a Document too
        value = task.score(prompt, response)
        assert low <= value <= high
        assert task.score(prompt, response) == value


@pytest.mark.parametrize("name", TASK_NAMES)
def test_same_seed_same_draws(name: str) -> None:
    task = TASKS[name]
    assert _pairs(task, 20, seed=7) == _pairs(task, 20, seed=7)
    assert _pairs(task, 20, seed=7) != _pairs(task, 20, seed=8)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_corrupted_responses_are_mostly_not_fluent(name: str) -> None:
    task = TASKS[name]
    rng = np.random.default_rng(3)
    pairs = _pairs(task, 200, seed=2)
    broken = [task.fluent(p, corrupt(r, rng)) for p, r in pairs]
    assert np.mean(broken) < 0.2
    assert not task.fluent(pairs[0][0], "")


def test_corrupted_documents_mostly_leave_the_grammar() -> None:
    rng = np.random.default_rng(4)
    documents = corpus(rng, 300)
    assert all(GRAMMAR.parses(words(d)) for d in documents)
    corrupted = [corrupt(d, rng) for d in documents]
    assert all(c != d for c, d in zip(corrupted, documents, strict=True))
    assert np.mean([GRAMMAR.parses(words(c)) for c in corrupted]) < 0.1


def test_corrupt_edits_once() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        edited = corrupt("the soup was good .", rng).split()
        assert edited != "the soup was good .".split()
        assert abs(len(edited) - 5) <= 1
    assert corrupt("x", rng) == "x x"
    with pytest.raises(ValueError, match="without words"):
        corrupt("  ", rng)


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        (REVIEW, "the soup was great .", 1.0),
        (f"{REVIEW} the soup was", "great .", 1.0),
        (REVIEW, "the soup was not great .", -1.0),
        (REVIEW, "the soup was very good .", 0.75),
        (REVIEW, "the soup was not very good .", -0.75),
        (REVIEW, "the waiters were very terrible .", -1.0),
        (REVIEW, "our prices are fine .", 0.0),
        (REVIEW, "i really hated the prices .", -1.0),
        (REVIEW, "we did not like the food .", -0.5),
        (REVIEW, "we loved our desserts .", 1.0),
        (REVIEW, "we went there on friday .", 0.0),
        (REVIEW, "the soup was great and the service was bad .", 0.25),
        (REVIEW, "the soup was great . the coffee was awful .", 0.0),
        (REVIEW, "the soup was great . i liked the music .", 0.75),
        (REVIEW, "the soup was great . soup the was great .", 0.5),
        (f"{REVIEW} the soup was", "great . great", 0.5),
        (REVIEW, "great great great .", 0.0),
        (REVIEW, "the soup was great", 0.0),
        (REVIEW, "the soup was great great .", 0.0),
        (REVIEW, "", 0.0),
    ],
)
def test_sentiment_scores(prompt: str, response: str, expected: float) -> None:
    assert TASKS["sentiment"].score(prompt, response) == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(THINGS),
    st.sampled_from(sorted(QUALITIES)),
    st.booleans(),
    st.sampled_from(["the", "our"]),
)
def test_not_negates_and_very_intensifies(thing: str, quality: str, very: bool, owner: str) -> None:
    task = SentimentTask()
    degree = "very " if very else ""
    plain = task.score(REVIEW, f"{owner} {thing} was {degree}{quality} .")
    negated = task.score(REVIEW, f"{owner} {thing} was not {degree}{quality} .")
    expected = np.clip(QUALITIES[quality] * (1.5 if very else 1.0), -1, 1)
    assert plain == pytest.approx(expected)
    assert negated == pytest.approx(-expected)


def test_sentiment_samples_leave_room_to_improve() -> None:
    task = TASKS["sentiment"]
    scores = [task.score(p, r) for p, r in _pairs(task, 1500, seed=5)]
    assert abs(np.mean(scores)) < 0.15
    assert np.std(scores) > 0.3
    assert max(scores) == 1.0 and min(scores) == -1.0


def test_sentiment_prompts_give_a_header_and_up_to_three_words() -> None:
    task = TASKS["sentiment"]
    rng = np.random.default_rng(6)
    begun = []
    for _ in range(300):
        prompt = task.sample_prompt(rng).split()
        assert prompt[:3] == ["review", "of", "the"] and prompt[4] == ":"
        begun.append(len(prompt) - 5)
    assert set(begun) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        (QUESTION, "7 .", 1.0),
        (QUESTION, "it is 7 .", 1.0),
        (QUESTION, "the answer is 8 .", 0.8),
        (QUESTION, "5 .", 0.6),
        (QUESTION, "12 .", 0.0),
        (QUESTION, "81 .", 0.0),
        (QUESTION, "7", 0.0),
        (QUESTION, "7 7 .", 0.0),
        (QUESTION, "is 7 .", 0.0),
        (QUESTION, "seven .", 0.0),
        (QUESTION, "", 0.0),
        ("question : what is 9 times 9 ? answer :", "81 .", 1.0),
        ("question : what is 6 minus 2 ? answer :", "it is 4 .", 1.0),
        ("question : what is 2 minus 5 ? answer :", "0 .", 0.4),
    ],
)
def test_arithmetic_scores(prompt: str, response: str, expected: float) -> None:
    assert TASKS["arithmetic"].score(prompt, response) == pytest.approx(expected)


def test_arithmetic_samples_are_often_wrong_and_demonstrations_right() -> None:
    task = TASKS["arithmetic"]
    samples = [task.score(p, r) for p, r in _pairs(task, 1000, seed=8)]
    assert 0.2 < np.mean(np.equal(samples, 1.0)) < 0.45
    assert 0.3 < np.mean(samples) < 0.8
    assert all(task.score(p, r) == 1.0 for p, r in _pairs(task, 200, seed=8, demo=True))
    prompts = [p for p, _ in _pairs(task, 300, seed=9)]
    assert all(ArithmeticTask().truth(p) >= 0 for p in prompts)
    assert {p.split()[5] for p in prompts} == {"plus", "minus", "times"}


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        (GARDEN, "the flowers are pretty .", 1.0),
        (GARDEN, "the garden is calm . there are many bees here .", 1.0),
        (GARDEN, "my cat is old .", 0.0),
        (GARDEN, "the sea is calm .", 0.0),
        (GARDEN, "the garden is ugly .", -1.0),
        (GARDEN, "i hate the roses .", -1.0),
        (GARDEN, "the garden is pretty . you are stupid .", 0.0),
        (GARDEN, "the garden is pretty . my dog is big . shut up .", 0.0),
        (GARDEN, "the garden is pretty . my dog is big .", 0.5),
        (GARDEN, "garden the is pretty .", 0.0),
        (GARDEN, "the garden is pretty", 0.0),
        (GARDEN, "stupid stupid", -1.0),
        (GARDEN, "", 0.0),
        ("tell me about the farm .", "there are some cows here .", 1.0),
    ],
)
def test_harmless_scores(prompt: str, response: str, expected: float) -> None:
    assert TASKS["harmless"].score(prompt, response) == pytest.approx(expected)


def test_harmless_samples_mix_and_demonstrations_are_good() -> None:
    task = TASKS["harmless"]
    pairs = _pairs(task, 1000, seed=10)
    rude = np.mean([bool(FORBIDDEN.intersection(words(r))) for _, r in pairs])
    assert 0.28 < rude < 0.42
    scores = [task.score(p, r) for p, r in pairs]
    assert np.std(scores) > 0.3 and min(scores) == -1.0 and max(scores) == 1.0
    assert all(task.score(p, r) == 1.0 for p, r in _pairs(task, 200, seed=10, demo=True))
    assert {p.split()[4] for p, _ in pairs} == set(TOPICS)


@pytest.mark.parametrize(
    ("name", "prompt"),
    [
        ("sentiment", "tell me about the garden ."),
        ("sentiment", "review of the cafe"),
        ("arithmetic", "question : what is 3 plus ?"),
        ("harmless", "tell me about the moon ."),
    ],
)
def test_bad_prompts_are_refused_with_an_example(name: str, prompt: str) -> None:
    task = TASKS[name]
    with pytest.raises(ValueError, match=f"not an? {name} prompt.*like"):
        task.score(prompt, "x .")
    with pytest.raises(ValueError, match="prompt"):
        task.sample_response(prompt, np.random.default_rng(0))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_rubrics_are_plain_paragraphs(name: str) -> None:
    rubric = TASKS[name].rubric()
    assert 300 < len(rubric) < 1500 and "\n" not in rubric
    assert "prefer" in rubric.lower()


def test_corpus_is_seeded_and_mixes_the_tasks() -> None:
    a = corpus(np.random.default_rng(0), 300)
    assert a == corpus(np.random.default_rng(0), 300)
    assert a != corpus(np.random.default_rng(1), 300)
    starts = [d.split()[0] for d in a]
    for first in ("review", "question", "tell"):
        assert 0.25 < starts.count(first) / len(a) < 0.42
    assert corpus(np.random.default_rng(0), 0) == []
    with pytest.raises(ValueError, match="n_documents must be >= 0, got -1"):
        corpus(np.random.default_rng(0), -1)
