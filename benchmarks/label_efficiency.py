"""Label efficiency on the sweep: preference PPO against true-reward PPO and against imitation.

For each task it runs a ``prefgym sweep`` (Ray Tune, every core): prefgym's
preference loop for each simulated teacher (B-Pref preset), label budget and
seed, and the same SB3 agent on the true reward with the same seeds and steps
(``--baseline true-reward``). Every trial is a run directory under
``OUT/sweeps/<task>/trials/``; a benchmark killed midway carries on where it
stopped when run again with the same options. Reported per (task, teacher, budget):

* the normalised return: the improvement of the trained (deterministic) policy
  over a uniformly random one as a fraction of the true-reward agent's (mean over
  seeds), ``(ours - random) / (PPO-true - random)``, on every task, as IQM with a
  95% stratified bootstrap CI (rliable), and the median raw returns beside it;
* the wall-time and CPU-time ratio of training (evaluation excluded) to the
  true-reward trial of the same seed, IQM with CI; trials run side by side, one
  per core, so the CPU ratio leaves out waits for a core;
* optionally imitation's ``PreferenceComparisons`` on the same task, label
  budget, agent steps, PPO preset and segment length, run by
  ``benchmarks/imitation_peer.py`` in a virtual environment this script creates
  (``benchmarks/.venv-imitation``), as many at a time as cores; on Hopper,
  whose v5 imitation's gymnasium 0.29 lacks, the peer trains on Hopper-v4 and
  its policy is scored on prefgym's Hopper-v5 like ours (``PEER_BASE_IDS``).

It prints a table per run and a summary with the targets, and writes
``results.csv``, ``summary.csv`` and ``label_efficiency.png`` to ``--out``;
``prefgym report OUT/sweeps/<task>`` shows each sweep's own statistics. Examples::

    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --quick
    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --envs CartPole Acrobot --seeds 10
    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --envs Pendulum --oracles oracle \
        --no-peer

Default steps: CartPole, Acrobot and Pendulum 100k (the RL Zoo's PPO budget
for CartPole), Hopper 300k (PPO on the true reward is past 3,000 of the fixed
1,000-step horizon by then; the Zoo's 1M takes about 20 minutes a side here).
Default label budgets: CartPole 100, Acrobot 200, Pendulum 700, Hopper 700.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import prefgym
from prefgym.runs import TrainConfig, format_table
from prefgym.sweeps import (
    SweepDir,
    SweepSpec,
    aggregates,
    is_sweep,
    random_returns,
    ray_session,
    resume_sweep,
    run_sweep,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_VENV = HERE / ".venv-imitation"
PEER_SCRIPT = HERE / "imitation_peer.py"
PEER_PACKAGES = (
    ("torch==2.13.0",),
    ("imitation==1.0.1", "numpy<2", "pandas<3", "mujoco", "imageio"),
)
"""Installed in this order: torch first (the CPU build), then imitation. imitation 1.0.1 pins
gymnasium 0.29, whose Acrobot uses ``np.float_`` (gone in NumPy 2), so NumPy stays below 2
(and pandas, which a dependency pulls in, below 3, the first release to need NumPy 2).
MuJoCo and imageio are what gymnasium 0.29's MuJoCo tasks import."""
PEER_STAMP = PEER_VENV / "prefgym-peer-packages.json"
"""The package list the peer venv was built from; a venv built from another list is updated."""
PEER_BASE_IDS = {"Hopper": "Hopper-v4"}
"""The base task imitation trains on where its gymnasium (0.29) lacks prefgym's version.

gymnasium 0.29's MuJoCo tasks stop at v4. Hopper-v4 and v5 have the same model,
observations and reward terms; under prefgym's ``penalty`` termination they differ
only in that v4 also pays the healthy reward (1) on the step the hopper falls (the
same 1,000 random actions: 306.0 on v4, 260.0 on v5, 46 falls). The peer's policy is
therefore scored again on prefgym's own task (``rescore_peer``), and its score on
v4 is kept beside it."""


