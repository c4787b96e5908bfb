"""What keys and clicks mean in the labeling window: per-mode maps onto commands.

Named keys come in as names (``pygame.key.name``: ``"left"``, ``"escape"``) and
characters as the text a key typed (SDL's text input), so this module never
imports pygame. Auto-repeat is the window's business: a held key reaches these
maps once.
"""

from __future__ import annotations

from prefgym.judgments import Preference
from prefgym.label._state import (
    ChangeSpeed,
    Choose,
    Command,
    Mode,
    Pick,
    Quit,
    Submit,
    TogglePause,
    Undo,
    Unpick,
)

MAX_RANKED = 9
"""The most segments a ranking on screen can have: one digit key each."""

_QUIT = Quit("quit key")
KEYMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {
        "left": Choose(Preference.LEFT),
        "right": Choose(Preference.RIGHT),
        "up": Choose(Preference.EQUAL),
        "down": Choose(Preference.INCOMPARABLE),
        "space": TogglePause(),
        "escape": _QUIT,
    },
    Mode.RANKING: {
        "backspace": Unpick(),
        "return": Submit(),
        "enter": Submit(),  # the keypad's
        "space": TogglePause(),
        "escape": _QUIT,
    },
    Mode.WAITING: {"escape": _QUIT},
    Mode.CLOSED: {},
}
"""Per mode: named key (as ``pygame.key.name`` gives it) -> command.
Scrolling (page up/down, the wheel) needs the window's layout, so the window makes it."""

_COMMON: dict[str, Command] = {
    "u": Undo(),
    "+": ChangeSpeed(+1),
    "-": ChangeSpeed(-1),
    "q": _QUIT,
}
TEXTMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {
        "=": Choose(Preference.EQUAL),
        "s": Choose(Preference.INCOMPARABLE),
        **_COMMON,
    },
    Mode.RANKING: {str(i + 1): Pick(i) for i in range(MAX_RANKED)} | _COMMON,
    Mode.WAITING: {"u": Undo(), "q": _QUIT},
    Mode.CLOSED: {},
}
"""Per mode: typed character -> command. Characters come from what a key typed
(SDL's text input), not from the key: Shift+= is ``+`` on a US keyboard, the keypad's
``+`` is ``+`` too, and ``=`` is ``=`` wherever a layout puts it."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("\N{LEFTWARDS ARROW}", "left better"),
    ("\N{RIGHTWARDS ARROW}", "right better"),
    ("\N{UPWARDS ARROW} or =", "equal"),
    ("\N{DOWNWARDS ARROW} or s", "can't tell"),
    ("u", "undo"),
    ("space", "pause"),
    ("+ -", "speed"),
    ("q Esc", "quit"),
)
"""The key legend the window shows for a pair: (keys, what they do)."""

TEXT_LEGEND: tuple[tuple[str, str], ...] = (
    *(entry for entry in LEGEND if entry[1] not in ("pause", "speed", "quit")),
    ("PgUp PgDn", "scroll"),
    LEGEND[-1],
)
"""The legend for text pairs: nothing plays, so no pause or speed; long responses scroll."""

RANKING_LEGEND: tuple[tuple[str, str], ...] = (
    ("1 2 3 ...", "next best"),
    ("Enter", "done"),
    ("Backspace", "take back"),
    ("u", "undo"),
    ("PgUp PgDn", "scroll"),
    LEGEND[-1],
)
"""The legend for a ranking: press the best first, then the next best."""

CLICKMAPS: dict[Mode, dict[str, Command]] = {
    Mode.LABELING: {"left": Choose(Preference.LEFT), "right": Choose(Preference.RIGHT)},
    Mode.RANKING: {str(i + 1): Pick(i) for i in range(MAX_RANKED)},
    Mode.WAITING: {},
    Mode.CLOSED: {},
}
"""Per mode: the panel clicked (``"left"``/``"right"``, or a ranking's ``"1"``...) -> command."""


def command_for_click(mode: Mode, panel: str) -> Command | None:
    """The command a click on ``panel`` means in ``mode``, or None."""
    return CLICKMAPS[mode].get(panel)


def command_for_key(mode: Mode, name: str) -> Command | None:
    """The command a named key (``pygame.key.name(event.key)``: ``"left"``, ``"escape"``) means."""
    return KEYMAPS[mode].get(name)


def command_for_text(mode: Mode, text: str) -> Command | None:
    """The command a typed character (a ``TEXTINPUT`` event's text) means; case is ignored."""
    return TEXTMAPS[mode].get(text.lower())
