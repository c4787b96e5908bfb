"""PNG plots of a run's metrics.

A control run: true and learned return, reward-model quality, labels over time.
A text run: scores over training, KL and fluency, and over-optimisation (Gao et
al. 2022): the true score and the reward model's score of the policy's responses
against the policy's KL to the SFT reference; the reward-model score keeps rising
with KL while the true score peaks and falls once the policy games the reward model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prefgym.files import atomic_file


def pyplot():  # type: ignore[no-untyped-def]
    """Matplotlib's pyplot on the Agg backend (files only, no display)."""
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
    plt = pyplot()
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
    written.append(save_png(plt, fig, out / "returns.png"))

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
    written.append(save_png(plt, fig, out / "reward_model.png"))

    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot(step, _column(rows, "labels_asked"), label="asked")
    axis.plot(step, _column(rows, "labels_judged"), label="judged")
    axis.set_xlabel("agent steps")
    axis.set_ylabel("labels")
    axis.set_title("Labels over time")
    axis.legend(loc="lower right")
    written.append(save_png(plt, fig, out / "labels.png"))
    return written


def save_png(plt, fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write ``fig`` to ``path`` as PNG atomically and close it; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _evaluated(rows: Sequence[dict[str, float]], name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(iterations, values)`` of the rows that hold an evaluation of ``name``."""
    x = np.array([r.get("iteration", np.nan) for r in rows], dtype=np.float64)
    y = np.array([r.get(name, np.nan) for r in rows], dtype=np.float64)
    keep = np.isfinite(y)
    return x[keep], y[keep]


def plot_text_metrics(
    rows: Sequence[dict[str, float]], directory: str | os.PathLike[str]
) -> list[Path]:
    """Draw a text run's plots from its metrics rows into ``directory``.

    Returns:
        The paths of the PNG files written.
    """
    plt = pyplot()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    fig, true_axis = plt.subplots(figsize=(7, 4))
    true_axis.plot(*_evaluated(rows, "true_score"), color="tab:blue", marker=".", label="true")
    true_axis.set_xlabel("iteration")
    true_axis.set_ylabel("true score (hidden from the policy)", color="tab:blue")
    rm_axis = true_axis.twinx()
    rm_axis.plot(*_evaluated(rows, "rm_score"), color="tab:orange", marker=".")
    rm_axis.set_ylabel("reward-model score (normalised on SFT)", color="tab:orange")
    true_axis.set_title("True and reward-model score of the policy's responses")
    written.append(save_png(plt, fig, out / "scores.png"))

    fig, (kl_axis, fluency_axis) = plt.subplots(1, 2, figsize=(10, 4))
    kl_axis.plot(*_evaluated(rows, "kl"), marker=".")
    kl_axis.set_xlabel("iteration")
    kl_axis.set_ylabel("KL to the SFT policy (nats per response)")
    kl_axis.set_title("KL")
    fluency_axis.plot(*_evaluated(rows, "fluency"), marker=".", label="fluent")
    fluency_axis.plot(*_evaluated(rows, "ended"), marker=".", label="ended (eos)")
    fluency_axis.set_ylim(-0.05, 1.05)
    fluency_axis.set_xlabel("iteration")
    fluency_axis.set_title("Fluency (parses under the grammar)")
    fluency_axis.legend(loc="lower left")
    written.append(save_png(plt, fig, out / "kl_fluency.png"))

    _, kl = _evaluated(rows, "kl")
    _, true = _evaluated(rows, "true_score")
    _, rm = _evaluated(rows, "rm_score")
    fig, axis = plt.subplots(figsize=(7, 4))
    if len(kl) == len(true):
        order = np.argsort(kl)
        axis.plot(kl[order], true[order], marker="o", label="true score")
    if len(kl) == len(rm):
        order = np.argsort(kl)
        axis.plot(kl[order], rm[order], marker="s", label="reward-model score")
    axis.set_xlabel("KL to the SFT policy (nats)")
    axis.set_ylabel("score")
    axis.set_title("Over-optimisation (Gao et al. 2022)")
    axis.legend(loc="best")
    written.append(save_png(plt, fig, out / "overoptimisation.png"))
    return written
