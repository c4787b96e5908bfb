"""Label efficiency: preference-trained PPO against PPO on the true reward, and against imitation.

For each task, simulated teacher (B-Pref preset), label budget and seed this
trains prefgym's preference loop (``prefgym.runs.train``) and measures

* the true return of the trained policy (deterministic, 20 episodes),
* the same for SB3 PPO with the same preset, seed and steps trained on the
  task's true reward (the "PPO-true" baseline), and the ratio of the two;
  for tasks whose returns are negative (Acrobot, Pendulum) the ratio is of the
  improvement over a uniformly random policy, ``(ours - random) / (ppo - random)``,
* the wall time of both trainings and their ratio, and the same for their CPU time
  (``time.process_time``; one torch thread, so it leaves out waits for a core that
  another job holds; with two runs on two cores it matched the wall time within 1%),
* optionally the same task with the ``imitation`` library's preference
  comparisons (same env, label budget, agent steps, PPO preset, segment length),
  run by ``benchmarks/imitation_peer.py`` in a virtual environment this script
  creates (``benchmarks/.venv-imitation``, reused when present); on Hopper,
  whose v5 imitation's gymnasium 0.29 lacks, the peer trains on Hopper-v4 and
  its policy is scored on prefgym's Hopper-v5 like ours (``PEER_BASE_IDS``).

It prints a table per run and a summary (medians over runs) with the
targets, and writes ``results.csv``, ``summary.csv`` and ``label_efficiency.png``
to ``--out``. Examples::

    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --quick
    OMP_NUM_THREADS=1 python benchmarks/label_efficiency.py --envs CartPole --seeds 0 1 2
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
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import prefgym
from prefgym.agents.sb3 import TrueRewardVecEnv
from prefgym.runs import TrainConfig, format_table

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
RANDOM_NORMALISED = {"Acrobot", "Pendulum"}
"""Tasks whose return ratio is taken over the improvement on a random policy."""
TRAIN_DEFAULTS = TrainConfig()
ORACLES = ("oracle", "stoc", "mistake", "skip", "equal", "myopic")
EPISODES = 20
EVAL_SEED = 10_000
SEGMENT_LENGTH = 25
ROUND_STEPS = 5_000
"""prefgym's refit cadence (``TrainConfig.round_steps``); imitation gets about as many
iterations (``peer_schedule``)."""

COLUMNS = [
    "env",
    "oracle",
    "labels",
    "steps",
    "seed",
    "rollout_envs",
    "ours_return",
    "ours_return_std",
    "ppo_true_return",
    "random_return",
    "ratio_basis",
    "return_ratio",
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
    "peer_return_ratio",
    "peer_wall_s",
    "peer_wall_ratio",
    "peer_cpu_s",
    "peer_cpu_ratio",
    "peer_steps",
    "peer_error",
]


def short_name(env_id: str) -> str:
    return env_id.split("/")[-1].split("-")[0]


def ratio(value: float, reference: float, random: float, basis: str) -> float:
    if basis == "vs random":
        value, reference = value - random, reference - random
    return value / reference if reference > 0 else math.nan


def random_return(env_id: str, episodes: int = EPISODES, seed: int = EVAL_SEED) -> float:
    """Mean true return of uniformly random actions, scored like the policies."""
    import gymnasium as gym

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


@dataclass(frozen=True)
class Timing:
    """How long a training took."""

    wall_s: float
    cpu_s: float
    """CPU seconds of this process (``time.process_time``)."""


def timer() -> Callable[[], Timing]:
    """Start timing; call the result to read the time since."""
    wall, cpu = time.perf_counter(), time.process_time()
    return lambda: Timing(time.perf_counter() - wall, time.process_time() - cpu)


def run_ppo_true(env_id: str, steps: int, seed: int) -> tuple[float, Timing]:
    """PPO with prefgym's preset on the true reward: (true return, time of training)."""
    from prefgym.agents.sb3 import evaluate_true_return, make_agent, make_vec_env
    from prefgym.runs import agent_preset

    elapsed = timer()
    config = agent_preset(env_id, "ppo")
    venv = TrueRewardVecEnv(make_vec_env(env_id, config.n_envs, seed))
    model = make_agent(config, venv, seed)
    model.learn(steps)
    timing = elapsed()
    mean, _, _ = evaluate_true_return(model, env_id, EPISODES, EVAL_SEED)
    venv.close()
    return mean, timing


