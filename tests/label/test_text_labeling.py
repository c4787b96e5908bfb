"""Text pairs in the labeling window: the text game's segments, judged under SDL's dummy driver.

``PREFGYM_SCREENSHOTS=1`` also writes ``docs/text_window.png`` (the picture in the docs).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

from prefgym.envs.text_env import TextEnv  # noqa: E402
from prefgym.label import (  # noqa: E402
    BACKGROUND,
    LEGEND,
    PANEL,
    TEXT_LEGEND,
    LabelWindow,
    Mode,
    describe_summary,
    run_window,
)
from prefgym.runs import RunDir, TextTrainConfig, label  # noqa: E402
from prefgym.segments import Segment  # noqa: E402
from prefgym.store import PreferenceStore  # noqa: E402
from prefgym.text import TASKS, text_segment  # noqa: E402
from tests.label.windows import Windows, click, key, press, typed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE = (1200, 760)
ENV_ID = "prefgym/TextSentiment-v0"
RESPONSES = (
    "good and the staff was friendly and the soup was delicious and the music was great .",
    "terrible and cold .",
    "delicious .",
    "bad and the soup was cold .",
)
PAIRS = ((0, 1), (2, 3), (1, 3), (0, 2))
"""The responses (indices into RESPONSES) of each pair query, in order."""


def answers(env: TextEnv, seed: int, responses: tuple[str, ...]) -> list[Segment]:
    """The game's segments for one prompt (drawn with ``seed``) and ``responses`` to it."""
    observation, _ = env.reset(seed=seed)
    prompt_ids = observation["prompt_ids"]
    prompt = env.codec.decode(prompt_ids[observation["prompt_mask"] == 1])
    segments = []
    for response in responses:
        ids = np.array([*env.codec.encode(response), env.codec.eos_id])
        judged = env.judge_response(prompt, ids)
        segments.append(text_segment(prompt_ids, ids, judged, env_id=ENV_ID))
    return segments


@pytest.fixture(scope="module")
def env() -> TextEnv:
    return TextEnv("sentiment")


def fill(store: PreferenceStore, env: TextEnv, *, pairs: int, rankings: int = 0) -> list[int]:
    """``pairs`` pair queries, then ``rankings`` queries of three responses; their ids."""
    groups: list[tuple[int, ...]] = []
    for i in range(pairs):
        a, b = PAIRS[i % len(PAIRS)]
        groups.append(tuple(store.add_segments(answers(env, i, (RESPONSES[a], RESPONSES[b])))))
    for i in range(rankings):
        groups.append(tuple(store.add_segments(answers(env, 100 + i, RESPONSES[:3]))))
    return store.add_queries(groups)


@pytest.fixture
def open_window(tmp_path: Path, env: TextEnv) -> Iterator[Callable[..., LabelWindow]]:
    """``open_window(pairs, rankings=0)``: a window on a new store that :func:`fill` filled."""
    windows = Windows(tmp_path, SIZE)

    def make(pairs: int, rankings: int = 0) -> LabelWindow:
        return windows.open(lambda store: fill(store, env, pairs=pairs, rankings=rankings))

    yield make
    windows.close()


def judged(store: PreferenceStore, judge: str = "alice") -> list[tuple[int, str]]:
    return [(j.query_id, j.preference.value) for j in store.judgments(judge=judge) if j.preference]


def ink(window: LabelWindow, rect: object) -> float:
    """Share of the pixels in ``rect`` that are neither the background nor a panel: text."""
    pixels = pygame.surfarray.array3d(window.screen)  # (width, height, 3)
    r = pygame.Rect(rect)
    region = pixels[r.left : r.right, r.top : r.bottom].reshape(-1, 3)
    plain = (region == BACKGROUND).all(axis=1) | (region == PANEL).all(axis=1)
    return float(1 - plain.mean())


def test_text_pairs_are_judged_left_right_equal_into_the_store(
    open_window: Callable[..., LabelWindow],
) -> None:
    window = open_window(pairs=4)
    store = window.session.store
    queries = [q.id for q in store.queries()]
    assert window.session.pair is not None and window.session.pair.kind == "text"
    assert window.session.state.message == "which response is better?"
    window.handle_event(key(pygame.K_LEFT))
    window.handle_event(key(pygame.K_RIGHT))
    window.handle_event(key(pygame.K_EQUALS))  # the key, then the character it typed
    window.handle_event(typed("="))
    window.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(900, 500), button=1))
    assert judged(store) == [
        (queries[0], "left"),
        (queries[1], "right"),
        (queries[2], "equal"),
        (queries[3], "right"),  # a click on the right response
    ]
    assert window.session.state.mode is Mode.WAITING and window.draw()


