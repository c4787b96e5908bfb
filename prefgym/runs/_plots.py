"""PNG plots of a run's metrics: returns, reward-model quality, labels over time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _column(rows: Sequence[dict[str, float]], name: str) -> np.ndarray:
    return np.array([row.get(name, np.nan) for row in rows], dtype=np.float64)


def plot_metrics(rows: Sequence[dict[str, float]], directory: str | os.PathLike[str]) -> list[Path]:
    """Draw the run's plots from its metrics rows into ``directory``.

    Returns:
        The paths of the PNG files written.
    """
    plt = _pyplot()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    step = _column(rows, "step")
    written = []

    fig, true_axis = plt.subplots(figsize=(7, 4))
    true_axis.plot(step, _column(rows, "true_return"), color="tab:blue", label="true return")
    true_axis.set_xlabel("agent steps")
    true_axis.set_ylabel("true return (hidden from the agent)", color="tab:blue")
    learned_axis = true_axis.twinx()
    learned_axis.plot(
        step, _column(rows, "learned_return"), color="tab:orange", label="learned return"
    )
    learned_axis.set_ylabel("learned return (normalised)", color="tab:orange")
    true_axis.set_title("True vs learned episode return")
    written.append(_save(plt, fig, out / "returns.png"))

    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot(step, _column(rows, "rm_val_accuracy"), marker=".", label="held-out accuracy")
    axis.plot(
        step,
        _column(rows, "rm_return_correlation"),
        marker=".",
        label="corr(predicted, true segment return)",
    )
    axis.set_ylim(-0.05, 1.05)
    axis.set_xlabel("agent steps")
    axis.set_title("Reward model")
    axis.legend(loc="lower right")
    written.append(_save(plt, fig, out / "reward_model.png"))

    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot(step, _column(rows, "labels_asked"), label="asked")
    axis.plot(step, _column(rows, "labels_judged"), label="judged")
    axis.set_xlabel("agent steps")
    axis.set_ylabel("labels")
    axis.set_title("Labels over time")
    axis.legend(loc="lower right")
    written.append(_save(plt, fig, out / "labels.png"))
    return written


def _save(plt, fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