def warm_up(env_id: str) -> None:
    """Pay the process's one-time costs before anything is timed.

    The first torch optimiser a process builds imports ``torch._dynamo`` (about 1 s
    here); without this the first timed training, PPO-true's first seed, would carry it.
    """
    from prefgym.agents.sb3 import make_agent, make_vec_env
    from prefgym.runs import agent_preset

    config = agent_preset(env_id, "ppo")
    venv = make_vec_env(env_id, config.n_envs, 0)
    make_agent(config, venv, 0)
    venv.close()


def run_ours(
    env_id: str, oracle: str, labels: int, steps: int, seed: int, runs: Path, rollout_envs: int
) -> tuple[float, float, Timing]:
    """prefgym's preference loop: (true return mean, std, time of ``train``)."""
    from prefgym.runs import evaluate, train

    out = runs / f"{short_name(env_id)}-{oracle}-{labels}-{steps}-s{seed}"
    if out.exists():
        shutil.rmtree(out)
    config = TrainConfig(
        env_id=env_id,
        oracle=oracle,
        labels=labels,
        steps=steps,
        seed=seed,
        segment_length=SEGMENT_LENGTH,
        round_steps=ROUND_STEPS,
        rollout_envs=rollout_envs,
    )
    elapsed = timer()
    run = train(config, out, show_progress=False)
    timing = elapsed()
    result = evaluate(run, episodes=EPISODES, seed=EVAL_SEED)
    return result["true_return_mean"], result["true_return_std"], timing


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
    spec_path.write_text(json.dumps(spec, indent=2))
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


def median(values: Sequence[float]) -> float:
    kept = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over runs per (env, oracle, labels, steps, rollout envs).

    ``seeds`` counts the distinct seeds and ``runs`` the rows: a merge of two runs of the same
    seeds (prefgym repeats exactly; wall times and imitation do not) has more runs than seeds.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["env"], row["oracle"], row["labels"], row["steps"], row.get("rollout_envs", ""))
        groups.setdefault(key, []).append(row)
    numeric = [
        "ours_return",
        "ppo_true_return",
        "return_ratio",
        "ours_wall_s",
        "ppo_true_wall_s",
        "wall_ratio",
        "cpu_ratio",
        "peer_return",
        "peer_return_ratio",
        "peer_wall_s",
        "peer_wall_ratio",
        "peer_cpu_ratio",
    ]
    summary = []
    for (env, oracle, labels, steps, rollout_envs), members in groups.items():
        entry: dict[str, Any] = {
            "env": env,
            "oracle": oracle,
            "labels": labels,
            "steps": steps,
            "rollout_envs": rollout_envs,
            "seeds": len({m.get("seed") for m in members}),
            "runs": len(members),
            "ratio_basis": members[0]["ratio_basis"],
        }
        entry.update({key: median([m.get(key, math.nan) for m in members]) for key in numeric})
        summary.append(entry)
    return summary