def test_a_text_pair_shows_its_prompt_once_and_the_responses_side_by_side(
    open_window: Callable[..., LabelWindow],
) -> None:
    window = open_window(pairs=2)
    pair = window.session.pair
    assert pair is not None and pair.left.prompt == pair.right.prompt
    assert window.draw()
    box, left, right = window.prompt_box, window.panels["left"], window.panels["right"]
    assert window.prompt == pair.left.prompt and box is not None
    assert box.bottom < left.top and left.top == right.top and left.right < right.left
    assert box.left == left.left and box.right == right.right  # across both responses
    line = window.painter.font.get_linesize()
    for rect in (box, window.areas["left"], window.areas["right"]):
        assert ink(window, (rect.x, rect.y, rect.width, 2 * line)) > 0.01  # text drawn there
    for side in ("left", "right"):  # each panel holds its response alone: no prompt again
        lines = window.painter.lines(pair.left if side == "left" else pair.right, 500, prompt=False)
        assert "PROMPT" not in lines and pair.left.prompt not in lines
    header = pygame.Rect(SIZE[0] // 2, 0, SIZE[0] // 2, box.top)  # no speed, step or "playing"
    assert ink(window, header) < 0.02
    assert ("+ -", "speed") in LEGEND and ("+ -", "speed") not in TEXT_LEGEND
    if os.environ.get("PREFGYM_SCREENSHOTS") == "1":
        pygame.image.save(window.screen, str(ROOT / "docs" / "text_window.png"))


def test_rankings_are_ordered_with_number_keys_in_k_panels(
    open_window: Callable[..., LabelWindow],
) -> None:
    window = open_window(pairs=1, rankings=2)
    store = window.session.store
    pair_query, first, second = store.queries()
    window.handle_event(key(pygame.K_LEFT))
    state = window.session.state
    assert state.mode is Mode.RANKING and state.pair is not None
    assert (state.pair.query_id, state.pair.size, state.pending) == (first.id, 3, 1)
    assert window.draw()
    assert list(window.panels) == ["1", "2", "3"]
    for area in window.areas.values():  # three panels, each with its response drawn
        assert ink(window, area) > 0.001
    press(window, "2")
    press(window, "2")  # pressed again: already ranked, nothing changes
    assert window.session.state.order == (1,)
    assert window.draw()
    window.handle_event(key(pygame.K_BACKSPACE))
    press(window, "3")
    press(window, "1")
    assert window.session.state.order == (2, 0) and judged(store) == [(pair_query.id, "left")]
    window.handle_event(key(pygame.K_RETURN))  # the one left, response 2, is the worst
    (ranking,) = [j for j in store.judgments(judge="alice") if j.order is not None]
    ids = first.segment_ids
    assert ranking.query_id == first.id and ranking.order == (ids[2], ids[0], ids[1])
    assert window.session.state.message == f"saved: ranked 3 > 1 > 2 on pair {first.id}"
    state = window.session.state
    assert state.pair is not None and state.pair.query_id == second.id
    window.handle_event(click(window.panels["2"].center))  # clicks pick too
    press(window, "u")  # takes back the pick
    assert window.session.state.order == ()
    press(window, "u")  # undoes the last ranking: it is back on screen
    assert window.session.state.message == f"undid: ranked 3 > 1 > 2 on pair {first.id}; it is back"
    assert [j.query_id for j in store.judgments(judge="alice")] == [pair_query.id]
    state = window.session.state
    assert state.pair is not None and state.pair.query_id == first.id


def test_run_window_on_text_pairs(tmp_path: Path, env: TextEnv) -> None:
    script = [key(pygame.K_LEFT), key(pygame.K_RIGHT), key(pygame.K_q), typed("q")]
    now = [0.0]

    def on_frame(window: LabelWindow) -> None:  # one key a pass, read in the next pass
        now[0] += 0.05
        if script:
            pygame.event.post(script.pop(0))

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        queries = fill(store, env, pairs=2)
        summary = run_window(
            store,
            "alice",
            size=SIZE,
            clock=lambda: now[0],
            sleep=lambda seconds: None,
            max_seconds=30.0,
            on_frame=on_frame,
        )
        assert judged(store) == [(queries[0], "left"), (queries[1], "right")]
    assert (summary.judged, summary.quit_reason) == (2, "quit key")
    assert math.isnan(summary.playback_fps) and math.isnan(summary.target_fps)
    assert "playback" not in describe_summary(summary)


def test_cli_label_opens_a_text_run(
    tmp_path: Path, env: TextEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir.create(
        tmp_path / "run", {"text": TextTrainConfig(env_id=ENV_ID, labels=2).to_json()}
    )
    with PreferenceStore(run.store) as store:
        queries = fill(store, env, pairs=2)
        store.add_judgments([(q, "left") for q in queries], "stoc")  # the run's oracle
    assert "train" not in json.loads(run.config.read_text())
    opened: dict[str, object] = {}

    def scripted(store: PreferenceStore, labeler: str, **kwargs: object) -> object:
        opened.update(kwargs, labeler=labeler)
        script = [key(pygame.K_RIGHT), key(pygame.K_UP), key(pygame.K_q), typed("q")]

        def on_frame(window: LabelWindow) -> None:
            if script:
                pygame.event.post(script.pop(0))

        kwargs["size"] = SIZE
        return run_window(store, labeler, **kwargs, on_frame=on_frame)  # type: ignore[arg-type]

    monkeypatch.setattr("prefgym.label.run_window", scripted)
    summary = label(run.path)
    assert (opened["labeler"], opened["budget"], opened["rejudge"]) == ("person", None, True)
    criterion, rubric = str(opened["instructions"]).split("\n")
    assert criterion.startswith("which response makes the review more positive")
    assert rubric == TASKS["sentiment"].rubric()
    assert summary.judged == 2
    with PreferenceStore(run.store) as store:
        assert judged(store, "person") == [(queries[0], "right"), (queries[1], "equal")]
        assert judged(store, "stoc") == [(q, "left") for q in queries]


def test_cli_label_on_a_text_run_that_asked_nothing(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"text": TextTrainConfig(env_id=ENV_ID).to_json()})
    with pytest.raises(FileNotFoundError, match="prefgym text train --out"):
        label(run.path)
