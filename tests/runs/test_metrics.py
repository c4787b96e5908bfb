from __future__ import annotations

import math
from pathlib import Path

import pytest

from prefgym.runs import MetricsLog, read_metrics
from prefgym.runs._metrics import truncate_metrics


def test_rows_round_trip_and_continue_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricsLog(path)
    log.write({"step": 1, "true_return": 2.5, "rm_val_accuracy": math.nan}, step=1)
    log.close()
    log = MetricsLog(path)
    log.write({"step": 2, "true_return": 3.0}, step=2)
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["true_return"] == 2.5 and math.isnan(rows[0]["rm_val_accuracy"])
    assert math.isnan(rows[1]["rm_val_accuracy"])  # a missing column reads as NaN


def test_a_row_with_new_columns_adds_them_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    log = MetricsLog(path)
    log.write({"step": 1, "a": 5.0}, step=1)  # e.g. a first round without a reward model
    log.write({"step": 2, "rm_val_accuracy": 0.75}, step=2)
    log.close()
    MetricsLog(path).write({"step": 3, "a": 6.0, "rm_val_accuracy": 0.5}, step=3)
    rows = read_metrics(path)
    assert path.read_text().splitlines()[0] == "step,a,rm_val_accuracy"
    assert [(r["step"], r["rm_val_accuracy"]) for r in rows[1:]] == [(2, 0.75), (3, 0.5)]
    assert rows[0]["a"] == 5.0 and math.isnan(rows[0]["rm_val_accuracy"])
    assert math.isnan(rows[1]["a"]) and [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_tensorboard_gets_the_scalars(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.csv", tensorboard=tmp_path / "tb")
    log.write({"step": 1, "true_return": 4.0}, step=1)
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_reading_a_missing_log_gives_no_rows(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "none.csv") == []


def test_truncate_drops_rows_past_the_checkpoint(tmp_path: Path) -> None:
    from prefgym.runs import truncate_metrics

    path = tmp_path / "metrics.csv"
    log = MetricsLog(path)
    for i in range(5):
        log.write({"iteration": float(i), "score": float(i) / 2}, step=i)
    log.close()
    assert truncate_metrics(path, "iteration", 2) == 2
    assert [row["iteration"] for row in read_metrics(path)] == [0.0, 1.0, 2.0]
    assert truncate_metrics(path, "iteration", 2) == 0
    assert truncate_metrics(tmp_path / "missing.csv", "iteration", 0) == 0


def test_a_row_cut_short_by_a_kill_is_dropped_and_bad_values_are_named(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    log = MetricsLog(path)
    log.write({"step": 1, "a": 5.0}, step=1)
    log.write({"step": 2, "a": 6.0}, step=2)
    with path.open("a") as f:
        f.write("3,")  # a kill in the middle of an append
    assert truncate_metrics(path, "step", 2) == 1
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    path.write_text("step,a\n1,many\n")
    with pytest.raises(ValueError, match=rf"{path} holds a value that is not a number \('many'"):
        read_metrics(path)