def check_targets(summary: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, judged on the medians; 'n/a' where the grid does not cover one."""
    lines = []

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    for entry in summary:
        tag = f"{entry['env']}/{entry['oracle']}/{entry['labels']} labels/{entry['steps']} steps"
        if entry["env"] == "CartPole" and entry["labels"] <= 100 and entry["steps"] <= 100_000:
            goal = {"oracle": 475.0, "mistake": 450.0}.get(entry["oracle"])
            if goal is not None:
                ok = entry["ours_return"] >= goal
                lines.append(
                    f"{verdict(ok)}  {tag}: true return {entry['ours_return']:.1f} >= {goal:g}"
                )
        if entry["env"] in ("Pendulum", "Hopper") and entry["labels"] <= 700:
            ok = entry["return_ratio"] >= 0.9
            lines.append(f"{verdict(ok)}  {tag}: return ratio {entry['return_ratio']:.2f} >= 0.9")
        ok = entry["wall_ratio"] <= 1.3
        lines.append(
            f"{verdict(ok)}  {tag}: wall ratio {entry['wall_ratio']:.2f} <= 1.3 "
            f"(CPU-time ratio {entry['cpu_ratio']:.2f})"
        )
        if not math.isnan(entry["peer_return"]):
            ok = entry["ours_return"] >= entry["peer_return"]
            lines.append(
                f"{verdict(ok)}  {tag}: true return {entry['ours_return']:.1f} >= imitation's "
                f"{entry['peer_return']:.1f}"
            )
            ok = entry["ours_wall_s"] <= entry["peer_wall_s"]
            lines.append(
                f"{verdict(ok)}  {tag}: wall {entry['ours_wall_s']:.0f} s <= imitation's "
                f"{entry['peer_wall_s']:.0f} s"
            )
    return lines


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        f"{e['env']}\n{e['oracle']}\n{int(e['labels'])} labels"
        + (f"\n{e['rollout_envs']} init. envs" if e.get("rollout_envs", "") != "" else "")
        for e in summary
    ]
    x = np.arange(len(summary))
    width = 0.38
    figure, axes = plt.subplots(2, 1, figsize=(max(6.0, 1.1 * len(summary) + 2), 7), sharex=True)
    panels = [
        ("return_ratio", "peer_return_ratio", "true return / PPO-true"),
        ("wall_ratio", "peer_wall_ratio", "wall time / PPO-true"),
    ]
    for axis, (ours, peer, title) in zip(axes, panels, strict=True):
        axis.bar(x - width / 2, [e[ours] for e in summary], width, label="prefgym")
        axis.bar(x + width / 2, [e[peer] for e in summary], width, label="imitation 1.0.1")
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_ylabel(title)
        axis.grid(axis="y", alpha=0.3)
    axes[0].axhline(0.9, color="grey", linestyle="--", linewidth=0.8)
    axes[1].axhline(1.3, color="grey", linestyle="--", linewidth=0.8)
    axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_title("Label efficiency, medians over runs", fontsize=10)
    axes[1].set_xlabel(
        "Acrobot, Pendulum: ratio of the improvement over a random policy", fontsize=8
    )
    axes[1].set_xticks(x, labels, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def table(rows: list[dict[str, Any]]) -> str:
    header = [
        "env",
        "oracle",
        "labels",
        "steps",
        "seed",
        "ours",
        "PPO-true",
        "ratio",
        "ours s",
        "PPO s",
        "wall ratio",
        "CPU ratio",
        "imitation",
        "imit. ratio",
        "imit. s",
    ]
    keys = [
        "env",
        "oracle",
        "labels",
        "steps",
        "seed",
        "ours_return",
        "ppo_true_return",
        "return_ratio",
        "ours_wall_s",
        "ppo_true_wall_s",
        "wall_ratio",
        "cpu_ratio",
        "peer_return",
        "peer_return_ratio",
        "peer_wall_s",
    ]
    return format_table(header, [[row.get(k, math.nan) for k in keys] for row in rows])


def summary_table(summary: list[dict[str, Any]]) -> str:
    header = [
        "env",
        "oracle",
        "labels",
        "steps",
        "init. envs",
        "seeds",
        "runs",
        "ours",
        "PPO-true",
        "ratio",
        "basis",
        "wall ratio",
        "CPU ratio",
        "imitation",
        "imit. ratio",
        "imit. wall ratio",
        "imit. CPU ratio",
    ]
    keys = [
        "env",
        "oracle",
        "labels",
        "steps",
        "rollout_envs",
        "seeds",
        "runs",
        "ours_return",
        "ppo_true_return",
        "return_ratio",
        "ratio_basis",
        "wall_ratio",
        "cpu_ratio",
        "peer_return",
        "peer_return_ratio",
        "peer_wall_ratio",
        "peer_cpu_ratio",
    ]
    return format_table(header, [[entry[k] for k in keys] for entry in summary])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--envs", nargs="+", choices=list(ENV_IDS), default=list(ENV_IDS), metavar="ENV"
    )
    parser.add_argument("--oracles", nargs="+", default=list(ORACLES), metavar="ORACLE")
    parser.add_argument(
        "--labels", nargs="+", type=int, metavar="N", help="label budgets (default: per env)"
    )
    parser.add_argument(
        "--steps", nargs="+", type=int, metavar="N", help="agent steps (default: per env)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED")
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
        help="CartPole, oracle and mistake, 100 labels, 100k steps, seeds 0 1 (about 9 minutes)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "label_efficiency")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="CSV",
        help="run nothing: summarise the results.csv files of earlier runs (seeds run in "
        "parallel processes, say) into --out",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.oracles, args.labels, args.steps = (
            ["CartPole"],
            ["oracle", "mistake"],
            None,
            None,
        )
        args.seeds = [0, 1]
    return args


def read_results(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of earlier runs' ``results.csv`` files, with their numbers as numbers."""
    rows = []
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"--merge: {path} is not a file; pass the results.csv of a run")
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                typed: dict[str, Any] = dict(row)
                for key in ("labels", "steps", "seed"):
                    typed[key] = int(row[key])
                if row.get("rollout_envs"):  # runs made before it was recorded have none
                    typed["rollout_envs"] = int(row["rollout_envs"])
                for key in COLUMNS:
                    if key.endswith(("_return", "_ratio", "_s", "_std")) and key in row:
                        typed[key] = float(row[key]) if row[key] else math.nan
                rows.append(typed)
    return rows


