"""Judgments: the answers a judge gives to "which of these segments is better?"."""

from __future__ import annotations

import enum


class Preference(str, enum.Enum):
    """The four answers to a pairwise query."""

    LEFT = "left"
    """The left segment is better."""
    RIGHT = "right"
    """The right segment is better."""
    EQUAL = "equal"
    """Both are equally good: trained with target probability 0.5."""
    INCOMPARABLE = "incomparable"
    """The judge cannot tell: kept in the store, left out of training."""

    @property
    def target(self) -> float | None:
        """Probability that the left segment is preferred, or None if not trainable."""
        return _TARGETS[self]

    @classmethod
    def parse(cls, value: str) -> Preference:
        """Parse a preference from its name, with an error that lists the choices."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"unknown preference {value!r}; expected one of {choices}") from None


_TARGETS: dict[Preference, float | None] = {
    Preference.LEFT: 1.0,
    Preference.RIGHT: 0.0,
    Preference.EQUAL: 0.5,
    Preference.INCOMPARABLE: None,
}