ENV_IDS = {
    "CartPole": "prefgym/CartPole-v1",
    "Acrobot": "prefgym/Acrobot-v1",
    "Pendulum": "prefgym/Pendulum-v1",
    "Hopper": "prefgym/Hopper-v5",
}
DEFAULT_LABELS = {"CartPole": 100, "Acrobot": 200, "Pendulum": 700, "Hopper": 700}
DEFAULT_STEPS = {"CartPole": 100_000, "Acrobot": 100_000, "Pendulum": 100_000, "Hopper": 300_000}
TRAIN_DEFAULTS = TrainConfig()
ORACLES = ("oracle", "stoc", "mistake", "skip", "equal", "myopic")
EPISODES = 20
EVAL_SEED = 10_000
"""As the sweep's trials are scored (``prefgym.sweeps``: 20 episodes from seed 10,000)."""
SEGMENT_LENGTH = 25
ROUND_STEPS = 5_000
"""prefgym's refit cadence (``TrainConfig.round_steps``); imitation gets about as many
iterations (``peer_schedule``)."""
REPS = 2000

COLUMNS = [
    "env",
    "oracle",
    "labels",
    "steps",
    "seed",
    "ours_return",
    "ours_return_std",
    "ppo_true_return",
    "random_return",
    "score",
    "ours_wall_s",
    "ppo_true_wall_s",
    "wall_ratio",
    "ours_cpu_s",
    "ppo_true_cpu_s",
    "cpu_ratio",
    "peer_teacher",
    "peer_env",
    "peer_return",
    "peer_return_peer_env",
    "peer_score",
    "peer_wall_s",
    "peer_wall_ratio",
    "peer_error",
]


def short_name(env_id: str) -> str:
    return env_id.split("/")[-1].split("-")[0]


def normalised(value: float, baseline: float, random: float) -> float:
    """The improvement of ``value`` over random as a fraction of the baseline's."""
    span = baseline - random
    return (value - random) / span if span > 0 else math.nan


def sweep_spec(
    env: str, oracles: Sequence[str], labels: Sequence[int], steps: int, seeds: Sequence[int],
    rollout_envs: int,
) -> SweepSpec:  # fmt: skip
    """The sweep of one task: every teacher and budget, and the true-reward baseline."""
    return SweepSpec(
        grid={
            "env_id": [ENV_IDS[env]],
            "oracle": list(oracles),
            "labels": list(labels),
            "steps": [steps],
            "segment_length": [SEGMENT_LENGTH],
            "round_steps": [ROUND_STEPS],
            "rollout_envs": [rollout_envs],
        },
        seeds=list(seeds),
        baseline="true-reward",
        episodes=EPISODES,
    )


def run_sweeps(args: argparse.Namespace) -> dict[str, SweepDir]:
    """One sweep per task, all on one Ray; a sweep already there is carried on."""
    sweeps = {}
    with ray_session(args.address, args.num_cpus):
        for env in args.envs:
            out = args.out / "sweeps" / env
            steps = args.steps or DEFAULT_STEPS[env]
            spec = sweep_spec(
                env, args.oracles, args.labels or [DEFAULT_LABELS[env]], steps, args.seeds,
                args.rollout_envs,
            )  # fmt: skip
            if is_sweep(out):
                if SweepDir.open(out).spec() != spec:
                    raise SystemExit(f"{out} holds a sweep of other settings; use another --out")
                sweeps[env] = resume_sweep(out, stream=sys.stdout)
            else:
                sweeps[env] = run_sweep(spec, out, stream=sys.stdout)
    return sweeps


def rows_of(sweeps: dict[str, SweepDir]) -> list[dict[str, Any]]:
    """One row per preference trial: its return, its seed's baseline, and the ratios."""
    rows = []
    for env, sweep in sweeps.items():
        env_id = ENV_IDS[env]
        trials = sweep.trials()
        base = {t.seed: sweep.result(t.name) for t in trials if t.kind == "true-reward"}
        done = [b for b in base.values() if b is not None]
        if not done:
            continue
        random = random_returns(sweep, [env_id], EPISODES)[env_id]
        base_mean = float(np.mean([b.score for b in done]))
        for trial in trials:
            result, baseline = sweep.result(trial.name), base.get(trial.seed)
            if trial.kind != "preference" or result is None or baseline is None:
                continue
            rows.append(
                {
                    "env": env,
                    "oracle": trial.settings["oracle"],
                    "labels": trial.settings["labels"],
                    "steps": trial.settings["steps"],
                    "seed": trial.seed,
                    "ours_return": result.score,
                    "ours_return_std": result.score_std,
                    "ppo_true_return": baseline.score,
                    "random_return": random,
                    "baseline_mean": base_mean,
                    "score": normalised(result.score, base_mean, random),
                    "ours_wall_s": result.train_seconds,
                    "ppo_true_wall_s": baseline.train_seconds,
                    "wall_ratio": result.train_seconds / baseline.train_seconds,
                    "ours_cpu_s": result.cpu_seconds,
                    "ppo_true_cpu_s": baseline.cpu_seconds,
                    "cpu_ratio": result.cpu_seconds / baseline.cpu_seconds,
                    "peer_teacher": "",
                    "peer_env": "",
                    "peer_return": math.nan,
                    "peer_return_peer_env": math.nan,
                    "peer_score": math.nan,
                    "peer_wall_s": math.nan,
                    "peer_wall_ratio": math.nan,
                    "peer_error": "",
                }
            )
    return rows