def report(rows: list[dict[str, Any]], out: Path) -> None:
    """Write the summary and the plot, and print the tables and the targets."""
    summary = summarise(rows)
    write_csv(out / "summary.csv", summary, list(summary[0]))
    plot(summary, out / "label_efficiency.png")
    print(f"\nall runs:\n{table(rows)}")
    print(f"\nmedians over runs:\n{summary_table(summary)}")
    print("\ntargets:\n" + "\n".join(check_targets(summary)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        args.out.mkdir(parents=True, exist_ok=True)
        merged = read_results(args.merge)
        write_csv(args.out / "results.csv", merged, COLUMNS)
        report(merged, args.out)
        print(f"\nwrote {args.out / 'results.csv'}, summary.csv, label_efficiency.png")
        return 0
    from prefgym.runs import set_threads

    set_threads(1)
    prefgym.register_envs()
    for oracle in args.oracles:
        peer_teacher(oracle)  # fail early on a misspelt oracle
    args.out.mkdir(parents=True, exist_ok=True)
    runs, peer_work = args.out / "runs", args.out / "imitation"
    rows: list[dict[str, Any]] = []
    ppo_cache: dict[tuple[str, int, int], tuple[float, Timing]] = {}
    peer_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
    warm_up(ENV_IDS[args.envs[0]])
    started = time.perf_counter()
    for env in args.envs:
        env_id = ENV_IDS[env]
        basis = "vs random" if env in RANDOM_NORMALISED else "plain"
        base_id = PEER_BASE_IDS.get(env)
        random = random_return(env_id)
        print(f"{env}: random policy true return {random:.1f}", flush=True)
        for labels in args.labels or [DEFAULT_LABELS[env]]:
            for steps in args.steps or [DEFAULT_STEPS[env]]:
                for seed in args.seeds:
                    key = (env_id, steps, seed)
                    if key not in ppo_cache:
                        ppo_cache[key] = run_ppo_true(env_id, steps, seed)
                    ppo_return, ppo_time = ppo_cache[key]
                    for oracle in args.oracles:
                        mean, std, ours = run_ours(
                            env_id, oracle, labels, steps, seed, runs, args.rollout_envs
                        )
                        row: dict[str, Any] = {
                            "env": env,
                            "oracle": oracle,
                            "labels": labels,
                            "steps": steps,
                            "seed": seed,
                            "rollout_envs": args.rollout_envs,
                            "ours_return": mean,
                            "ours_return_std": std,
                            "ppo_true_return": ppo_return,
                            "random_return": random,
                            "ratio_basis": basis,
                            "return_ratio": ratio(mean, ppo_return, random, basis),
                            "ours_wall_s": ours.wall_s,
                            "ppo_true_wall_s": ppo_time.wall_s,
                            "wall_ratio": ours.wall_s / ppo_time.wall_s,
                            "ours_cpu_s": ours.cpu_s,
                            "ppo_true_cpu_s": ppo_time.cpu_s,
                            "cpu_ratio": ours.cpu_s / ppo_time.cpu_s,
                            "peer_teacher": "",
                            "peer_env": "",
                            "peer_return": math.nan,
                            "peer_return_peer_env": math.nan,
                            "peer_return_ratio": math.nan,
                            "peer_wall_s": math.nan,
                            "peer_wall_ratio": math.nan,
                            "peer_cpu_s": math.nan,
                            "peer_cpu_ratio": math.nan,
                            "peer_steps": "",
                            "peer_error": "",
                        }
                        if args.peer:
                            teacher = peer_teacher(oracle)
                            peer_key = (env_id, labels, steps, seed, teacher_name(teacher))
                            if peer_key not in peer_cache:
                                peer_cache[peer_key] = run_peer(
                                    env_id, labels, steps, seed, teacher, peer_work, base_id
                                )
                            peer = peer_cache[peer_key]
                            row["peer_teacher"] = teacher_name(teacher)
                            row["peer_env"] = base_id or ""
                            if "error" in peer:
                                row["peer_error"] = peer["error"]
                            else:
                                peer_return = peer["true_return_mean"]
                                row["peer_return_peer_env"] = peer_return
                                if base_id:
                                    peer_return, _ = rescore_peer(
                                        env_id, seed, Path(peer["policy_path"])
                                    )
                                row["peer_return"] = peer_return
                                row["peer_return_ratio"] = ratio(
                                    peer_return, ppo_return, random, basis
                                )
                                row["peer_wall_s"] = peer["wall_seconds"]
                                row["peer_wall_ratio"] = peer["wall_seconds"] / ppo_time.wall_s
                                row["peer_cpu_s"] = peer["cpu_seconds"]
                                row["peer_cpu_ratio"] = peer["cpu_seconds"] / ppo_time.cpu_s
                                row["peer_steps"] = peer["agent_steps"]
                        rows.append(row)
                        write_csv(args.out / "results.csv", rows, COLUMNS)
                        print(table([row]).splitlines()[-1], flush=True)
                        if row["peer_error"]:
                            print(f"  imitation failed: {row['peer_error']}", flush=True)
                        elif row["peer_env"]:
                            print(
                                f"  imitation trained on {row['peer_env']} (scored "
                                f"{row['peer_return_peer_env']:.1f} there), scored above on "
                                f"{env_id}",
                                flush=True,
                            )
    print(f"\nran for {time.perf_counter() - started:.0f} s")
    report(rows, args.out)
    errors = sorted({row["peer_error"] for row in rows if row["peer_error"]})
    if errors:
        print("\nimitation errors:\n" + "\n".join(errors))
    print(f"\nwrote {args.out / 'results.csv'}, summary.csv, label_efficiency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
