"""What ``prefgym report`` shows: tables of a run's metrics and of who judged what."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations

from prefgym.store import PreferenceStore


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def labeler_table(store: PreferenceStore) -> tuple[list[str], list[list[object]]]:
    """Judgments per judge, and agreement where two judges answered the same pair.

    Returns:
        A header and rows ``(judge, judgments, left, right, equal, incomparable)``,
        followed by rows ``(judge A ~ judge B, shared pairs, agreement)``.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    answers: dict[int, dict[str, str]] = defaultdict(dict)
    for judgment in store.judgments():
        kind = "ranking" if judgment.preference is None else judgment.preference.value
        counts[judgment.judge][kind] += 1
        answers[judgment.query_id][judgment.judge] = kind
    header = ["judge", "judgments", "left", "right", "equal", "incomparable", "rankings"]
    rows: list[list[object]] = []
    for judge in sorted(counts):
        c = counts[judge]
        kinds = ("left", "right", "equal", "incomparable", "ranking")
        rows.append([judge, sum(c.values()), *(c[k] for k in kinds)])
    shared: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for by_judge in answers.values():
        for a, b in combinations(sorted(by_judge), 2):
            shared[(a, b)].append(by_judge[a] == by_judge[b])
    for (a, b), agree in sorted(shared.items()):
        rows.append(
            [f"{a} ~ {b}", len(agree), f"agree {sum(agree) / len(agree):.0%}", "", "", "", ""]
        )
    return header, rows
