"""A probabilistic context-free grammar: sampling, and an Earley recognizer.

The text game's language is such a grammar, so that fluency has a ground
truth: a response is fluent exactly when it parses. Symbols are plain strings;
a **nonterminal** starts with an upper-case letter (``"Clause"``) and has
rules, every other symbol is a **terminal**, a word (``"soup"``, ``"7"``,
``"."``). Text is always its words joined by single spaces, see :func:`words`.

Rules map a nonterminal to its expansions, each with a positive weight;
weights are normalised per nonterminal. An empty expansion ``()`` is allowed
(an optional part)::

    Grammar(
        {
            "S": [(1.0, ("NP", "was", "Adj", "."))],
            "NP": [(0.5, ("the", "soup")), (0.5, ("the", "Adj", "soup"))],
            "Adj": [(1.0, ("good",)), (1.0, ("bad",))],
        },
        start="S",
    )

:meth:`Grammar.parses` is Earley's algorithm with the nullable-symbol fix of
Aycock and Horspool (2002), exact for any context-free grammar, left
recursion and ambiguity included. A grammar is checked to be consistent (its
expected derivation is finite), so :meth:`Grammar.sample` always ends.

One module, longer than most: the grammar, its consistency check, sampling and the Earley
recognizer are one data structure and the algorithms over it.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

Expansion = tuple[str, ...]
"""The right-hand side of one rule."""
Rules = Mapping[str, Sequence[tuple[float, Expansion]]]
"""A nonterminal's weighted expansions, for each nonterminal."""

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_Item = tuple[int, int, int]
"""An Earley item: (rule index, dot position, origin)."""


def words(text: str) -> list[str]:
    """Split text into the grammar's words.

    Text is lower-cased; runs of letters and digits are words, and every other
    visible character is a word of its own, so ``"The soup, was GOOD."`` gives
    ``["the", "soup", ",", "was", "good", "."]``.

    Args:
        text: Any text.

    Returns:
        The words; ``" ".join(words(text))`` is the canonical form of ``text``.
    """
    return _WORD.findall(text.lower())


def is_nonterminal(symbol: str) -> bool:
    """Whether ``symbol`` names a nonterminal (it starts with an upper-case letter)."""
    return symbol[:1].isupper()


