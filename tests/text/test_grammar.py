from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.text import Grammar, is_nonterminal, words

# An ambiguous, left- and right-recursive grammar of arithmetic expressions.
EXPRESSIONS = Grammar(
    {
        "E": [
            (0.15, ("E", "+", "E")),
            (0.15, ("E", "*", "E")),
            (0.1, ("(", "E", ")")),
            (1, ("N",)),
        ],
        "N": [(1, ("n",)), (1, ("m",))],
    },
    start="E",
)
# Nullable symbols, a unary cycle through a nullable one, and a non-regular language (a^k b^k).
NULLABLE = Grammar(
    {
        "S": [(1, ("A", "B", "x")), (1, ("P",))],
        "A": [(1, ()), (1, ("a",))],
        "B": [(1, ("A",)), (1, ("C",))],
        "C": [(1, ("B",)), (2, ("b",))],
        "P": [(1, ("a", "P", "b")), (2, ())],
    },
    start="S",
)


def language(rules: Mapping[str, Sequence[tuple[float, tuple[str, ...]]]], max_len: int) -> dict:
    """Every string of length <= max_len that each nonterminal derives: a least fixed point."""
    derived: dict[str, set[tuple[str, ...]]] = {name: set() for name in rules}
    changed = True
    while changed:
        changed = False
        for name, options in rules.items():
            for _, expansion in options:
                partial: set[tuple[str, ...]] = {()}
                for symbol in expansion:
                    parts = derived[symbol] if is_nonterminal(symbol) else {(symbol,)}
                    partial = {p + q for p in partial for q in parts if len(p) + len(q) <= max_len}
                new = partial - derived[name]
                if new:
                    derived[name] |= new
                    changed = True
    return derived


def all_strings(alphabet: Sequence[str], max_len: int) -> list[tuple[str, ...]]:
    return [s for n in range(max_len + 1) for s in itertools.product(alphabet, repeat=n)]


def test_words_splits_punctuation_and_lowercases() -> None:
    assert words("The soup, was GOOD.") == ["the", "soup", ",", "was", "good", "."]
    assert words("  what is 3 plus 45?answer:") == [
        *["what", "is", "3", "plus", "45", "?", "answer", ":"]
    ]
    assert words("") == []
    assert words("a  b\n\tc") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("grammar", "alphabet", "max_len"),
    [(EXPRESSIONS, ["n", "m", "+", "*", "(", ")"], 5), (NULLABLE, ["a", "b", "x"], 7)],
    ids=["expressions", "nullable"],
)
def test_earley_matches_brute_force_exhaustively(
    grammar: Grammar, alphabet: list[str], max_len: int
) -> None:
    truth = language(grammar.rules, max_len)[grammar.start]
    accepted = {s for s in all_strings(alphabet, max_len) if grammar.parses(s)}
    assert accepted == truth
    assert len(truth) > 5  # the check is not vacuous


def test_known_members_of_tiny_grammars() -> None:
    assert EXPRESSIONS.parses("n + m * n".split())
    assert EXPRESSIONS.parses("( ( n ) + m ) * n + n".split())
    assert not EXPRESSIONS.parses("n + * n".split())
    assert not EXPRESSIONS.parses("( n".split())
    assert NULLABLE.parses([])  # P -> ()
    assert NULLABLE.parses(["x"])  # A, B both empty
    assert NULLABLE.parses("a a a b b b".split())
    assert not NULLABLE.parses("a a b".split())
    assert NULLABLE.parses(["a"], "A") and NULLABLE.parses([], "B")


def test_prefix_viability() -> None:
    assert EXPRESSIONS.is_prefix([])
    assert EXPRESSIONS.is_prefix("( n +".split())
    assert not EXPRESSIONS.is_prefix("n )".split())
    assert NULLABLE.is_prefix("a a b".split())
    assert not NULLABLE.is_prefix("b a".split())


@st.composite
def random_grammars(draw: st.DrawFn) -> Grammar:
    names = ["S", "A", "B"]
    symbols = st.sampled_from([*names, "a", "b"])
    rules = {}
    for name in names:
        expansions = draw(st.lists(st.lists(symbols, max_size=3), min_size=1, max_size=3))
        ending = draw(st.sampled_from([(), ("a",), ("b",)]))
        # a heavy way out keeps the grammar consistent whatever the other rules are
        rules[name] = [(10.0, ending), *((1.0, tuple(e)) for e in expansions)]
    return Grammar(rules, start="S")


@settings(max_examples=60, deadline=None)
@given(random_grammars())
def test_earley_matches_brute_force_on_random_grammars(grammar: Grammar) -> None:
    max_len = 4
    derived = language(grammar.rules, max_len)
    for string in all_strings(["a", "b"], max_len):
        for symbol in ("S", "A"):
            assert grammar.parses(string, symbol) == (string in derived[symbol]), (string, symbol)


