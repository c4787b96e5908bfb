from __future__ import annotations

import json

import pytest

from prefgym.judgments import Preference

NAMES = ["left", "right", "equal", "incomparable"]


def test_four_answers_named_by_their_values() -> None:
    assert [p.value for p in Preference] == NAMES
    assert Preference.LEFT == "left" and isinstance(Preference.RIGHT, str)
    assert json.dumps([Preference.EQUAL]) == '["equal"]'  # stored and sent as plain strings


@pytest.mark.parametrize("name", NAMES)
def test_parse_accepts_each_name(name: str) -> None:
    parsed = Preference.parse(name)
    assert parsed is Preference(name) and parsed.value == name


@pytest.mark.parametrize("value", ["LEFT", "Left", " left", "tie", "", "0", "l"])
def test_parse_rejects_anything_else_naming_the_value_and_the_choices(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        Preference.parse(value)
    message = str(caught.value)
    assert message == (
        f"unknown preference {value!r}; expected one of 'left', 'right', 'equal', 'incomparable'"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("preference", "target"),
    [
        (Preference.LEFT, 1.0),
        (Preference.RIGHT, 0.0),
        (Preference.EQUAL, 0.5),
        (Preference.INCOMPARABLE, None),
    ],
)
def test_target_is_the_probability_that_left_is_preferred(
    preference: Preference, target: float | None
) -> None:
    assert preference.target == target
    assert Preference.parse(preference.value).target == target


def test_swapping_the_segments_mirrors_the_target() -> None:
    left, right, equal = Preference.LEFT.target, Preference.RIGHT.target, Preference.EQUAL.target
    assert left is not None and right is not None and equal is not None
    assert left + right == 1.0 and 1.0 - equal == equal
    trainable = [p for p in Preference if p.target is not None]
    assert trainable == [Preference.LEFT, Preference.RIGHT, Preference.EQUAL]
