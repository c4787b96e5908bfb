"""A sweep's PNG plots: scores with CIs, performance profiles, label-efficiency curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prefgym.runs import pyplot, save_png
from prefgym.sweeps._stats import AGGREGATES, Estimate


def plot_scores(
    estimates: dict[tuple[str, str], dict[str, Estimate]], path: Path, what: str
) -> list[Path]:
    """IQM, mean and median of each (task, configuration), with 95% CIs as bars."""
    plt = pyplot()
    keys = sorted(estimates)
    fig, axes = plt.subplots(
        1, len(AGGREGATES), figsize=(4 * len(AGGREGATES) + 2, 0.45 * len(keys) + 1.6), sharey=True
    )
    positions = np.arange(len(keys))
    for axis, name in zip(axes, AGGREGATES, strict=True):
        values = np.array([estimates[k][name].value for k in keys])
        low = np.array([estimates[k][name].low for k in keys])
        high = np.array([estimates[k][name].high for k in keys])
        axis.errorbar(
            values,
            positions,
            xerr=[values - low, high - values],
            fmt="o",
            capsize=3,
            color="tab:blue",
        )
        axis.set_title(name.upper() if name == "iqm" else name)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, [f"{t.split('/')[-1]}: {c}" for t, c in keys])
    axes[0].invert_yaxis()
    fig.supxlabel(what)
    return [save_png(plt, fig, path)]


def plot_profiles(
    profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], taus: np.ndarray, path: Path
) -> list[Path]:
    """Performance profiles: the fraction of runs above each normalised score, with CI bands."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for name, (fraction, low, high) in sorted(profiles.items()):
        line = axis.plot(taus, fraction, label=name, drawstyle="steps-post")[0]
        axis.fill_between(taus, low, high, color=line.get_color(), alpha=0.2, step="post")
    axis.set_xlabel("normalised return τ (1 = true-reward agent)")
    axis.set_ylabel("fraction of runs with score > τ")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("Performance profiles (95% bootstrap bands, runs resampled within tasks)")
    return [save_png(plt, fig, path)]


def plot_label_efficiency(
    curves: dict[str, dict[str, list[tuple[int, Estimate]]]], path: Path, what: str
) -> list[Path]:
    """IQM score against the label budget, one panel per task, with 95% CI bands."""
    plt = pyplot()
    tasks = sorted(curves)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks, strict=True):
        for name, points in sorted(curves[task].items()):
            labels = np.array([n for n, _ in points])
            line = axis.plot(labels, [e.value for _, e in points], marker="o", label=name)[0]
            axis.fill_between(
                labels,
                [e.low for _, e in points],
                [e.high for _, e in points],
                color=line.get_color(),
                alpha=0.2,
            )
        axis.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_xlabel("labels")
        axis.set_title(task.split("/")[-1])
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel(f"IQM {what.split(' (')[0]}")
    return [save_png(plt, fig, path)]
