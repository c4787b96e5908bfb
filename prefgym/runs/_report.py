"""What ``prefgym report`` shows: tables of a run's metrics and of who judged what."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from itertools import combinations
from pathlib import Path

import numpy as np

from prefgym.runs._run_dir import RunDir
from prefgym.store import PreferenceStore, StoredJudgment, training_data


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
    """Judgments per judge, their time and truth, and agreement where two judges shared a query.

    "median s" is the median seconds a person took per judgment (shown to key;
    oracles take none). "truth" is the share of a judge's strict answers (left or
    right, and each pair of segments a ranking orders) that agree with the hidden
    true return, over the pairs whose true returns differ.

    Returns:
        A header and rows ``(judge, judgments, left, right, equal, incomparable,
        rankings, median s, truth)``, followed by rows ``(judge A ~ judge B, shared
        queries, agreement)``.
    """
    judgments = store.judgments()
    truth = _agreement_with_truth(store, judgments)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seconds: dict[str, list[float]] = defaultdict(list)
    answers: dict[int, dict[str, object]] = defaultdict(dict)
    for judgment in judgments:
        kind = "ranking" if judgment.preference is None else judgment.preference.value
        counts[judgment.judge][kind] += 1
        answers[judgment.query_id][judgment.judge] = judgment.order or kind
        if judgment.seconds is not None:
            seconds[judgment.judge].append(judgment.seconds)
    header = [
        "judge",
        "judgments",
        "left",
        "right",
        "equal",
        "incomparable",
        "rankings",
        "median s",
        "truth",
    ]
    rows: list[list[object]] = []
    for judge in sorted(counts):
        c = counts[judge]
        kinds = ("left", "right", "equal", "incomparable", "ranking")
        took = float(np.median(seconds[judge])) if seconds[judge] else math.nan
        agree = truth[judge]
        rows.append(
            [
                judge,
                sum(c.values()),
                *(c[k] for k in kinds),
                took,
                f"{sum(agree) / len(agree):.0%}" if agree else "-",
            ]
        )
    shared: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for by_judge in answers.values():
        for a, b in combinations(sorted(by_judge), 2):
            shared[(a, b)].append(by_judge[a] == by_judge[b])
    for (a, b), agree in sorted(shared.items()):
        rows.append([f"{a} ~ {b}", len(agree), f"agree {sum(agree) / len(agree):.0%}", *[""] * 6])
    return header, rows


def _agreement_with_truth(
    store: PreferenceStore, judgments: Sequence[StoredJudgment]
) -> dict[str, list[bool]]:
    """Per judge, whether each strict order it asserted agrees with the true returns."""
    ids = sorted({s for j in judgments for s in j.segment_ids})
    segments = store.get_segments(ids, frames=False)
    returns = {i: s.true_return for i, s in zip(ids, segments, strict=True)}
    truth: dict[str, list[bool]] = defaultdict(list)
    for judgment in judgments:
        kind = "ranking" if judgment.preference is None else judgment.preference.value
        for better, worse in _strict_orders(judgment.segment_ids, kind, judgment.order):
            if returns[better] != returns[worse]:
                truth[judgment.judge].append(returns[better] > returns[worse])
    return truth


def _strict_orders(
    segment_ids: tuple[int, ...], kind: str, order: tuple[int, ...] | None
) -> list[tuple[int, int]]:
    """``(better, worse)`` segment pairs an answer asserts: one a pair, C(K, 2) a ranking."""
    if order is not None:
        return list(combinations(order, 2))
    if kind == "left":
        return [(segment_ids[0], segment_ids[1])]
    if kind == "right":
        return [(segment_ids[1], segment_ids[0])]
    return []


def judges_section(run: RunDir) -> list[str]:
    """The lines on who judged: questions asked, answers given and trainable, and per judge."""
    run.check_store()
    if not run.store.exists():
        return []
    with PreferenceStore(run.store) as store:
        asked, given = store.n_queries(), store.n_judgments()
        data = training_data(store)
        header, table = labeler_table(store)
    if not asked:
        return []
    trainable = len(data.pairs) + len(data.rankings)
    lines = ["", f"questions asked {asked}, answers given {given}, answers trainable {trainable}"]
    if table:
        lines += ["", format_table(header, table)]
    return lines


def report(run_path: str | os.PathLike[str] | RunDir) -> str:
    """Redraw the run's plots and return its tables as text."""
    from prefgym.runs._metrics import read_metrics
    from prefgym.runs._plots import plot_metrics

    run = run_path if isinstance(run_path, RunDir) else RunDir.open(run_path)
    config = asdict(run.train_config())
    rows = read_metrics(run.metrics)
    columns = [
        "step",
        "labels_judged",
        "true_return",
        "learned_return",
        "rm_val_accuracy",
        "rm_return_correlation",
    ]
    header = ["step", "labels", "true return", "learned return", "rm accuracy", "rm corr"]
    shown = rows if len(rows) <= 12 else rows[:: math.ceil(len(rows) / 12)] + rows[-1:]
    judged = (
        f"{config['algo'].upper()} on the true reward (baseline)"
        if config["reward"] == "true"
        else f"oracle {config['oracle']!r}, {config['labels']} labels"
    )
    text = [
        f"run {run.path}: {config['env_id']}, {judged}, {config['steps']} steps, "
        f"seed {config['seed']}",
        "",
    ]
    if rows:
        text.append(
            format_table(header, [[row.get(c, math.nan) for c in columns] for row in shown])
        )
        plots = plot_metrics(rows, run.plots)
        text += ["", "plots: " + ", ".join(str(p) for p in plots)]
    else:
        text.append("no round has finished yet")
    text += judges_section(run)
    try:
        run.saved_agent()  # the report reads no agent; it only says when one cannot be read
    except ValueError as error:
        text += ["", f"note: {error}"]
    return "\n".join(text)


