"""Which key, character or click means which command, per mode (``prefgym.label._keys``)."""

from __future__ import annotations

import pytest

from prefgym.judgments import Preference
from prefgym.label import (
    KEYMAPS,
    TEXTMAPS,
    ChangeSpeed,
    Choose,
    Mode,
    Pick,
    Quit,
    Submit,
    TogglePause,
    Undo,
    Unpick,
    command_for_click,
    command_for_key,
    command_for_text,
)
from prefgym.label._keys import LEGEND, MAX_RANKED, RANKING_LEGEND

# ---------------------------------------------------------------- key maps

NAMED_KEYS = [
    ("left", Choose(Preference.LEFT)),
    ("right", Choose(Preference.RIGHT)),
    ("up", Choose(Preference.EQUAL)),
    ("down", Choose(Preference.INCOMPARABLE)),
    ("space", TogglePause()),
    ("escape", Quit("quit key")),
]
TYPED_KEYS = [
    ("=", Choose(Preference.EQUAL)),
    ("s", Choose(Preference.INCOMPARABLE)),
    ("S", Choose(Preference.INCOMPARABLE)),  # caps lock
    ("u", Undo()),
    ("+", ChangeSpeed(+1)),  # Shift+= or the keypad
    ("-", ChangeSpeed(-1)),
    ("q", Quit("quit key")),
]


@pytest.mark.parametrize(("name", "command"), NAMED_KEYS)
def test_every_named_key_of_the_issue_means_its_command(name: str, command: object) -> None:
    assert command_for_key(Mode.LABELING, name) == command


@pytest.mark.parametrize(("text", "command"), TYPED_KEYS)
def test_every_typed_key_of_the_issue_means_its_command(text: str, command: object) -> None:
    assert command_for_text(Mode.LABELING, text) == command


def test_characters_are_read_from_the_text_typed_not_the_key() -> None:
    assert command_for_key(Mode.LABELING, "=") is None  # Shift+= must not mean equal
    assert command_for_key(Mode.LABELING, "s") is None  # the TEXTINPUT that follows does
    assert command_for_text(Mode.LABELING, " ") is None  # space is a named key


def test_while_waiting_only_undo_and_quit_work() -> None:
    assert set(KEYMAPS[Mode.WAITING]) == {"escape"} and set(TEXTMAPS[Mode.WAITING]) == {"u", "q"}
    assert command_for_key(Mode.WAITING, "left") is None
    assert command_for_text(Mode.CLOSED, "q") is None
    assert command_for_text(Mode.LABELING, "f") is None


def test_clicks_on_the_panels_choose() -> None:
    assert command_for_click(Mode.LABELING, "left") == Choose(Preference.LEFT)
    assert command_for_click(Mode.LABELING, "right") == Choose(Preference.RIGHT)
    assert command_for_click(Mode.WAITING, "left") is None


def test_a_ranking_is_ordered_with_digits_and_clicks_and_corrected_with_backspace() -> None:
    assert [command_for_text(Mode.RANKING, str(i + 1)) for i in range(MAX_RANKED)] == [
        Pick(i) for i in range(MAX_RANKED)
    ]
    assert command_for_text(Mode.RANKING, "0") is None  # digits count from 1
    assert command_for_key(Mode.RANKING, "backspace") == Unpick()
    assert command_for_key(Mode.RANKING, "return") == command_for_key(Mode.RANKING, "enter")
    assert command_for_key(Mode.RANKING, "return") == Submit()
    assert command_for_click(Mode.RANKING, "3") == Pick(2)
    assert command_for_key(Mode.RANKING, "left") is None  # no pair answers in a ranking
    assert command_for_text(Mode.RANKING, "s") is None


def test_every_legend_names_keys_that_exist() -> None:
    answers = {what for _, what in LEGEND}
    assert {"left better", "right better", "equal", "can't tell", "undo", "quit"} <= answers
    assert {"next best", "done", "take back"} <= {what for _, what in RANKING_LEGEND}
