"""A person labels a live run: a real trainer process and a real window under Xvfb.

The person is xdotool pressing keys, slower than the trainer's rounds; the trainer
must wait for every answer and finish having trained on each of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from prefgym.loop import LEARNER_STATE
from prefgym.runs import read_metrics
from prefgym.store import PreferenceStore
from tests.label.windows import label_process, needs_xvfb, xdotool, xvfb


def _trainer(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", SDL_VIDEODRIVER="dummy")
    return subprocess.Popen(
        [sys.executable, "-m", "prefgym.cli", *args, "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pending(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    with PreferenceStore(store_path) as store:
        return len(store.pending_queries())


def _label_until_done(
    trainer: subprocess.Popen[str], run: Path, keys: Sequence[str], timeout: float = 240
) -> None:
    """Open the window once the trainer asks, then press ``keys`` in turn (the last one
    repeated; "2 1 3" presses three), one a pending query, a person's pace apart, until
    the trainer exits."""
    store = run / "store.sqlite"
    deadline = time.monotonic() + timeout
    while _pending(store) == 0:
        assert trainer.poll() is None, trainer.communicate()
        assert time.monotonic() < deadline, "the trainer asked nothing"
        time.sleep(0.2)
    pressed = 0
    with xvfb() as display, label_process(display, str(run)) as (window, _):
        while trainer.poll() is None:
            assert time.monotonic() < deadline, "the run did not finish"
            assert window.poll() is None, window.communicate()
            answered = _answered(store)
            if _pending(store) and answered == pressed:  # the window shows a pair
                time.sleep(0.4)  # a person looks at it first: slower than the trainer's rounds
                xdotool(display, "key", *keys[min(pressed, len(keys) - 1)].split())
                given = time.monotonic() + 5
                while _answered(store) == pressed and time.monotonic() < given:
                    time.sleep(0.05)
                pressed = _answered(store)  # a key before the pair was up is pressed again
            time.sleep(0.1)
        xdotool(display, "key", "q")
        window.communicate(timeout=30)


def _answered(store: Path) -> int:
    with PreferenceStore(store) as opened:
        return opened.n_judgments()


def _run_with_a_person(run: Path, command: Sequence[str], keys: Sequence[str]) -> str:
    """``prefgym COMMAND --out RUN`` labeled in a real window with ``keys``; its stdout."""
    trainer = _trainer(*command, "--out", str(run))
    try:
        _label_until_done(trainer, run, keys)
        out, err = trainer.communicate(timeout=60)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert trainer.returncode == 0, err
    return out


@pytest.mark.xvfb
@needs_xvfb
def test_a_person_whose_first_answer_is_cant_tell_is_waited_for_and_fully_used(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    command = [
        "train", "--oracle", "human", "--labels", "8", "--steps", "2048",
        "--round-steps", "1024", "--segment-length", "20",
    ]  # fmt: skip
    out = _run_with_a_person(run, command, ["s", "Left", "Right"])
    with PreferenceStore(run / "store.sqlite") as store:
        judgments = store.judgments()
        assert len(judgments) == store.n_queries() == 8 and not store.pending_queries()
        assert judgments[0].preference is not None and judgments[0].preference.value == (
            "incomparable"
        )
        assert all(j.judge == "person" and j.seconds is not None for j in judgments)
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 8  # the refit saw every one
        assert store.trainer().state == "finished"  # type: ignore[union-attr]
    rows = read_metrics(run / "metrics.csv")
    assert [r["step"] for r in rows] == [1024, 2048]
    assert rows[0]["labels_trainable"] == rows[0]["labels_judged"] - 1  # the can't-tell
    assert "questions asked 8, answers given 8, answers trainable 7" in out


@pytest.mark.slow  # fast twin: tests/runs/test_text.py's person thread
@pytest.mark.xvfb
@needs_xvfb
def test_a_text_run_labeled_by_a_person_in_the_window(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [
        "text", "train", "--oracle", "human", "--labels", "6", "--label-rounds", "2",
        "--iterations", "4", "--eval-prompts", "16", "--eval-every", "2",
    ]  # fmt: skip
    out = _run_with_a_person(run, command, ["Left", "Right"])
    with PreferenceStore(run / "store.sqlite") as store:
        judgments = store.judgments()
        assert len(judgments) == store.n_queries() == 6 and not store.pending_queries()
        assert [j.preference.value for j in judgments[:2]] == ["left", "right"]  # type: ignore[union-attr]
        assert {j.judge for j in judgments} == {"person"}
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 6
    assert "questions asked 6, answers given 6, answers trainable 6" in out


@pytest.mark.slow  # fast twin: tests/label/test_session.py, rankings ranked by position
@pytest.mark.xvfb
@needs_xvfb
def test_a_person_ranks_a_text_run_s_responses_with_number_keys(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [
        "text", "train", "--oracle", "human", "--responses-per-prompt", "3", "--labels", "6",
        "--label-rounds", "1", "--iterations", "2", "--eval-prompts", "16", "--eval-every", "2",
    ]  # fmt: skip
    out = _run_with_a_person(run, command, ["2 1 3", "3 2 1"])
    assert "questions asked 2, answers given 2, answers trainable 2" in out
    with PreferenceStore(run / "store.sqlite") as store:
        judgments = store.judgments()
        assert len(judgments) == store.n_queries() == 2 and not store.pending_queries()
        first, second = judgments
        assert first.order == tuple(first.segment_ids[i] for i in (1, 0, 2))  # keys 2 1 3
        assert second.order == tuple(second.segment_ids[i] for i in (2, 1, 0))
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 2


@pytest.mark.slow  # fast twin: tests/label/test_session.py's two slow people
@pytest.mark.xvfb
@needs_xvfb
def test_two_slow_people_with_short_leases_never_answer_one_pair_twice(tmp_path: Path) -> None:
    """Two windows, leases of 2 s, each person slower than that: renewals keep pairs apart."""
    from tests.label.windows import cartpole_segments, fill

    store_path = tmp_path / "store.sqlite"
    with PreferenceStore(store_path) as store:
        fill(store, cartpole_segments(12, frames=True, length=10))
    with (
        xvfb() as display,
        label_process(display, str(store_path), "--labeler", "ann", "--lease", "2") as (a, wa),
        label_process(display, str(store_path), "--labeler", "bob", "--lease", "2") as (b, wb),
    ):
        for _ in range(3):  # 2.5 s a look: longer than the lease
            for window, key in ((wa, "Left"), (wb, "Right")):
                time.sleep(1.25)
                xdotool(display, "windowfocus", "--sync", window)
                xdotool(display, "key", key)
        for window in (wa, wb):
            xdotool(display, "windowfocus", "--sync", window)
            xdotool(display, "key", "q")
        for child in (a, b):
            child.communicate(timeout=30)
            assert child.returncode == 0
    with PreferenceStore(store_path) as store:
        judgments = store.judgments()
    queries = [j.query_id for j in judgments]
    assert len(queries) == len(set(queries)) == 6  # three answers each, never the same pair
    assert {j.judge for j in judgments} == {"ann", "bob"}