def add_peers(rows: list[dict[str, Any]], work: Path, workers: int) -> None:
    """Run imitation beside each row (as many at a time as ``workers``) and fill its columns."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        ensure_peer_venv(work / "venv-install.log")  # once, before the jobs run side by side
    except (subprocess.CalledProcessError, OSError) as error:
        for row in rows:
            row["peer_error"] = f"could not create {PEER_VENV}: {error}"
        return
    jobs: dict[tuple[Any, ...], Any] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for row in rows:
            teacher = peer_teacher(row["oracle"])
            key = (row["env"], row["labels"], row["steps"], row["seed"], teacher_name(teacher))
            if key not in jobs:
                base_id = PEER_BASE_IDS.get(row["env"])
                jobs[key] = pool.submit(
                    run_peer, ENV_IDS[row["env"]], row["labels"], row["steps"], row["seed"],
                    teacher, work, base_id,
                )  # fmt: skip
            row["_peer"] = jobs[key]
        for row in rows:
            peer = row.pop("_peer").result()
            row["peer_teacher"] = teacher_name(peer_teacher(row["oracle"]))
            base_id = PEER_BASE_IDS.get(row["env"])
            row["peer_env"] = base_id or ""
            if "error" in peer:
                row["peer_error"] = peer["error"]
                continue
            peer_return = row["peer_return_peer_env"] = peer["true_return_mean"]
            if base_id:
                peer_return, _ = rescore_peer(
                    ENV_IDS[row["env"]], row["seed"], Path(peer["policy_path"])
                )
            row["peer_return"] = peer_return
            row["peer_score"] = normalised(peer_return, row["baseline_mean"], row["random_return"])
            row["peer_wall_s"] = peer["wall_seconds"]
            row["peer_wall_ratio"] = peer["wall_seconds"] / row["ppo_true_wall_s"]


def _interval(values: list[float]) -> dict[str, float]:
    kept = np.array([v for v in values if isinstance(v, float) and math.isfinite(v)])
    if not len(kept):
        return {"iqm": math.nan, "low": math.nan, "high": math.nan}
    iqm = aggregates(kept, reps=REPS)["iqm"]
    return {"iqm": iqm.value, "low": iqm.low, "high": iqm.high}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (env, oracle, labels, steps): IQMs with 95% CIs over seeds, and median returns."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["env"], row["oracle"], row["labels"], row["steps"])].append(row)
    summary = []
    for (env, oracle, labels, steps), members in groups.items():
        entry: dict[str, Any] = {
            "env": env, "oracle": oracle, "labels": labels, "steps": steps, "seeds": len(members),
        }  # fmt: skip
        for key in ("ours_return", "ppo_true_return", "peer_return"):
            values = [m[key] for m in members if math.isfinite(m[key])]
            entry[key] = float(np.median(values)) if values else math.nan
        for key in ("score", "wall_ratio", "cpu_ratio", "peer_score", "peer_wall_ratio"):
            interval = _interval([m[key] for m in members])
            entry[key] = interval["iqm"]
            entry[f"{key}_low"], entry[f"{key}_high"] = interval["low"], interval["high"]
        summary.append(entry)
    return summary


def check_targets(summary: list[dict[str, Any]]) -> list[str]:
    """The first wave's targets, judged on the IQMs (and their CIs' lower ends)."""
    lines = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    for e in summary:
        tag = f"{e['env']}/{e['oracle']}/{e['labels']} labels/{e['steps']} steps"
        if e["env"] == "CartPole" and e["labels"] <= 100 and e["steps"] <= 100_000:
            goal = {"oracle": 475.0, "mistake": 450.0}.get(e["oracle"])
            if goal is not None:
                ok = e["ours_return"] >= goal
                lines.append(
                    f"{verdict(ok)}  {tag}: median true return {e['ours_return']:.1f} >= {goal:g}"
                )
        if e["env"] in ("Pendulum", "Hopper") and e["labels"] <= 700:
            ok = e["score"] >= 0.9
            lines.append(
                f"{verdict(ok)}  {tag}: normalised return IQM {e['score']:.2f} "
                f"[{e['score_low']:.2f}, {e['score_high']:.2f}] >= 0.9"
            )
        ok = e["wall_ratio"] <= 1.3
        lines.append(
            f"{verdict(ok)}  {tag}: wall ratio IQM {e['wall_ratio']:.2f} "
            f"[{e['wall_ratio_low']:.2f}, {e['wall_ratio_high']:.2f}] <= 1.3 "
            f"(CPU-time ratio {e['cpu_ratio']:.2f})"
        )
        if math.isfinite(e["peer_score"]):
            ok = e["score"] >= e["peer_score"]
            lines.append(
                f"{verdict(ok)}  {tag}: normalised return IQM {e['score']:.2f} >= imitation's "
                f"{e['peer_score']:.2f}"
            )
    return lines


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    from prefgym.runs import pyplot, save_png

    plt = pyplot()
    labels = [f"{e['env']}\n{e['oracle']}\n{int(e['labels'])} labels" for e in summary]
    x = np.arange(len(summary))
    width = 0.38
    figure, axes = plt.subplots(2, 1, figsize=(max(6.0, 1.1 * len(summary) + 2), 7), sharex=True)
    panels = [
        ("score", "peer_score", "normalised return (IQM, 95% CI)"),
        ("wall_ratio", "peer_wall_ratio", "wall time / PPO-true (IQM, 95% CI)"),
    ]
    for axis, (ours, peer, title) in zip(axes, panels, strict=True):
        for offset, key, name in (
            (-width / 2, ours, "prefgym"),
            (width / 2, peer, "imitation 1.0.1"),
        ):
            values = np.array([e[key] for e in summary], dtype=float)
            errors = np.array(
                [
                    [e[key] - e[f"{key}_low"] for e in summary],
                    [e[f"{key}_high"] - e[key] for e in summary],
                ]
            )
            axis.bar(x + offset, values, width, yerr=np.nan_to_num(errors), capsize=3, label=name)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_ylabel(title, fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    axes[0].axhline(0.9, color="grey", linestyle="--", linewidth=0.8)
    axes[1].axhline(1.3, color="grey", linestyle="--", linewidth=0.8)
    axes[0].legend(loc="lower right", fontsize=8)
    seeds = sorted({e["seeds"] for e in summary})
    axes[0].set_title(f"Label efficiency over {', '.join(map(str, seeds))} seeds", fontsize=10)
    axes[1].set_xlabel("normalised return: improvement over random / PPO-true's", fontsize=8)
    axes[1].set_xticks(x, labels, fontsize=8)
    save_png(plt, figure, path)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def table(rows: list[dict[str, Any]]) -> str:
    columns = {
        "env": "env", "oracle": "oracle", "labels": "labels", "seed": "seed",
        "ours_return": "ours", "ppo_true_return": "PPO-true", "score": "score",
        "ours_wall_s": "ours s", "ppo_true_wall_s": "PPO s", "wall_ratio": "wall ratio",
        "cpu_ratio": "CPU ratio", "peer_return": "imitation", "peer_score": "imit. score",
    }  # fmt: skip
    return format_table(
        list(columns.values()), [[r.get(k, math.nan) for k in columns] for r in rows]
    )


def _ci(entry: dict[str, Any], key: str) -> str:
    if not math.isfinite(entry[key]):
        return "-"
    return f"{entry[key]:.2f} [{entry[f'{key}_low']:.2f}, {entry[f'{key}_high']:.2f}]"


def summary_table(summary: list[dict[str, Any]]) -> str:
    header = [
        "env", "oracle", "labels", "steps", "seeds", "normalised IQM [95% CI]", "ours median",
        "PPO-true median", "wall ratio IQM", "CPU ratio", "imitation IQM", "imit. wall ratio",
    ]  # fmt: skip
    rows = [
        [
            e["env"],
            e["oracle"],
            e["labels"],
            e["steps"],
            e["seeds"],
            _ci(e, "score"),
            e["ours_return"],
            e["ppo_true_return"],
            _ci(e, "wall_ratio"),
            e["cpu_ratio"],
            _ci(e, "peer_score"),
            e["peer_wall_ratio"],
        ]  # fmt: skip
        for e in summary
    ]
    return format_table(header, rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs", nargs="+", choices=list(ENV_IDS), default=list(ENV_IDS), metavar="ENV"
    )
    parser.add_argument("--oracles", nargs="+", default=list(ORACLES), metavar="ORACLE")
    parser.add_argument(
        "--labels", nargs="+", type=int, metavar="N", help="label budgets (default: per env)"
    )
    parser.add_argument("--steps", type=int, metavar="N", help="agent steps (default: per env)")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[10], metavar="N",
        help="one number: that many seeds from 0 (default 10); several: those seeds",
    )  # fmt: skip
    parser.add_argument(
        "--rollout-envs",
        type=int,
        default=TRAIN_DEFAULTS.rollout_envs,
        metavar="N",
        help="envs that roll out prefgym's initial segments together "
        f"(default: {TRAIN_DEFAULTS.rollout_envs}, prefgym's)",
    )
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run imitation's preference comparisons in benchmarks/.venv-imitation",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CartPole, oracle and mistake, 100 labels, 100k steps, 2 seeds",
    )
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--address", help="a Ray cluster to run on (default: a local Ray)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "label_efficiency")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.oracles, args.labels, args.steps = (
            ["CartPole"],
            ["oracle", "mistake"],
            None,
            None,
        )
        args.seeds = [2]
    args.seeds = list(range(args.seeds[0])) if len(args.seeds) == 1 else args.seeds
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prefgym.register_envs()
    for oracle in args.oracles:
        peer_teacher(oracle)  # fail early on a misspelt oracle
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sweeps = run_sweeps(args)
    rows = rows_of(sweeps)
    if args.peer:
        add_peers(rows, args.out / "imitation", args.num_cpus or os.cpu_count() or 1)
    print(f"\nran for {time.perf_counter() - started:.0f} s")
    if not rows:
        print("no preference trial has a finished baseline to compare with; see the sweeps above")
        return 1
    write_csv(args.out / "results.csv", rows, COLUMNS)
    summary = summarise(rows)
    write_csv(args.out / "summary.csv", summary, list(summary[0]))
    plot(summary, args.out / "label_efficiency.png")
    print(f"\nall runs:\n{table(rows)}")
    print(f"\nIQM over seeds with 95% stratified bootstrap CIs:\n{summary_table(summary)}")
    print("\ntargets:\n" + "\n".join(check_targets(summary)))
    errors = sorted({row["peer_error"] for row in rows if row["peer_error"]})
    if errors:
        print("\nimitation errors:\n" + "\n".join(errors))
    print(f"\nwrote {args.out / 'results.csv'}, summary.csv, label_efficiency.png")
    return 0


def peer_teacher(oracle: str) -> dict[str, float]:
    """The part of a B-Pref teacher that imitation's synthetic gatherer can express."""
    from prefgym.judges import parse_oracle

    teacher = parse_oracle(oracle)
    return {"beta": teacher.beta, "eps_mistake": teacher.eps_mistake}


