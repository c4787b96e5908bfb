"""The metrics log of a run: one CSV row per round, mirrored to TensorBoard."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from prefgym.files import atomic_file


class MetricsLog:
    """Appends rows of named numbers to a CSV file (and TensorBoard, if given a directory).

    The CSV's columns are those of the rows written so far: a row may leave
    columns empty, and a row with new columns rewrites the file (atomically) with
    them added, the earlier rows empty there.
    """

    def __init__(
        self, path: str | os.PathLike[str], tensorboard: str | os.PathLike[str] | None = None
    ) -> None:
        """Open (or continue) the log at ``path``."""
        self.path = Path(path)
        self._columns: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                self._columns = next(csv.reader(f))
        self._writer: Any = None
        if tensorboard is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(tensorboard))

    def write(self, row: dict[str, float], step: int) -> None:
        """Append one row; ``step`` is the x-axis in TensorBoard."""
        if self._columns is None:
            self._columns = list(row)
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self._columns)
        new = [c for c in row if c not in self._columns]
        if new:
            self._add_columns(new)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_format(row.get(c)) for c in self._columns])
            f.flush()
            os.fsync(f.fileno())
        if self._writer is not None:
            for name, value in row.items():
                if value is not None and not math.isnan(value):
                    self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def _add_columns(self, new: list[str]) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        self._columns = [*(self._columns or []), *new]
        with atomic_file(self.path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, self._columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Read a metrics CSV back as rows of floats (NaN where a value is missing)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return [{k: _parse(v) for k, v in row.items() if k is not None} for row in rows]
    except ValueError as error:
        raise ValueError(
            f"{path} holds a value that is not a number ({error}); it was edited or damaged"
        ) from None


def truncate_metrics(path: str | os.PathLike[str], column: str, last: float) -> int:
    """Drop the rows whose ``column`` exceeds ``last`` (work redone after a resume).

    The file is rewritten atomically. Returns the number of rows dropped.
    """
    path = Path(path)
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        rows = list(reader)
    if header is None or column not in header:
        return 0
    index = header.index(column)
    kept = [  # a row cut short by a kill mid-append is dropped with the redone rows
        row
        for row in rows
        if len(row) == len(header) and (not row[index] or _parse(row[index]) <= last)
    ]
    if len(kept) == len(rows):
        return 0
    with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(kept)
    return len(rows) - len(kept)


def _format(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _parse(value: str | None) -> float:
    try:
        return float(value) if value else math.nan
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