def text_report(run_path: str | Path) -> str:
    """A text run's table (true score, reward-model score, KL, fluency) and its plots."""
    from prefgym.runs._metrics import read_metrics
    from prefgym.runs._plots import plot_text_metrics
    from prefgym.runs._run_dir import RunDir

    run = RunDir.open(run_path)
    config = asdict(run.text_config())
    rows = [r for r in read_metrics(run.metrics) if not math.isnan(r.get("true_score", math.nan))]
    text = [
        f"run {run.path}: {config['env_id']}, {config['algo']}, oracle {config['oracle']!r}, "
        f"{config['labels']} labels, {config['iterations'] or 'default'} iterations, "
        f"seed {config['seed']}",
        "",
    ]
    columns = [
        "iteration",
        "labels_judged",
        "true_score",
        "rm_score",
        "kl",
        "fluency",
        "response_tokens",
    ]
    header = ["iteration", "labels", "true score", "rm score", "KL", "fluency", "tokens"]
    if rows:
        text.append(format_table(header, [[r.get(c, math.nan) for c in columns] for r in rows]))
        plots = plot_text_metrics(read_metrics(run.metrics), run.plots)
        text += ["", "plots: " + ", ".join(str(p) for p in plots)]
    else:
        text.append("no evaluation has finished yet")
    samples = run.path / "samples.jsonl"
    if samples.exists():
        last = [json.loads(line) for line in samples.read_text().splitlines()][-4:]
        text += ["", f"samples at iteration {last[-1]['iteration']}:"]
        text += [
            f"  {s['prompt']} | {s['response']}   (score {s['true_score']:+.2f}, "
            f"{'fluent' if s['fluent'] else 'not fluent'})"
            for s in last
        ]
    text += judges_section(run)
    return "\n".join(text)


def is_text_run(run_path: str | Path) -> bool:
    """Whether ``run_path`` holds a text run (its config has a ``text`` section)."""
    return RunDir.open(run_path).is_text()