def teacher_name(teacher: dict[str, float]) -> str:
    parts = [] if math.isinf(teacher["beta"]) else [f"beta={teacher['beta']:g}"]
    if teacher["eps_mistake"]:
        parts.append(f"eps={teacher['eps_mistake']:g}")
    return ",".join(parts) or "rational"


def ensure_peer_venv(log: Path) -> Path:
    """The imitation venv's python, creating or updating the venv first where it needs it."""
    python = PEER_VENV / "bin" / "python"
    wanted = json.dumps(PEER_PACKAGES)
    if python.exists() and PEER_STAMP.exists() and PEER_STAMP.read_text() == wanted:
        return python
    verb = "updating" if python.exists() else "creating"
    print(f"{verb} {PEER_VENV} (imitation 1.0.1); log in {log}", flush=True)
    with log.open("w") as out:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(PEER_VENV)], check=True, stdout=out, stderr=out
            )
        for packages in PEER_PACKAGES:
            subprocess.run(
                [str(python), "-m", "pip", "install", *packages],
                check=True,
                stdout=out,
                stderr=out,
            )
    PEER_STAMP.write_text(wanted)
    return python


def peer_schedule(steps: int, rollout: int, round_steps: int = ROUND_STEPS) -> tuple[int, int]:
    """imitation's ``(num_iterations, total_timesteps)`` that train PPO for as many steps as ours.

    SB3's ``learn(steps)`` runs whole rollouts of ``rollout`` steps (``n_steps * n_envs``), so
    prefgym and PPO-true train ``ceil(steps / rollout)`` rollouts. imitation trains its agent
    ``num_iterations + 1`` times for ``total_timesteps // num_iterations`` steps each, each time
    rounded up to whole rollouts: asked naively, it trained 1.7x our steps on Acrobot and
    Pendulum (172,032 against 102,400) and 1.25x on Hopper. Here every one of its trainings is
    a whole number of rollouts, and together they are exactly ours; the number of trainings
    is the divisor of our rollout count nearest to one per ``round_steps`` (plus one)."""
    rollouts = math.ceil(steps / rollout)
    wanted = round(steps / round_steps) + 1
    divisors = [c for c in range(2, rollouts + 1) if rollouts % c == 0] or [rollouts]
    trainings = min(divisors, key=lambda c: (abs(c - wanted), c))
    if trainings < 2:  # a single rollout: imitation still trains twice
        return 1, rollout
    iterations = trainings - 1
    return iterations, iterations * (rollouts // trainings) * rollout


def run_peer(
    env_id: str,
    labels: int,
    steps: int,
    seed: int,
    teacher: dict[str, float],
    work: Path,
    base_id: str | None = None,
) -> dict[str, Any]:
    """imitation's preference comparisons on the same task, in its own venv.

    ``base_id`` replaces the task's base (``PEER_BASE_IDS``) where imitation's
    gymnasium lacks it. The result holds the peer's own scores and the path of its
    trained policy's weights (``policy_path``)."""
    from prefgym.runs import agent_preset

    work.mkdir(parents=True, exist_ok=True)
    try:
        python = ensure_peer_venv(work / "venv-install.log")
    except (subprocess.CalledProcessError, OSError) as error:
        return {"error": f"could not create {PEER_VENV}: {error}"}
    ppo = asdict(agent_preset(env_id, "ppo"))
    iterations, peer_steps = peer_schedule(steps, int(ppo["n_steps"]) * int(ppo["n_envs"]))
    ppo["net_arch"] = list(ppo["net_arch"])
    name = f"{short_name(env_id)}-{teacher_name(teacher)}-{labels}-{steps}-s{seed}"
    spec_path, result_path, log_path, policy_path = (
        work / f"{name}.{ext}" for ext in ("spec.json", "json", "log", "policy.pt")
    )
    spec = {
        "env_id": env_id,
        "env_kwargs": {"base_id": base_id} if base_id else {},
        "policy_path": str(policy_path),
        "labels": labels,
        "steps": peer_steps,
        "seed": seed,
        "segment_length": SEGMENT_LENGTH,
        "iterations": iterations,
        "ppo": ppo,
        "teacher": teacher,
        "episodes": EPISODES,
        "eval_seed": EVAL_SEED,
    }
    text = json.dumps(spec, indent=2)
    if spec_path.exists() and spec_path.read_text() == text and result_path.exists():
        return json.loads(result_path.read_text()) | {"policy_path": str(policy_path)}  # resumed
    spec_path.write_text(text)
    result_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        done = subprocess.run(
            [str(python), str(PEER_SCRIPT), str(spec_path), str(result_path)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
            | {"OMP_NUM_THREADS": "1"},
        )
    if done.returncode != 0 or not result_path.exists():
        tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {done.returncode}: {tail[0]} (full log: {log_path})"}
    return json.loads(result_path.read_text()) | {"policy_path": str(policy_path)}


def rescore_peer(env_id: str, seed: int, policy_path: Path) -> tuple[float, float]:
    """The true return (mean, std) on ``env_id`` of a policy imitation trained elsewhere.

    The weights are loaded into prefgym's PPO with the same preset (the same policy
    network as the peer's) and scored by ``evaluate_true_return``, as prefgym's own."""
    import torch

    from prefgym.agents.sb3 import evaluate_true_return, make_agent, make_vec_env
    from prefgym.runs import agent_preset

    config = agent_preset(env_id, "ppo")
    venv = make_vec_env(env_id, config.n_envs, seed)
    model = make_agent(config, venv, seed)
    model.policy.load_state_dict(torch.load(policy_path, map_location="cpu"))
    mean, std, _ = evaluate_true_return(model, env_id, EPISODES, EVAL_SEED)
    venv.close()
    return mean, std


if __name__ == "__main__":
    sys.exit(main())
