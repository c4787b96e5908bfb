"""What ``prefgym report SWEEP`` shows: normalised scores over seeds with confidence intervals.

A control trial's score is the true return of its deterministic policy. With a
true-reward baseline in the sweep it is normalised: the improvement over a
uniformly random policy as a fraction of the true-reward agent's,
``(return - random) / (baseline - random)``, where ``baseline`` is the mean over
seeds of the true-reward trials with the same task, steps and agent. So 1 is the
true-reward agent's level and 0 random play, on every task. Text trials and sweeps
without a baseline are scored raw.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefgym.files import read_json_object, write_atomic, write_json
from prefgym.runs.config import PREFERENCE_ONLY
from prefgym.sweeps._stats import (
    Estimate,
    aggregates,
    performance_profile,
    probability_of_improvement,
)
from prefgym.sweeps._sweep_dir import SweepDir, TrialResult
from prefgym.sweeps._trial import EVAL_SEED
from prefgym.sweeps.config import TRUE_REWARD, Trial

RANDOM_FILE = "random_returns.json"
TARGET = 0.9
"""The normalised score the "labels to reach" table looks for."""


@dataclass(frozen=True)
class Scored:
    """A finished trial and its score."""

    trial: Trial
    result: TrialResult
    score: float
    """Normalised (see the module) or raw."""


def baseline_key(trial: Trial) -> str:
    """What a true-reward trial shares with the preference trials it is the baseline of."""
    skip = {*PREFERENCE_ONLY, "reward", "seed"}
    return json.dumps({k: v for k, v in trial.settings.items() if k not in skip}, sort_keys=True)


def random_return(env_id: str, episodes: int, seed: int = EVAL_SEED) -> float:
    """Mean true return of uniformly random actions, over episodes seeded as evaluations are."""
    import gymnasium as gym

    import prefgym

    prefgym.register_envs()
    total = []
    for k in range(episodes):
        env = gym.make(env_id)
        env.reset(seed=seed + k)
        env.action_space.seed(seed + k)
        episode, done = 0.0, False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            episode += float(info["true_reward"])
            done = terminated or truncated
        env.close()
        total.append(episode)
    return float(np.mean(total))


def random_returns(sweep: SweepDir, env_ids: list[str], episodes: int) -> dict[str, float]:
    """Each task's random return, measured once and kept in ``SWEEP/random_returns.json``."""
    file = sweep.path / RANDOM_FILE
    known: dict[str, float] = {}
    if file.is_file():
        data = read_json_object(file, "the sweep's random returns")
        known = {
            k: float(v)
            for k, v in data.items()
            if isinstance(v, (int, float)) and math.isfinite(float(v))
        }
    missing = [e for e in env_ids if e not in known]
    for env_id in missing:
        known[env_id] = random_return(env_id, episodes)
    if missing:
        write_json(file, known)
    return {e: known[e] for e in env_ids}


def scored_trials(sweep: SweepDir) -> tuple[list[Scored], bool]:
    """Every finished trial that can be scored, and whether the scores are normalised.

    A trial whose baseline has not finished, or whose baseline did no better than
    random, cannot be normalised and is left out; :func:`unscored` says which and why.
    """
    scored, normalised, _ = _score_all(sweep)
    return scored, normalised


def unscored(sweep: SweepDir) -> dict[str, list[str]]:
    """Finished trials left out of the statistics, by reason."""
    return _score_all(sweep)[2]


def _score_all(sweep: SweepDir) -> tuple[list[Scored], bool, dict[str, list[str]]]:
    spec, trials = sweep.spec(), sweep.trials()
    finished = [(t, r) for t in trials if (r := sweep.result(t.name)) is not None]
    normalised = spec.kind == "control" and spec.baseline == TRUE_REWARD
    if not normalised:
        return [Scored(t, r, r.score) for t, r in finished], False, {}
    bases: dict[str, list[float]] = defaultdict(list)
    for trial, result in finished:
        if trial.kind == TRUE_REWARD:
            bases[baseline_key(trial)].append(result.score)
    randoms = random_returns(sweep, sorted({t.task for t, _ in finished}), spec.episodes)
    scored: list[Scored] = []
    left_out: dict[str, list[str]] = defaultdict(list)
    for trial, result in finished:
        base, floor = bases.get(baseline_key(trial)), randoms[trial.task]
        if not base:
            left_out["its true-reward baseline has not finished"].append(trial.name)
        elif float(np.mean(base)) <= floor:
            why = (
                f"its true-reward baseline ({float(np.mean(base)):.4g}) is no better than "
                f"random ({floor:.4g}) on {trial.task}: give it more steps"
            )
            left_out[why].append(trial.name)
        else:
            score = (result.score - floor) / (float(np.mean(base)) - floor)
            scored.append(Scored(trial, result, score))
    return scored, True, dict(left_out)


