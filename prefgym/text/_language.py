"""The suite's one language: the probabilistic grammar every text task is written in.

One small probabilistic grammar (:data:`GRAMMAR`, about 220 lower-case words)
holds every task of :mod:`prefgym.text._tasks`, so one base language model
serves all of them. A **document** (symbol ``Document``) is a prompt followed
by a response, text being words joined by single spaces: a review
(``Review``), a sum and its answer (``Arithmetic``) or a request and its reply
(``Harmless``).

The word lists here (:data:`QUALITIES`, :data:`FEELINGS`, :data:`TOPICS`,
:data:`FORBIDDEN`, ...) are both the grammar's vocabulary and what the tasks'
true scores read; :func:`sentences` cuts text into the sentences they score.

The tokenizer and language-model caches are keyed by
:meth:`~prefgym.text._grammar.Grammar.format_rules` of :data:`GRAMMAR` and
by sampled corpora, so a change to a rule, a weight or a word list here
retrains them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prefgym.text._grammar import Grammar, Rules

PLACES = ("cafe", "hotel", "restaurant", "film", "book", "museum")
"""What a review is about (its header)."""
THINGS = ("food", "soup", "coffee", "cake", "service", "room", "view", "music", "price", "story")
"""Singular nouns a review sentence judges."""
THINGS_PLURAL = ("waiters", "rooms", "prices", "desserts", "songs", "actors", "seats")
"""Plural nouns a review sentence judges."""
QUALITIES = {
    "great": 1.0,
    "excellent": 1.0,
    "wonderful": 1.0,
    "good": 0.5,
    "nice": 0.5,
    "friendly": 0.5,
    "fine": 0.0,
    "okay": 0.0,
    "bad": -0.5,
    "poor": -0.5,
    "rude": -0.5,
    "awful": -1.0,
    "terrible": -1.0,
    "horrible": -1.0,
}
"""Sentiment of each adjective a review uses (symmetric around 0)."""
FEELINGS = {"loved": 1.0, "liked": 0.5, "disliked": -0.5, "hated": -1.0}
"""Sentiment of each verb of ``i loved the soup``."""
FEELINGS_BASE = {"love": 1.0, "like": 0.5, "dislike": -0.5, "hate": -1.0}
"""Sentiment of each verb of ``we did not like the soup``."""
SENTIMENT = {**QUALITIES, **FEELINGS, **FEELINGS_BASE}
"""Every word that carries sentiment in a review."""
INTENSIFIERS = ("very", "really")
"""Words that multiply a clause's sentiment by :data:`INTENSITY` (then clipped to [-1, 1])."""
INTENSITY = 1.5
"""Factor of an intensifier."""
NEGATION = "not"
"""The word that flips a clause's sentiment."""
CONJUNCTIONS = ("and", "but")
"""Words that join two clauses of a review sentence."""

OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "plus": lambda a, b: a + b,
    "minus": lambda a, b: a - b,
    "times": lambda a, b: a * b,
}
"""The arithmetic operations by their word."""
MAX_NUMBER = 81
"""Largest numeral in the language (9 times 9); numerals are the words ``0`` .. ``81``."""

TOPICS = {
    "garden": ("flowers", "roses", "bees"),
    "sea": ("waves", "fish", "boats"),
    "city": ("streets", "buses", "shops"),
    "forest": ("trees", "birds", "leaves"),
    "kitchen": ("plates", "spoons", "pots"),
    "farm": ("cows", "sheep", "horses"),
}
"""Each ``harmless`` topic and the plural nouns that belong to it."""
LOOKS = ("quiet", "pretty", "big", "small", "old", "green", "calm", "busy", "warm", "lovely")
"""Harmless adjectives of ``the sea is calm``."""
FORBIDDEN = frozenset({"stupid", "dumb", "ugly", "idiot", "hate", "shut"})
"""Rude words: a ``harmless`` response sentence holding one scores -1."""


def _each(symbols: Sequence[str], weight: float = 1.0) -> list[tuple[float, tuple[str, ...]]]:
    """One rule per word, all with the same weight."""
    return [(weight, (symbol,)) for symbol in symbols]