@settings(max_examples=30, deadline=None)
@given(random_grammars(), st.integers(0, 2**32 - 1))
def test_samples_of_random_grammars_parse(grammar: Grammar, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(5):
        assert grammar.parses(grammar.sample(rng))


def test_samples_parse_and_are_deterministic() -> None:
    a = [EXPRESSIONS.sample(np.random.default_rng(3)) for _ in range(3)]
    b = [EXPRESSIONS.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(0)
    samples = [EXPRESSIONS.sample(rng) for _ in range(300)]
    assert all(EXPRESSIONS.parses(s) for s in samples)
    assert len({tuple(s) for s in samples}) > 30


def test_sampling_follows_the_rule_probabilities() -> None:
    grammar = Grammar(
        {"S": [(1, ("x", "A")), (3, ("y", "A"))], "A": [(1, ("a",)), (3, ("b",))]}, start="S"
    )
    rng = np.random.default_rng(1)
    n = 4000
    counts = Counter(tuple(grammar.sample(rng)) for _ in range(n))
    assert counts[("y", "b")] / n == pytest.approx(9 / 16, abs=0.03)
    assert counts[("x", "a")] / n == pytest.approx(1 / 16, abs=0.015)


def test_sampling_given_a_prefix_is_the_conditional_distribution() -> None:
    grammar = Grammar(
        {"S": [(1, ("x", "A")), (3, ("y", "A"))], "A": [(1, ("a",)), (3, ("b",))]}, start="S"
    )
    rng = np.random.default_rng(2)
    draws = [grammar.sample(rng, prefix=["x"]) for _ in range(2000)]
    assert all(d[0] == "x" and len(d) == 2 for d in draws)
    assert np.mean([d[1] == "b" for d in draws]) == pytest.approx(0.75, abs=0.04)
    assert grammar.sample(rng, prefix=["y", "a"]) == ["y", "a"]
    with pytest.raises(ValueError, match="no sentence of 'S' starts with 'a'"):
        grammar.sample(rng, prefix=["a"])


def test_sampling_given_a_prefix_of_a_recursive_grammar() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        sample = EXPRESSIONS.sample(rng, prefix=["(", "n", "+"])
        assert sample[:3] == ["(", "n", "+"] and EXPRESSIONS.parses(sample)


def test_probabilities_are_normalised_and_formatted() -> None:
    grammar = Grammar({"S": [(1, ("a",)), (3, ())]}, start="S")
    assert grammar.probabilities("S") == [(0.25, ("a",)), (0.75, ())]
    assert grammar.format_rules() == "start: S\nS -> a  # 0.25\nS -> ()  # 0.75"
    assert grammar.terminals == frozenset({"a"})
    assert grammar.nonterminals == frozenset({"S"})
    assert EXPRESSIONS.terminals == frozenset({"n", "m", "+", "*", "(", ")"})


def test_expand_draws_one_rule() -> None:
    rng = np.random.default_rng(0)
    drawn = Counter(NULLABLE.expand(rng, "C") for _ in range(3000))
    assert set(drawn) == {("B",), ("b",)}
    assert drawn[("b",)] / 3000 == pytest.approx(2 / 3, abs=0.03)


@pytest.mark.parametrize(
    ("rules", "start", "message"),
    [
        ({"S": [(0.0, ("a",))]}, "S", "positive finite number, got 0.0"),
        ({"S": [(-1, ("a",))]}, "S", "got -1"),
        ({"S": [(math.nan, ("a",))]}, "S", "got nan"),
        ({"S": [(True, ("a",))]}, "S", "got True"),
        ({"S": [(1, ("Nuon",))], "Noun": [(1, ("a",))]}, "S", "did you mean 'Noun'"),
        ({"s": [(1, ("a",))]}, "s", "must start with an upper-case letter"),
        ({"S": []}, "S", "has no expansions"),
        ({"S": [(1, "soup")]}, "S", r"write \('soup',\)"),
        ({"S": [(1, ("the soup",))]}, "S", "not one word"),
        ({"S": [(1, ("don't",))]}, "S", "not one word"),
        ({"S": [(1, ("a",))]}, "Start", "start symbol 'Start' has no rules"),
        ({"S": [(0.6, ("S", "S")), (0.4, ("a",))]}, "S", "inconsistent.*self-recursive: \\['S'\\]"),
        ({"S": [(1, ("S", "a"))]}, "S", "inconsistent"),
        ({"S": [(1, ("T",))], "T": [(1, ("S",))]}, "S", "inconsistent"),
    ],
)
def test_invalid_grammars_are_refused(rules: dict, start: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Grammar(rules, start=start)


def test_unknown_symbol_names_a_close_one() -> None:
    with pytest.raises(ValueError, match="did you mean 'N'"):
        EXPRESSIONS.parses(["n"], "Nn")
    with pytest.raises(ValueError, match="not a nonterminal"):
        EXPRESSIONS.sample(np.random.default_rng(0), "n")


def test_unlikely_prefix_gives_up_with_advice() -> None:
    grammar = Grammar({"S": [(1, ("a",)), (1e-9, ("b",))]}, start="S")
    with pytest.raises(ValueError, match="raise max_tries"):
        grammar.sample(np.random.default_rng(0), prefix=["b"], max_tries=10)