def _config_matrices(scored: list[Scored]) -> dict[str, tuple[np.ndarray, int]]:
    """Per configuration, a seeds x tasks matrix of the seeds every task has.

    With each matrix, how many seeds were dropped because some task lacks them.
    """
    by_config: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for s in scored:
        by_config[s.trial.configuration()][s.trial.task][s.trial.seed] = s.score
    matrices = {}
    for config, tasks in by_config.items():
        seeds = sorted(set.intersection(*(set(v) for v in tasks.values())))
        everyone = set().union(*(set(v) for v in tasks.values()))
        if seeds:
            matrix = np.array([[tasks[t][s] for t in sorted(tasks)] for s in seeds])
            matrices[config] = (matrix, len(everyone) - len(seeds))
    return matrices


def _groups(scored: list[Scored]) -> dict[tuple[str, str], list[Scored]]:
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for s in scored:
        groups[(s.trial.task, s.trial.configuration())].append(s)
    return groups


def sweep_report(path: str | os.PathLike[str], *, reps: int | None = None) -> str:
    """The sweep's tables as text; writes ``results.csv``, ``summary.csv`` and PNG plots.

    Raises:
        FileNotFoundError: ``path`` is not a sweep.
    """
    from prefgym.runs import format_table
    from prefgym.sweeps._stats import REPS

    reps = reps or REPS
    sweep = SweepDir.open(path)
    spec, trials = sweep.spec(), sweep.trials()
    scored, normalised, left_out = _score_all(sweep)
    results = {t.name: sweep.result(t.name) for t in trials}  # each result.json read once here
    done = sum(r is not None for r in results.values())
    failed = [name for name, r in results.items() if r is None and sweep.error(name)]
    what = (
        "normalised return (1 = true-reward agent, 0 = random)"
        if normalised
        else ("true score" if spec.kind == "text" else "true return (no baseline: raw)")
    )
    lines = [
        f"sweep {sweep.path}: {len(trials)} trials, {done} finished"
        + (f", {len(failed)} failed" if failed else ""),
        f"score: {what}; IQM, mean and median over seeds with 95% stratified bootstrap CIs",
        "",
    ]
    header = ["task", "configuration", "seeds", "IQM", "mean", "median", "median return"]
    estimates, summary = _estimates(scored, reps)
    rows = [
        [
            r["task"],
            r["configuration"],
            r["runs"],
            *(str(e) for e in est.values()),
            r["median_return"],
        ]
        for r, est in summary
    ]
    lines.append(format_table(header, rows) if rows else "no trial has finished yet")
    reach = _labels_to_reach(scored, estimates) if normalised else []
    if reach:
        lines += ["", f"labels to reach {TARGET:.0%} of the true-reward agent's improvement:"]
        lines.append(
            format_table(["task", "configuration", "IQM reaches", "CI low reaches"], reach)
        )
    for why, names in sorted(left_out.items()):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        lines += ["", f"{len(names)} finished trial(s) left out ({shown}): {why}"]
    if normalised and scored:
        lines += [
            "",
            "the CIs resample the runs of each configuration; the baseline's mean, the "
            "denominator, is taken as exact",
        ]
    if failed:
        lines += ["", "failed: " + "; ".join(f"{n} ({sweep.error(n)})" for n in failed)]
    _write_results(sweep, trials, results, scored)
    if summary:
        _write_csv(sweep.path / "summary.csv", [r for r, _ in summary])
    plots = _draw(sweep, scored, estimates, normalised, what, reps) if scored else []
    lines += ["", f"per trial: {sweep.path / 'results.csv'}"]
    if summary:
        lines.append(f"summary: {sweep.path / 'summary.csv'}")
    if plots:
        lines.append("plots: " + ", ".join(str(p) for p in plots))
    return "\n".join(lines)


