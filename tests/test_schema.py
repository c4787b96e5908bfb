"""Settings from JSON: every field checked, nested ones too, messages naming the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from prefgym.schema import from_json


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    count: int = 1
    limit: float | None = None
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")


GOOD = {
    "name": "b",
    "count": 3,
    "limit": 2,
    "mode": "slow",
    "flag": True,
    "inner": {"rate": 1, "sizes": [3, 4]},
}


def test_a_complete_object_reads_as_the_dataclass() -> None:
    value = from_json(Outer, GOOD, "f.json")
    assert value == Outer("b", 3, 2.0, "slow", True, Inner(1.0, (3, 4)))
    assert isinstance(value.limit, float) and isinstance(value.inner.rate, float)
    assert from_json(Outer, {**GOOD, "limit": None}, "f.json").limit is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nmae": "x"}, r"f\.json: unknown setting 'nmae'; did you mean 'name'\?"),
        ({"zzz": 1}, r"unknown setting 'zzz'; the fields are \['count', 'flag'"),
        ({"count": "3"}, r"f\.json\.count must be an integer, got '3' \(str\)"),
        ({"count": True}, r"f\.json\.count must be an integer, got True \(bool\)"),
        ({"count": -1}, r"f\.json: count must be >= 0, got -1"),
        ({"limit": "x"}, r"f\.json\.limit must be a number"),
        ({"limit": float("inf")}, r"f\.json\.limit must be a finite number, got inf"),
        ({"mode": "medium"}, r"f\.json\.mode must be one of \['fast', 'slow'\], got 'medium'"),
        ({"flag": 1}, r"f\.json\.flag must be true or false, got 1 \(int\)"),
        ({"name": 5}, r"f\.json\.name must be a string"),
        ({"inner": [1]}, r"f\.json\.inner must be a JSON object, got \[1\] \(list\)"),
        ({"inner": {"rate": 1}}, r"f\.json\.inner: setting 'sizes' is missing"),
        ({"inner": {"rate": 1, "sizes": [1, "2"]}}, r"f\.json\.inner\.sizes\[1\] must be an"),
        ({"inner": {"rate": 1, "sizes": 3}}, r"f\.json\.inner\.sizes must be a list"),
    ],
)
def test_each_kind_of_wrong_value_is_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(Outer, {**GOOD, **change}, "f.json")


def test_a_missing_field_is_named_rather_than_defaulted() -> None:
    data = dict(GOOD)
    del data["count"]
    with pytest.raises(ValueError, match=r"f\.json: setting 'count' is missing"):
        from_json(Outer, data, "f.json")


def test_anything_but_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match=r"f\.json must be a JSON object, got 'x' \(str\)"):
        from_json(Outer, "x", "f.json")