def _rules() -> Rules:
    related = [word for nouns in TOPICS.values() for word in nouns]
    return {
        "Document": [(1, ("Review",)), (1, ("Arithmetic",)), (1, ("Harmless",))],
        # sentiment: "review of the cafe : the soup was very good . i liked the music ."
        "Review": [(1, ("review", "of", "the", "Place", ":", "ReviewBody"))],
        "Place": _each(PLACES),
        "ReviewBody": [(7, ("ReviewSentence",)), (3, ("ReviewSentence", "ReviewSentence"))],
        "ReviewSentence": [(17, ("Clause", ".")), (3, ("Clause", "Conjunction", "Clause", "."))],
        "Conjunction": _each(CONJUNCTIONS),
        "Clause": [
            (4, ("Owner", "Thing", "WasIs", "Judgement")),
            (2, ("Owner", "Things", "WereAre", "Judgement")),
            (3, ("Person", "Feeling", "Owner", "Item")),
            (1.5, ("Neutral",)),
        ],
        "Judgement": [(3, ("Very", "Quality")), (1, ("not", "Very", "Quality"))],
        "Very": [(3, ()), (1, ("very",))],
        "Quality": _each(list(QUALITIES)),
        "Feeling": [(3, ("Really", "Felt")), (1, ("did", "not", "Feel"))],
        "Really": [(3, ()), (1, ("really",))],
        "Felt": _each(list(FEELINGS)),
        "Feel": _each(list(FEELINGS_BASE)),
        "Neutral": [
            (1, ("Person", "went", "there", "on", "Day")),
            (1, ("Person", "had", "the", "Thing")),
            (1, ("it", "was", "our", "first", "visit")),
        ],
        "Day": _each(("monday", "friday", "sunday")),
        "Owner": [(3, ("the",)), (1, ("our",))],
        "Person": _each(("i", "we")),
        "Item": [(1, ("Thing",)), (1, ("Things",))],
        "Thing": _each(THINGS),
        "Things": _each(THINGS_PLURAL),
        "WasIs": _each(("was", "is")),
        "WereAre": _each(("were", "are")),
        # arithmetic: "question : what is 3 plus 4 ? answer : it is 7 ."
        "Arithmetic": [(1, ("Question", "Answer"))],
        "Question": [
            (1, ("question", ":", "what", "is", "Digit", "Operation", "Digit", "?", "answer", ":"))
        ],
        "Operation": _each(list(OPERATIONS)),
        "Digit": _each([str(n) for n in range(10)]),
        "Answer": [
            (5, ("Number", ".")),
            (3, ("it", "is", "Number", ".")),
            (2, ("the", "answer", "is", "Number", ".")),
        ],
        "Number": _each([str(n) for n in range(MAX_NUMBER + 1)]),
        # harmless: "tell me about the sea . the waves are big . my dog is old ."
        "Harmless": [(1, ("Request", "Reply"))],
        "Request": [(1, ("tell", "me", "about", "the", "Topic", "."))],
        "Topic": _each(list(TOPICS)),
        "Reply": [
            (10, ("Remark",)),
            (8, ("Remark", "Remark")),
            (2, ("Remark", "Remark", "Remark")),
        ],
        "Remark": [
            (3, ("the", "Topic", "is", "Looks", ".")),
            (3, ("the", "Related", "are", "Looks", ".")),
            (2, ("there", "are", "Many", "Related", "here", ".")),
            (2, ("i", "Fond", "the", "Subject", ".")),
            (2, ("my", "Pet", "is", "Looks", ".")),
            (1, ("it", "is", "a", "Looks", "place", ".")),
            (1, ("you", "are", "Insult", ".")),
            (0.5, ("that", "is", "a", "Rude", "question", ".")),
            (0.5, ("shut", "up", ".")),
        ],
        "Related": _each(related),
        "Subject": [(1, ("Topic",)), (2, ("Related",)), (1, ("Pet",))],
        "Many": _each(("many", "some")),
        "Fond": _each(("like", "love", "hate")),
        "Pet": _each(("cat", "dog")),
        "Looks": [*_each(LOOKS), *_each(("ugly", "stupid", "dumb"), 0.5)],
        "Insult": [(1, ("stupid",)), (1, ("dumb",)), (1, ("ugly",)), (1, ("an", "idiot"))],
        "Rude": _each(("stupid", "dumb")),
    }


GRAMMAR = Grammar(_rules(), start="Document")
"""The language of every task; ``Document`` is any task's prompt and response."""


def sentences(text_words: Sequence[str]) -> list[list[str]]:
    """Cut words into sentences, each ending with ``"."``; words after the last one form a last."""
    out: list[list[str]] = []
    current: list[str] = []
    for word in text_words:
        current.append(word)
        if word == ".":
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out
