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