def _natural_key(item: tuple[tuple[str, str], Any]) -> list[Any]:
    """Rows in natural order: ``labels=30`` before ``labels=100``."""
    (task, config), _ = item
    return [task, *(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", config))]


def _estimates(
    scored: list[Scored], reps: int
) -> tuple[
    dict[tuple[str, str], dict[str, Estimate]], list[tuple[dict[str, Any], dict[str, Estimate]]]
]:
    """Per (task, configuration), and per configuration over all its tasks: the aggregates.

    Returns:
        The per-task estimates, and every summary row with its estimates.
    """
    estimates: dict[tuple[str, str], dict[str, Estimate]] = {}
    summary = []
    for (task, config), group in sorted(_groups(scored).items(), key=_natural_key):
        est = aggregates(np.array([s.score for s in group]), reps=reps)
        estimates[(task, config)] = est
        raw = float(np.median([s.result.score for s in group]))
        summary.append((_summary_row(task, config, len(group), est, raw), est))
    for config, (matrix, dropped) in sorted(_config_matrices(scored).items()):
        if matrix.shape[1] < 2:
            continue
        est = aggregates(matrix, reps=reps)
        label = f"all {matrix.shape[1]} tasks" + (
            f" ({dropped} seed(s) missing on some task left out)" if dropped else ""
        )
        summary.append((_summary_row(label, config, matrix.shape[0], est, math.nan), est))
    return estimates, summary


def _draw(
    sweep: SweepDir,
    scored: list[Scored],
    estimates: dict[tuple[str, str], dict[str, Estimate]],
    normalised: bool,
    what: str,
    reps: int,
) -> list[Path]:
    """The sweep's PNGs: scores, performance profiles (normalised), label-efficiency curves."""
    from prefgym.sweeps._plots import plot_label_efficiency, plot_profiles, plot_scores

    plots = plot_scores(estimates, sweep.plots / "scores.png", what)
    if normalised:
        lowest = min(0.0, min(s.score for s in scored))
        taus = np.linspace(lowest, max(1.2, max(s.score for s in scored)), 61)
        matrices = {k: m for k, (m, _) in _config_matrices(scored).items()}
        profiles = performance_profile(matrices, taus, reps=reps)
        plots += plot_profiles(profiles, taus, sweep.plots / "performance_profile.png")
    curves = _label_curves(estimates, scored)
    if curves:
        plots += plot_label_efficiency(curves, sweep.plots / "label_efficiency.png", what)
    return plots


def _summary_row(
    task: str, config: str, n: int, est: dict[str, Estimate], raw: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"task": task, "configuration": config, "runs": n}
    for name, e in est.items():
        row.update({name: e.value, f"{name}_low": e.low, f"{name}_high": e.high})
    row["median_return"] = raw
    return row


def _label_curves(
    estimates: dict[tuple[str, str], dict[str, Estimate]], scored: list[Scored]
) -> dict[str, dict[str, list[tuple[int, Estimate]]]]:
    """``{task: {configuration without labels: [(labels, IQM), ...]}}`` where labels vary."""
    labels_of: dict[tuple[str, str], tuple[int, str]] = {}
    for s in scored:
        if "labels" in s.trial.varied and s.trial.kind != TRUE_REWARD:
            rest = " ".join(
                f"{k}={v}"
                for k, v in s.trial.varied.items()
                if k not in ("env_id", "seed", "labels")
            )
            labels_of[(s.trial.task, s.trial.configuration())] = (
                int(s.trial.varied["labels"]),
                rest or "default",
            )
    curves: dict[str, dict[str, list[tuple[int, Estimate]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for key, (labels, rest) in labels_of.items():
        curves[key[0]][rest].append((labels, estimates[key]["iqm"]))
    for task in curves:
        for rest in curves[task]:
            curves[task][rest].sort(key=lambda p: p[0])
    return {t: dict(c) for t, c in curves.items()}


def _labels_to_reach(
    scored: list[Scored], estimates: dict[tuple[str, str], dict[str, Estimate]]
) -> list[list[object]]:
    rows: list[list[object]] = []
    for task, by_rest in sorted(_label_curves(estimates, scored).items()):
        for rest, points in sorted(by_rest.items()):
            most = points[-1][0]
            iqm = next((n for n, e in points if e.value >= TARGET), None)
            low = next((n for n, e in points if e.low >= TARGET), None)
            rows.append([task, rest, _reach(iqm, most), _reach(low, most)])
    return rows


def _reach(labels: int | None, most: int) -> str:
    return str(labels) if labels is not None else f"> {most}"


def _write_results(
    sweep: SweepDir,
    trials: list[Trial],
    results: dict[str, TrialResult | None],
    scored: list[Scored],
) -> None:
    score = {s.trial.name: s.score for s in scored}
    keys = sorted({k for t in trials for k in t.varied if k != "seed"})
    rows = []
    for trial in trials:
        result = results[trial.name]
        row: dict[str, Any] = {"trial": trial.name, "kind": trial.kind}
        row.update({k: trial.settings.get(k, trial.varied.get(k, "")) for k in keys})
        if trial.kind == TRUE_REWARD:  # its preference settings are defaults it does not use
            row.update({k: "" for k in keys if k in PREFERENCE_ONLY})
        row["seed"] = trial.seed
        row["status"] = "done" if result else ("failed" if sweep.error(trial.name) else "pending")
        row["return"] = result.score if result else ""
        row["return_std"] = result.score_std if result else ""
        row["score"] = score.get(trial.name, "")
        row["train_seconds"] = result.train_seconds if result else ""
        row["judgments"] = result.judgments if result else ""
        rows.append(row)
    _write_csv(sweep.path / "results.csv", rows)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def compare(a: str, b: str, *, reps: int | None = None) -> str:
    """P(A > B) for two configurations, each ``SWEEP[:field=value,...]``, over shared tasks.

    Each selector must pick one configuration per task (say which label budget, say,
    when the sweep varies it); runs of A and B need not be as many.

    Raises:
        ValueError: A selector matches no finished trial or several configurations,
            one sweep is normalised and the other not, or A and B share no task.
    """
    from prefgym.sweeps._stats import REPS

    (runs_a, normalised_a), (runs_b, normalised_b) = _select(a), _select(b)
    if normalised_a != normalised_b:
        raise ValueError(
            f"{a!r} and {b!r} are scored differently (one sweep has a true-reward baseline, "
            "the other not): compare sweeps that both have --baseline true-reward or neither"
        )
    tasks = sorted(set(runs_a) & set(runs_b))
    if not tasks:
        raise ValueError(f"{a!r} and {b!r} share no task with finished trials: nothing to compare")
    x, y = _task_matrix(runs_a, tasks), _task_matrix(runs_b, tasks)
    estimate = probability_of_improvement(x, y, reps=reps or REPS)
    return (
        f"P({a} > {b}) = {estimate} (95% CI), over {len(tasks)} task(s) "
        f"({', '.join(tasks)}), {x.shape[0]} and {y.shape[0]} seeds"
    )


def _task_matrix(runs: dict[str, list[float]], tasks: list[str]) -> np.ndarray:
    """Runs x tasks, keeping the runs every task has (the first ``n`` seeds of each)."""
    n = min(len(runs[t]) for t in tasks)
    return np.array([[runs[t][i] for t in tasks] for i in range(n)])


def _select(selector: str) -> tuple[dict[str, list[float]], bool]:
    """Scores per task of the finished trials ``SWEEP[:field=value,...]`` picks.

    With them, whether the scores are normalised.
    """
    from prefgym.sweeps.config import dotted, parse_value, split_values

    path, _, spec = selector.partition(":")
    sweep = SweepDir.open(path)
    parts = split_values(spec) if spec else []
    bad = [part for part in parts if "=" not in part]
    if bad:
        raise ValueError(f"selector {selector!r}: {bad[0]!r} is not field=value")
    wanted = dict(part.split("=", 1) for part in parts)
    scored, normalised = scored_trials(sweep)
    if sweep.spec().kind == "control":
        wanted.setdefault("reward", "learned")  # the true-reward baseline only when asked for
    runs: dict[str, list[float]] = defaultdict(list)
    configurations: dict[str, set[str]] = defaultdict(set)
    fields: set[str] = set()
    for s in sorted(scored, key=lambda s: s.trial.seed):
        flat = dotted(s.trial.settings)
        fields |= set(flat)
        if all(flat.get(k) in (v, parse_value(v)) for k, v in wanted.items()):
            runs[s.trial.task].append(s.score)
            configurations[s.trial.task].add(s.trial.configuration())
    unknown = [k for k in wanted if k not in fields]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(fields), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"selector {selector!r}: {unknown[0]!r} is not a setting of its trials{hint}"
        )
    if not runs:
        raise ValueError(f"selector {selector!r} matches no finished trial")
    several = {t: c for t, c in configurations.items() if len(c) > 1}
    if several:
        task, names = next(iter(sorted(several.items())))
        example = f"{path}:{sorted(names)[0].replace(' ', ',')}"
        raise ValueError(
            f"selector {selector!r} picks {len(names)} configurations on {task} "
            f"({'; '.join(sorted(names))}): name one, e.g. {example}"
        )
    return dict(runs), normalised
