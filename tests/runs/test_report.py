from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from prefgym.judgments import Preference
from prefgym.runs import format_table, labeler_table
from prefgym.segments import Segment
from prefgym.store import PreferenceStore


def test_format_table_aligns_columns() -> None:
    text = format_table(["name", "value"], [["a", 1.5], ["long name", math.nan], ["b", 1234.0]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[3].endswith("-") and lines[4].endswith("1234")


def test_labeler_table_counts_and_agreement(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        seg = Segment(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
        a, b, c = store.add_segments([seg, seg, seg])
        q1, q2 = store.add_queries([(a, b), (b, c)])
        store.add_judgment(q1, Preference.LEFT, "ann")
        store.add_judgment(q1, Preference.LEFT, "oracle")
        store.add_judgment(q2, Preference.RIGHT, "ann")
        store.add_judgment(q2, Preference.EQUAL, "oracle")
        header, rows = labeler_table(store)
    assert header[:2] == ["judge", "judgments"]
    assert rows[0][:4] == ["ann", 2, 1, 1]
    assert rows[1][:5] == ["oracle", 2, 1, 0, 1]
    assert rows[2][:3] == ["ann ~ oracle", 2, "agree 50%"]


def test_labeler_table_times_people_and_checks_answers_against_the_truth(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        returns = [1.0, 2.0, 3.0, 3.0]
        segs = [Segment(np.zeros((1, 1)), np.zeros((1, 1)), np.array([r])) for r in returns]
        a, b, c, d = store.add_segments(segs)
        q1, q2, q3, q4 = store.add_queries([(a, b), (b, c), (c, d), (a, b, c)])
        store.add_judgment(q1, "right", "ann", seconds=2.0)  # true: b is better
        store.add_judgment(q2, "right", "ann", seconds=4.0)  # true
        store.add_judgment(q3, "left", "ann", seconds=9.0)  # equal returns: not counted
        store.add_ranking(q4, [c, a, b], "ann", seconds=30.0)  # c>a true, c>b true, a>b false
        store.add_ranking(q4, [c, b, a], "bob", seconds=1.0)
        store.add_judgment(q1, "left", "bob")  # false, and no seconds recorded
        store.add_judgment(q2, "incomparable", "bob", seconds=3.0)
        header, rows = labeler_table(store)
    assert header[-2:] == ["median s", "truth"]
    by_judge = {row[0]: row for row in rows}
    assert by_judge["ann"][1:] == [4, 1, 2, 0, 0, 1, 6.5, "80%"]  # 4 of 5 strict orders
    assert by_judge["bob"][1:] == [3, 1, 0, 0, 1, 1, 2.0, "75%"]  # 3 of 4
    assert by_judge["ann ~ bob"][1:3] == [3, "agree 0%"]  # q1, q2 and the rankings differ
