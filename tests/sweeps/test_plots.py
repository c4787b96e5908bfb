"""The sweep's plots draw the numbers they are given (read back from the figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prefgym.sweeps import _plots
from prefgym.sweeps._stats import Estimate


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plot functions save (and a real PNG of each, to check it is one)."""
    drawn: list[Any] = []
    real = _plots.save_png

    def keep(plt: Any, fig: Any, path: Path) -> Path:
        drawn.append(fig)
        fig.canvas.draw()
        return real(plt, fig, path)

    monkeypatch.setattr(_plots, "save_png", keep)
    return drawn


def test_label_efficiency_curves_plot_the_iqm_against_labels_with_its_band(
    figures: list[Any], tmp_path: Path
) -> None:
    curves = {
        "prefgym/CartPole-v1": {
            "oracle=mistake": [(50, Estimate(0.4, 0.3, 0.5)), (100, Estimate(0.8, 0.7, 0.95))],
            "oracle=oracle": [(50, Estimate(0.5, 0.4, 0.6)), (100, Estimate(0.9, 0.85, 1.0))],
        }
    }
    [path] = _plots.plot_label_efficiency(curves, tmp_path / "le.png", "normalised return")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axis = figures[0].axes[0]
    lines = {
        line.get_label(): line for line in axis.get_lines() if not line.get_label().startswith("_")
    }
    assert list(lines["oracle=mistake"].get_xdata()) == [50, 100]
    assert list(lines["oracle=oracle"].get_ydata()) == [0.5, 0.9]
    bands = [c for c in axis.collections]
    low_high = np.concatenate([b.get_paths()[0].vertices[:, 1] for b in bands])
    assert {0.3, 0.95, 0.4, 1.0} <= set(np.round(low_high, 6))
    assert axis.get_xlabel() == "labels" and axis.get_title() == "CartPole-v1"


def test_the_scores_plot_has_one_row_per_configuration_and_the_ci_as_error_bars(
    figures: list[Any], tmp_path: Path
) -> None:
    estimates = {
        ("prefgym/CartPole-v1", "labels=10"): {
            "iqm": Estimate(0.3, 0.1, 0.5),
            "mean": Estimate(0.35, 0.2, 0.5),
            "median": Estimate(0.3, 0.0, 0.6),
        },
        ("prefgym/CartPole-v1", "true-reward"): {
            "iqm": Estimate(1.0, 0.9, 1.1),
            "mean": Estimate(1.0, 0.95, 1.05),
            "median": Estimate(1.0, 0.9, 1.1),
        },
    }
    _plots.plot_scores(estimates, tmp_path / "s.png", "normalised return")
    iqm_axis = figures[0].axes[0]
    assert iqm_axis.get_title() == "IQM"
    points = iqm_axis.get_lines()[0]
    assert list(points.get_xdata()) == [0.3, 1.0]
    [bars] = [c for c in iqm_axis.collections]
    spans = sorted(tuple(np.round(seg[:, 0], 6)) for seg in bars.get_segments())
    assert spans == [(0.1, 0.5), (0.9, 1.1)]
    assert [t.get_text() for t in iqm_axis.get_yticklabels()] == [
        "CartPole-v1: labels=10",
        "CartPole-v1: true-reward",
    ]


def test_performance_profiles_step_down_at_each_run_s_score(
    figures: list[Any], tmp_path: Path
) -> None:
    taus = np.array([0.0, 0.5, 1.0])
    profiles = {"a": (np.array([1.0, 0.5, 0.25]), np.array([0.75, 0.25, 0.0]), np.ones(3))}
    _plots.plot_profiles(profiles, taus, tmp_path / "p.png")
    [line] = [x for x in figures[0].axes[0].get_lines() if x.get_label() == "a"]
    assert list(line.get_ydata()) == [1.0, 0.5, 0.25] and line.get_drawstyle() == "steps-post"
