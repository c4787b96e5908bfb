"""The run plots (``prefgym.runs._plots``): what each figure draws, read back from its lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from prefgym.runs import plot_metrics, plot_text_metrics

NAN = math.nan


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """The figures the plots save, by file name (read back after they are closed).

    A plot is saved to a temporary ``.NAME.PID.tmp`` beside NAME, then renamed.
    """
    figures: dict[str, Figure] = {}
    save = Figure.savefig

    def savefig(self: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        figures[Path(path).name.removeprefix(".").rsplit(".", 2)[0]] = self
        save(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def _line(fig: Figure, axis: int, line: int) -> np.ndarray:
    return fig.axes[axis].lines[line].get_xydata()


def _points(*columns: list[float]) -> np.ndarray:
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    rows = [
        {
            "step": s,
            "true_return": s / 10,
            "learned_return": 1.0,
            "rm_val_accuracy": 0.9,
            "rm_return_correlation": 0.8,
            "labels_asked": s / 100,
            "labels_judged": s / 100,
        }
        for s in (100.0, 200.0, 300.0)
    ]
    paths = plot_metrics(rows, tmp_path / "plots")
    assert [p.name for p in paths] == ["returns.png", "reward_model.png", "labels.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


CONTROL_ROWS = [
    {
        "step": 1000.0,
        "true_return": 12.0,
        "learned_return": -0.5,
        "rm_val_accuracy": 0.6,
        "rm_return_correlation": 0.3,
        "labels_asked": 10.0,
        "labels_judged": 4.0,
    },
    {
        "step": 2000.0,
        "true_return": 30.0,
        "learned_return": 0.25,
        "labels_asked": 20.0,
        "labels_judged": 20.0,
    },  # no reward-model fit this round: its columns are missing
    {
        "step": 3500.0,
        "true_return": 85.5,
        "learned_return": 1.75,
        "rm_val_accuracy": 0.9,
        "rm_return_correlation": 0.8,
        "labels_asked": 30.0,
        "labels_judged": 28.0,
    },
]


def test_the_returns_plot_draws_true_and_learned_return_on_two_axes(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    plot_metrics(CONTROL_ROWS, tmp_path)
    fig = drawn["returns.png"]
    assert len(fig.axes) == 2  # the learned return on its own scale (twinx)
    steps = [1000.0, 2000.0, 3500.0]
    np.testing.assert_array_equal(_line(fig, 0, 0), _points(steps, [12.0, 30.0, 85.5]))
    np.testing.assert_array_equal(_line(fig, 1, 0), _points(steps, [-0.5, 0.25, 1.75]))
    assert fig.axes[0].lines[0].get_label() == "true return"
    assert fig.axes[1].lines[0].get_label() == "learned return"


def test_the_reward_model_and_label_plots_draw_their_columns(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    plot_metrics(CONTROL_ROWS, tmp_path)
    steps = [1000.0, 2000.0, 3500.0]
    model = drawn["reward_model.png"]
    # a row without a fit is a gap (NaN), not a zero
    np.testing.assert_array_equal(_line(model, 0, 0), _points(steps, [0.6, NAN, 0.9]))
    np.testing.assert_array_equal(_line(model, 0, 1), _points(steps, [0.3, NAN, 0.8]))
    labels = drawn["labels.png"]
    np.testing.assert_array_equal(_line(labels, 0, 0), _points(steps, [10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(_line(labels, 0, 1), _points(steps, [4.0, 20.0, 28.0]))
    assert [line.get_label() for line in labels.axes[0].lines] == ["asked", "judged"]


TEXT_ROWS = [
    {
        "iteration": 0.0,
        "true_score": 0.1,
        "rm_score": -1.0,
        "kl": 0.0,
        "fluency": 1.0,
        "ended": 0.5,
    },
    {"iteration": 1.0, "true_score": NAN, "rm_score": NAN, "kl": NAN},  # not evaluated
    {
        "iteration": 2.0,
        "true_score": 0.6,
        "rm_score": 0.5,
        "kl": 3.0,
        "fluency": 0.9,
        "ended": 0.75,
    },
    {"iteration": 3.0},
    {"iteration": 4.0, "true_score": 0.4, "rm_score": 2.0, "kl": 1.5, "fluency": 0.5, "ended": 1.0},
]


def test_the_scores_plot_draws_the_true_and_reward_model_score_of_each_evaluation(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    paths = plot_text_metrics(TEXT_ROWS, tmp_path / "plots")
    assert [p.name for p in paths] == ["scores.png", "kl_fluency.png", "overoptimisation.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    fig = drawn["scores.png"]
    assert len(fig.axes) == 2
    evaluated = [0.0, 2.0, 4.0]
    np.testing.assert_array_equal(_line(fig, 0, 0), _points(evaluated, [0.1, 0.6, 0.4]))
    np.testing.assert_array_equal(_line(fig, 1, 0), _points(evaluated, [-1.0, 0.5, 2.0]))


def test_the_kl_fluency_and_overoptimisation_plots_draw_each_evaluation(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    plot_text_metrics(TEXT_ROWS, tmp_path)
    evaluated = [0.0, 2.0, 4.0]
    kl_fluency = drawn["kl_fluency.png"]
    np.testing.assert_array_equal(_line(kl_fluency, 0, 0), _points(evaluated, [0.0, 3.0, 1.5]))
    np.testing.assert_array_equal(_line(kl_fluency, 1, 0), _points(evaluated, [1.0, 0.9, 0.5]))
    np.testing.assert_array_equal(_line(kl_fluency, 1, 1), _points(evaluated, [0.5, 0.75, 1.0]))
    over = drawn["overoptimisation.png"]  # both scores against KL, in order of KL
    kl = [0.0, 1.5, 3.0]
    np.testing.assert_array_equal(_line(over, 0, 0), _points(kl, [0.1, 0.4, 0.6]))
    np.testing.assert_array_equal(_line(over, 0, 1), _points(kl, [-1.0, 2.0, 0.5]))
    labels = [line.get_label() for line in over.axes[0].lines]
    assert labels == ["true score", "reward-model score"]


def test_a_score_not_evaluated_with_the_kl_is_left_off_the_overoptimisation_plot(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    rows = [{**row, "rm_score": NAN} if row["iteration"] == 2.0 else row for row in TEXT_ROWS]
    plot_text_metrics(rows, tmp_path)
    (line,) = drawn["overoptimisation.png"].axes[0].lines  # true score and KL still pair up
    assert line.get_label() == "true score"
    np.testing.assert_array_equal(line.get_xydata(), _points([0.0, 1.5, 3.0], [0.1, 0.4, 0.6]))
    rm = _line(drawn["scores.png"], 1, 0)
    np.testing.assert_array_equal(rm, _points([0.0, 4.0], [-1.0, 2.0]))
