"""Compare two run directories figure by figure: did a change keep a seed's results?

Usage: ``python scripts/compare_runs.py RUN_A RUN_B``

Compares ``metrics.csv`` (the columns, their order, and every value except wall
times) and, for a text run, ``final.json``. Prints each difference and
``SAME`` or ``DIFFERENT (n)``; exits 1 when they differ. Used to show that a
refactoring changes no result (run the same commands on the old and the new
code, then compare).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

TIMINGS = frozenset(
    {
        "seconds",
        "rm_fit_seconds",
        "train_tokens_per_second",
        "train_seconds_sampling",
        "train_seconds_optimisation",
        "train_seconds_optimising",
    }
)
"""Wall-clock columns: they differ from run to run on any code."""


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def differences(a: Path, b: Path) -> list[str]:
    """Every difference between the two runs' figures, one line each."""
    found = []
    rows_a, rows_b = _rows(a), _rows(b)
    if rows_a and rows_b and list(rows_a[0]) != list(rows_b[0]):
        found.append(f"columns: {list(rows_a[0])} vs {list(rows_b[0])}")
    if len(rows_a) != len(rows_b):
        found.append(f"rows: {len(rows_a)} vs {len(rows_b)}")
    for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=False)):
        changed = {
            k: (x.get(k), y.get(k))
            for k in sorted(set(x) | set(y))
            if k not in TIMINGS and x.get(k) != y.get(k)
        }
        if changed:
            found.append(f"row {i}: {changed}")
    if (a / "final.json").exists() or (b / "final.json").exists():
        final_a = json.loads((a / "final.json").read_text())
        final_b = json.loads((b / "final.json").read_text())
        changed = {
            k: (final_a.get(k), final_b.get(k))
            for k in sorted(set(final_a) | set(final_b))
            if final_a.get(k) != final_b.get(k)
        }
        if changed:
            found.append(f"final.json: {changed}")
    return found


def main(argv: list[str]) -> int:
    """Compare the two runs named in ``argv``; 0 when every figure is the same."""
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    found = differences(Path(argv[0]), Path(argv[1]))
    print("\n".join(found) if found else "SAME")
    if found:
        print(f"DIFFERENT ({len(found)})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