@dataclass(frozen=True, eq=False, repr=False)
class Grammar:
    """A probabilistic context-free grammar over words.

    Raises:
        ValueError: If a weight is not a positive finite number, a nonterminal
            is used but has no rules, a rule name is not capitalised, the start
            symbol has no rules, or the grammar is inconsistent (a derivation
            would go on forever with positive probability).
    """

    rules: Rules
    """Expansions of each nonterminal with their weights (normalised per nonterminal when
    drawn); kept as a read-only copy."""
    start: str
    """The symbol that :meth:`sample` and :meth:`parses` use when given none."""

    _table: dict[str, tuple[list[float], list[Expansion]]] = field(
        init=False, repr=False, compare=False
    )
    _lhs: list[str] = field(init=False, repr=False, compare=False)
    _rhs: list[Expansion] = field(init=False, repr=False, compare=False)
    _rules_of: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    _nullable: frozenset[str] = field(init=False, repr=False, compare=False)
    _preterminal: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _classes_of: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _terminals: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table: dict[str, tuple[list[float], list[Expansion]]] = {}
        raw: dict[str, tuple[list[float], list[Expansion]]] = {}
        for name, options in self.rules.items():
            if not isinstance(name, str) or not is_nonterminal(name):
                raise ValueError(
                    f"rule name {name!r} must start with an upper-case letter "
                    "(symbols in lower case are terminals, the words themselves)"
                )
            if len(options) == 0:
                raise ValueError(f"nonterminal {name!r} has no expansions; give it at least one")
            weights, expansions = [], []
            for option in options:
                weight, expansion = option
                if isinstance(expansion, str) or not isinstance(expansion, Sequence):
                    raise ValueError(
                        f"expansion of {name} must be a tuple of symbols, got {expansion!r}; "
                        f"write ({expansion!r},) for a single symbol"
                    )
                expansion = tuple(expansion)
                if (
                    isinstance(weight, bool)
                    or not isinstance(weight, (int, float))
                    or not (math.isfinite(weight) and weight > 0)
                ):
                    raise ValueError(
                        f"weight of {name} -> {expansion!r} must be a positive finite number, "
                        f"got {weight!r}"
                    )
                for symbol in expansion:
                    if not isinstance(symbol, str) or not symbol:
                        raise ValueError(
                            f"symbols are non-empty strings, got {symbol!r} "
                            f"in {name} -> {expansion}"
                        )
                    if not is_nonterminal(symbol) and words(symbol) != [symbol]:
                        raise ValueError(
                            f"terminal {symbol!r} in {name} -> {expansion} is not one word as "
                            f"words() splits text (got {words(symbol)}); use lower-case letters "
                            "and digits, or a single punctuation mark"
                        )
                    if is_nonterminal(symbol) and symbol not in self.rules:
                        hint = difflib.get_close_matches(symbol, list(self.rules), n=1)
                        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                        raise ValueError(
                            f"nonterminal {symbol!r} (used in {name} -> {' '.join(expansion)}) "
                            f"has no rules{suggestion}"
                        )
                weights.append(float(weight))
                expansions.append(expansion)
            raw[name] = (weights, expansions)
            total = sum(weights)
            cumulative = list(np.cumsum(np.asarray(weights) / total))
            cumulative[-1] = 1.0
            table[name] = (cumulative, expansions)
        if self.start not in table:
            hint = difflib.get_close_matches(self.start, list(table), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"start symbol {self.start!r} has no rules{suggestion}")
        object.__setattr__(self, "_table", table)
        frozen = {name: tuple(zip(w, e, strict=True)) for name, (w, e) in raw.items()}
        object.__setattr__(self, "rules", MappingProxyType(frozen))
        self._check_consistent()
        self._build_recognizer()

    def _check_consistent(self) -> None:
        """Require a finite expected derivation: spectral radius of the mean-children matrix < 1."""
        names = list(self._table)
        index = {name: i for i, name in enumerate(names)}
        children = np.zeros((len(names), len(names)))
        for name, (cumulative, expansions) in self._table.items():
            probabilities = np.diff(np.concatenate([[0.0], cumulative]))
            for probability, expansion in zip(probabilities, expansions, strict=True):
                for symbol in expansion:
                    if is_nonterminal(symbol):
                        children[index[name], index[symbol]] += probability
        radius = float(np.max(np.abs(np.linalg.eigvals(children)))) if names else 0.0
        if radius >= 1.0 - 1e-9:
            recursive = [names[i] for i in range(len(names)) if children[i, i] > 0]
            raise ValueError(
                f"grammar is inconsistent: a derivation goes on forever with positive probability "
                f"(spectral radius of the expected-children matrix {radius:.3f} >= 1); lower the "
                f"weights of recursive rules (self-recursive: {recursive or 'none'}) or give every "
                "nonterminal a way to end"
            )

    def _build_recognizer(self) -> None:
        lhs: list[str] = []
        rhs: list[Expansion] = []
        rules_of: dict[str, list[int]] = {}
        terminals: set[str] = set()
        for name, (_, expansions) in self._table.items():
            for expansion in expansions:
                rules_of.setdefault(name, []).append(len(lhs))
                lhs.append(name)
                rhs.append(expansion)
                terminals.update(s for s in expansion if not is_nonterminal(s))
        nullable: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, expansion in zip(lhs, rhs, strict=True):
                if name not in nullable and all(s in nullable for s in expansion):
                    nullable.add(name)
                    changed = True
        # A preterminal (every expansion one word) is scanned as a word class, not predicted.
        preterminal = {
            name: frozenset(e[0] for e in expansions)
            for name, (_, expansions) in self._table.items()
            if all(len(e) == 1 and not is_nonterminal(e[0]) for e in expansions)
        }
        classes_of: dict[str, list[str]] = {}
        for name, members in preterminal.items():
            for word in members:
                classes_of.setdefault(word, []).append(name)
        object.__setattr__(self, "_lhs", lhs)
        object.__setattr__(self, "_rhs", rhs)
        object.__setattr__(self, "_rules_of", rules_of)
        object.__setattr__(self, "_nullable", frozenset(nullable))
        object.__setattr__(self, "_preterminal", preterminal)
        object.__setattr__(self, "_classes_of", {w: tuple(c) for w, c in classes_of.items()})
        object.__setattr__(self, "_terminals", frozenset(terminals))

    def __repr__(self) -> str:
        return (
            f"Grammar(start={self.start!r}, {len(self._table)} nonterminals, "
            f"{len(self._lhs)} rules, {len(self._terminals)} terminals)"
        )

    @property
    def terminals(self) -> frozenset[str]:
        """Every word that appears in a rule: the grammar's vocabulary."""
        return self._terminals

    @property
    def nonterminals(self) -> frozenset[str]:
        """Every nonterminal (the names of the rules)."""
        return frozenset(self._table)

    def probabilities(self, symbol: str) -> list[tuple[float, Expansion]]:
        """The normalised expansions of ``symbol``: ``(probability, expansion)`` pairs."""
        cumulative, expansions = self._table[self._checked(symbol)]
        probabilities = np.diff(np.concatenate([[0.0], cumulative]))
        return [(float(p), e) for p, e in zip(probabilities, expansions, strict=True)]

    def format_rules(self) -> str:
        """The rules as text, one ``A -> x y  # p`` line per rule: for reading and hashing."""
        lines = [f"start: {self.start}"]
        for name in self._table:
            for probability, expansion in self.probabilities(name):
                lines.append(f"{name} -> {' '.join(expansion) or '()'}  # {probability!r}")
        return "\n".join(lines)

    def _checked(self, symbol: str | None) -> str:
        symbol = self.start if symbol is None else symbol
        if symbol not in self._table:
            hint = difflib.get_close_matches(symbol, list(self._table), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"symbol {symbol!r} is not a nonterminal of this grammar{suggestion}")
        return symbol

    def expand(self, rng: np.random.Generator, symbol: str) -> Expansion:
        """Draw one expansion of ``symbol`` by its rule probabilities."""
        cumulative, expansions = self._table[self._checked(symbol)]
        return expansions[bisect.bisect_right(cumulative, rng.random())]

    def sample(
        self,
        rng: np.random.Generator,
        symbol: str | None = None,
        *,
        prefix: Sequence[str] = (),
        max_tries: int = 100_000,
    ) -> list[str]:
        """Draw a word sequence that ``symbol`` derives.

        Derivations are drawn top-down, leftmost first. With a ``prefix`` the
        draw is conditioned on the words starting with it: derivations are
        redrawn (each abandoned at its first word that differs) until one
        matches, which samples exactly the conditional distribution.

        Args:
            rng: Source of randomness.
            symbol: The nonterminal to expand; the start symbol if None.
            prefix: Words the result must start with.
            max_tries: Derivations to try before giving up on a ``prefix``.

        Returns:
            The words, ``prefix`` included.

        Raises:
            ValueError: If ``symbol`` is unknown, no sentence of ``symbol``
                starts with ``prefix``, or none matched in ``max_tries`` draws.
        """
        symbol = self._checked(symbol)
        prefix = list(prefix)
        if prefix and not self.is_prefix(prefix, symbol):
            raise ValueError(f"no sentence of {symbol!r} starts with {' '.join(prefix)!r}")
        uniforms: list[float] = []
        for _ in range(max_tries):
            result = self._draw(rng, symbol, prefix, uniforms)
            if result is not None:
                return result
        raise ValueError(
            f"no derivation of {symbol!r} starting with {' '.join(prefix)!r} in {max_tries} "
            "draws; the prefix is very unlikely, raise max_tries"
        )

    def _draw(
        self, rng: np.random.Generator, symbol: str, prefix: list[str], uniforms: list[float]
    ) -> list[str] | None:
        """One leftmost derivation; None as soon as it leaves ``prefix``.

        Uniform draws come from the end of ``uniforms``, refilled from ``rng`` in blocks.
        """
        table = self._table
        out: list[str] = []
        stack = [symbol]
        while stack:
            current = stack.pop()
            if current in table:
                if not uniforms:
                    uniforms.extend(rng.random(64).tolist())
                cumulative, expansions = table[current]
                stack.extend(reversed(expansions[bisect.bisect_right(cumulative, uniforms.pop())]))
            else:
                if len(out) < len(prefix) and prefix[len(out)] != current:
                    return None
                out.append(current)
        return out if len(out) >= len(prefix) else None

    def parses(self, words: Sequence[str], symbol: str | None = None) -> bool:
        """Whether ``symbol`` derives exactly ``words`` (Earley recognition).

        Args:
            words: The words, as :func:`words` splits them.
            symbol: The nonterminal to recognise; the start symbol if None.

        Returns:
            True if ``words`` is a sentence of ``symbol``.
        """
        symbol = self._checked(symbol)
        chart = self._chart(words, symbol)
        if chart is None:
            return False
        lhs, rhs = self._lhs, self._rhs
        return any(
            origin == 0 and lhs[rule] == symbol and dot == len(rhs[rule])
            for rule, dot, origin in chart
        )

    def is_prefix(self, words: Sequence[str], symbol: str | None = None) -> bool:
        """Whether some sentence of ``symbol`` starts with ``words`` (a viable prefix)."""
        symbol = self._checked(symbol)
        return self._chart(words, symbol) is not None

    def _chart(self, words: Sequence[str], symbol: str) -> set[_Item] | None:
        """Earley's chart after the last word, or None if it died before (not a prefix)."""
        lhs, rhs, rules_of = self._lhs, self._rhs, self._rules_of
        nullable, preterminal, classes_of = self._nullable, self._preterminal, self._classes_of
        current: set[_Item] = {(rule, 0, 0) for rule in rules_of[symbol]}
        waiting_at: list[dict[str, list[_Item]]] = []
        for position in range(len(words) + 1):
            waiting: dict[str, list[_Item]] = {}
            waiting_at.append(waiting)
            predicted: set[str] = set()
            agenda = list(current)
            while agenda:
                item = agenda.pop()
                rule, dot, origin = item
                expansion = rhs[rule]
                if dot == len(expansion):
                    for rule2, dot2, origin2 in waiting_at[origin].get(lhs[rule], ()):
                        advanced = (rule2, dot2 + 1, origin2)
                        if advanced not in current:
                            current.add(advanced)
                            agenda.append(advanced)
                    continue
                following = expansion[dot]
                waiting.setdefault(following, []).append(item)
                if following in rules_of and following not in preterminal:
                    if following not in predicted:
                        predicted.add(following)
                        for rule2 in rules_of[following]:
                            new = (rule2, 0, position)
                            if new not in current:
                                current.add(new)
                                agenda.append(new)
                    if following in nullable:
                        advanced = (rule, dot + 1, origin)
                        if advanced not in current:
                            current.add(advanced)
                            agenda.append(advanced)
            if position == len(words):
                return current
            word = words[position]
            scanned: set[_Item] = set()
            for key in (word, *classes_of.get(word, ())):
                for rule, dot, origin in waiting.get(key, ()):
                    scanned.add((rule, dot + 1, origin))
            if not scanned:
                return None
            current = scanned
        raise AssertionError("unreachable")  # pragma: no cover
