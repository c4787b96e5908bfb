"""The ``prefgym`` command line and the Python API it wraps: train, evaluate, report.

This is the one module that wires the parts together: environments, the
preference store, an oracle (or a person), the reward model and its learner,
the Christiano loop, and a Stable-Baselines3 agent.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import numpy as np

import prefgym
from prefgym.cli._text import add_text_parser, is_text_run, run_text, text_report
from prefgym.envs.registration import ALL_ENVS, ENVS
from prefgym.judges import describe_presets, parse_oracle
from prefgym.runs import RunDir

THREADS_VARIABLE = "PREFGYM_THREADS"
"""Environment variable with the number of torch threads (default 1: small networks
run 10-100x slower with more threads on small machines)."""

HUMAN = "human"
"""The ``--oracle`` value that leaves the judging to a person in the labeling window."""

Selection = Literal["uniform", "disagreement", "entropy"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; written to the run's ``config.json``."""

    env_id: str = "prefgym/CartPole-v1"
    """A registered ``prefgym/`` environment."""
    oracle: str = "oracle"
    """Who judges: a simulated teacher (a preset such as ``mistake``, combinations such as
    ``stoc+myopic``, overrides such as ``mistake,eps_mistake=0.2``) or ``human``."""
    labels: int = 100
    """Label budget."""
    steps: int = 50_000
    """Agent environment steps."""
    seed: int = 0
    """Seeds the envs, networks, query selection and the oracle."""
    algo: Literal["ppo", "sac"] = "ppo"
    """The agent: PPO (any action space) or SAC (continuous actions)."""
    segment_length: int = 25
    """Steps per segment shown to the judge."""
    selection: Selection = "disagreement"
    """How query pairs are chosen: ``uniform``, ensemble ``disagreement`` or ``entropy``."""
    round_steps: int = 5_000
    """Agent steps between two refits of the reward model."""
    initial_fraction: float = 0.25
    """Share of the labels asked about the initial (untrained) policy."""
    label_t0: float | None = None
    """Decay constant T0 of the label rate, which is proportional to T0 / (T + T0) after T agent
    steps (default: Christiano et al.'s 5e6 for the Atari envs, steps / 5 for the others)."""
    members: int = 3
    """Reward-model ensemble size."""
    labeler: str = "person"
    """The person's id recorded with their judgments (``--oracle human``)."""
    rollout_envs: int = 4
    """Envs stepped together when rolling out the initial policy's segments: more is faster, and
    changes the run's random stream."""

    def __post_init__(self) -> None:
        check_env_id(self.env_id)
        if self.oracle != HUMAN:
            parse_oracle(self.oracle)
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"algo must be 'ppo' or 'sac', got {self.algo!r}")
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        self.loop_config()  # checks labels, steps, segment length, selection, ...

    def loop_config(self) -> Any:
        """The loop's settings."""
        from prefgym.loop import LoopConfig

        return LoopConfig(
            labels=self.labels,
            steps=self.steps,
            segment_length=self.segment_length,
            initial_fraction=self.initial_fraction,
            label_t0=self.label_t0 if self.label_t0 is not None else default_label_t0(self.env_id),
            round_steps=self.round_steps,
            selection=self.selection,
            rollout_envs=self.rollout_envs,
            keep_frames=self.oracle == HUMAN,  # a person watches clips, not numbers
        )


def check_env_id(env_id: str) -> None:
    """Raise a ValueError naming ``env_id`` and the closest registered ids if it is unknown."""
    ids = [e.id for e in ENVS]
    if env_id in ids:
        return
    if env_id in {e.id for e in ALL_ENVS}:
        raise ValueError(
            f"{env_id!r} is a text game; train it with `prefgym text train --env {env_id}`"
        )
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown environment {env_id!r}.{hint} See `prefgym list-envs`.")


def default_label_t0(env_id: str) -> float | None:
    """The label schedule's ``T0`` for ``env_id`` when none is given.

    Christiano et al.'s :data:`~prefgym.loop._schedule.ATARI_T0` for the Atari (ALE) envs; None
    (the schedule's ``steps / 5``) for the others.
    """
    from prefgym.loop import ATARI_T0

    families = {e.id: e.family for e in ENVS}
    return float(ATARI_T0) if families.get(env_id) == "atari" else None


def set_threads(threads: int | None = None) -> int:
    """Set torch's thread count: ``threads``, else ``$PREFGYM_THREADS``, else 1."""
    import torch

    if threads is None:
        threads = int(os.environ.get(THREADS_VARIABLE, "1"))
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def train(
    config: TrainConfig, out: str | os.PathLike[str] | None = None, *, show_progress: bool = True
) -> RunDir:
    """Start a training run in ``out`` (default ``runs/<env>-<time>``) and run it to the end."""
    if out is None:
        name = config.env_id.split("/")[-1]
        out = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = RunDir.create(out, {"train": asdict(config), "prefgym": prefgym.__version__})
    _run(run, config, show_progress)
    return run


def resume(run_path: str | os.PathLike[str], *, show_progress: bool = True) -> RunDir:
    """Carry on a run from its store and checkpoints, after Ctrl-C or a crash."""
    run = RunDir.open(run_path)
    config = TrainConfig(**run.read_config()["train"])
    _run(run, config, show_progress)
    return run


def _run(run: RunDir, config: TrainConfig, show_progress: bool) -> None:
    import torch
    from tqdm import tqdm

    from prefgym.agents.sb3 import SB3Agent
    from prefgym.judges import SyntheticOracle
    from prefgym.loop import RoundResult, control_loop, describe
    from prefgym.reward import Learner, RewardEnsemble
    from prefgym.runs import MetricsLog, agent_preset, learner_preset, reward_model_preset
    from prefgym.store import PreferenceStore

    agent_config = replace(agent_preset(config.env_id, config.algo), algo=config.algo)
    store = PreferenceStore(run.store)
    round_index = int(store.get_meta("round", 0))
    rng = np.random.default_rng([config.seed, round_index])  # a resumed run draws afresh
    oracle = None
    if config.oracle != HUMAN:
        oracle = SyntheticOracle(parse_oracle(config.oracle), config.oracle, rng.spawn(1)[0])
    kwargs: dict[str, Any] = {
        "seed": config.seed + round_index,
        "segment_length": config.segment_length,
    }
    if run.agent.exists():
        agent = SB3Agent.load(run.agent, config.env_id, agent_config, **kwargs)
    else:
        agent = SB3Agent.create(config.env_id, agent_config, **kwargs)
    if (run.reward_model / "reward_model.json").exists():
        ensemble = RewardEnsemble.load(run.reward_model)
    else:
        generator = torch.Generator().manual_seed(config.seed)
        env = agent.envs
        ensemble = RewardEnsemble(
            env.observation_space,
            env.action_space,
            reward_model_preset(config.env_id, config.members),
            generator=generator,
        )
    learner = Learner(learner_preset(config.env_id))
    metrics = MetricsLog(run.metrics, run.tensorboard)
    bar = tqdm(
        total=config.steps,
        initial=min(agent.steps, config.steps),
        unit="step",
        desc=config.env_id,
        disable=not show_progress,
        dynamic_ncols=True,
    )

    def on_round(result: RoundResult) -> None:
        metrics.write(result.row(), result.step)
        agent.save(run.agent)
        ensemble.save(run.reward_model)
        bar.set_postfix(describe(result), refresh=False)

    def progress(steps: int) -> None:
        bar.update(min(steps, config.steps - bar.n))

    loop = control_loop(
        env_id=config.env_id,
        agent=agent,
        ensemble=ensemble,
        learner=learner,
        store=store,
        oracle=oracle,
        config=config.loop_config(),
        rng=rng,
        on_round=on_round,
        progress=progress,
    )
    try:
        loop.run()
        agent.save(run.agent)
        ensemble.save(run.reward_model)
    finally:
        bar.close()
        metrics.close()
        store.close()


def evaluate(
    run_path: str | os.PathLike[str] | RunDir, *, episodes: int = 20, seed: int = 10_000
) -> dict[str, float]:
    """True return of the run's trained (deterministic) policy over fresh episodes."""
    from stable_baselines3 import PPO, SAC

    from prefgym.agents.sb3 import evaluate_true_return
    from prefgym.runs import agent_preset

    run = run_path if isinstance(run_path, RunDir) else RunDir.open(run_path)
    config = TrainConfig(**run.read_config()["train"])
    if not run.agent.exists():
        raise FileNotFoundError(f"{run.agent} does not exist: the run has not finished a round yet")
    algorithm = PPO if config.algo == "ppo" else SAC
    model = algorithm.load(str(run.agent), device=agent_preset(config.env_id, config.algo).device)
    mean, std, _ = evaluate_true_return(model, config.env_id, episodes, seed)
    return {"episodes": episodes, "true_return_mean": mean, "true_return_std": std}


def report(run_path: str | os.PathLike[str] | RunDir) -> str:
    """Redraw the run's plots and return its tables as text."""
    from prefgym.runs import format_table, labeler_table, plot_metrics, read_metrics
    from prefgym.store import PreferenceStore

    run = run_path if isinstance(run_path, RunDir) else RunDir.open(run_path)
    config = run.read_config()["train"]
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
    text = [
        f"run {run.path}: {config['env_id']}, oracle {config['oracle']!r}, "
        f"{config['labels']} labels, {config['steps']} steps, seed {config['seed']}",
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
    if run.store.exists():
        with PreferenceStore(run.store) as store:
            header, table = labeler_table(store)
        if table:
            text += ["", format_table(header, table)]
    return "\n".join(text)


def label(
    run_path: str | os.PathLike[str],
    *,
    labeler: str | None = None,
    lease: float = 300.0,
    fps: float | None = None,
    speed: float = 1.0,
    rejudge: bool = False,
) -> Any:
    """Open the labeling window on a run's store (``RUN/store.sqlite``) until the person quits.

    A text run (``prefgym text train``) works too: its oracle judges every query
    as it is asked, so the window shows the pairs that others judged (``rejudge``)
    and the run's label budget is not shown.

    Args:
        run_path: A run directory, or a store file.
        labeler: The person's id (default: the run's ``labeler`` setting, else ``person``).
        lease: Seconds a pair on screen stays reserved for this window.
        fps: Playback rate at speed 1 (default: the environment's ``render_fps``).
        speed: Initial playback speed.
        rejudge: Also show pairs that others judged (for agreement); always on for a text run.

    Returns:
        The window's ``prefgym.label._window.WindowSummary``.
    """
    from prefgym.label import run_window
    from prefgym.store import PreferenceStore

    path = Path(run_path)
    budget = None
    if path.is_dir():
        run = RunDir.open(path)
        config = run.read_config()
        text = "text" in config and "train" not in config
        settings = config.get("train", {})
        budget = settings.get("labels")
        labeler = labeler or settings.get("labeler")
        rejudge = rejudge or text
        path = run.store
        if not path.exists():
            start = "text train" if text else f"train --oracle {HUMAN}"
            raise FileNotFoundError(
                f"{path} does not exist yet: the run has asked nothing; start it with "
                f"`prefgym {start} --out {run.path}`"
            )
    elif not path.is_file():
        raise FileNotFoundError(
            f"{path} is neither a run directory nor a store file; give the --out of "
            f"`prefgym train --oracle {HUMAN}`"
        )
    with PreferenceStore(path) as store:
        return run_window(
            store,
            labeler or TrainConfig.labeler,
            budget=budget,
            lease_seconds=lease,
            fps=fps,
            speed=speed,
            rejudge=rejudge,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefgym",
        description="Reinforcement learning from preferences: train agents from judgments.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch threads (default ${THREADS_VARIABLE} or 1; more is slower for small nets)",
    )
    parser.add_argument("--version", action="version", version=f"prefgym {prefgym.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    defaults = TrainConfig()
    docs = _field_docs()
    hints = get_type_hints(TrainConfig)
    train_parser = commands.add_parser("train", help="train an agent from preferences")
    train_parser.add_argument("--resume", metavar="RUN", help="carry on the run in RUN")
    train_parser.add_argument(
        "--out", metavar="DIR", help="run directory (default runs/<env>-<time>)"
    )
    for field in fields(TrainConfig):
        flag = "--" + ("env" if field.name == "env_id" else field.name.replace("_", "-"))
        default = getattr(defaults, field.name)
        if default is None:  # ``X | None``: the option takes an X; the docstring tells the default
            kind = next(a for a in get_args(hints[field.name]) if a is not type(None))
            help_text = docs.get(field.name, "")
        else:
            kind = type(default) if not isinstance(default, bool) else str
            help_text = f"{docs.get(field.name, '')} (default: {default})"
        train_parser.add_argument(flag, dest=field.name, type=kind, default=None, help=help_text)
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")

    eval_parser = commands.add_parser("eval", help="true return of a run's trained policy")
    eval_parser.add_argument("run", metavar="RUN", help="a run directory")
    eval_parser.add_argument("--episodes", type=int, default=20, help="episodes (default: 20)")
    eval_parser.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")

    report_parser = commands.add_parser("report", help="tables in the terminal, plots as PNG")
    report_parser.add_argument("run", metavar="RUN", help="a run directory")

    label_parser = commands.add_parser(
        "label", help="judge a run's pairs in a window (for --oracle human)"
    )
    label_parser.add_argument("run", metavar="RUN", help="a run directory (or its store file)")
    label_parser.add_argument(
        "--labeler", metavar="NAME", help="your id, stored with each judgment (default: the run's)"
    )
    label_parser.add_argument(
        "--lease",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="how long a pair on screen stays reserved for this window (default: 300)",
    )
    label_parser.add_argument(
        "--fps", type=float, default=None, help="playback rate (default: the env's render_fps)"
    )
    label_parser.add_argument(
        "--speed", type=float, default=1.0, help="initial playback speed (default: 1)"
    )
    label_parser.add_argument(
        "--rejudge",
        action="store_true",
        help="also show pairs others judged, to measure agreement",
    )

    commands.add_parser("list-envs", help="the registered environments")
    commands.add_parser("list-oracles", help="the simulated teachers' presets")
    add_text_parser(commands)
    return parser


def _field_docs() -> dict[str, str]:
    """The docstrings of TrainConfig's fields, read from the source, for --help."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(TrainConfig)))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``prefgym`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        set_threads(args.threads)
        return _dispatch(args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        parser.exit(2, f"prefgym: error: {error}\n")
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every judgment so far is stored; carry on with "
            "`prefgym train --resume RUN` (`prefgym text train --resume RUN` for text)",
            file=sys.stderr,
        )
        return 130
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    from prefgym.runs import format_table

    if args.command == "train":
        chosen = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
        chosen = {k: v for k, v in chosen.items() if v is not None}
        if args.resume:
            if chosen or args.out:
                raise ValueError(
                    f"--resume takes its settings from {args.resume}/config.json; drop "
                    + ", ".join(
                        "--" + k.replace("_", "-")
                        for k in [*chosen, *(["out"] if args.out else [])]
                    )
                )
            run = resume(args.resume, show_progress=not args.quiet)
        else:
            run = train(TrainConfig(**chosen), args.out, show_progress=not args.quiet)
        print(report(run))
        result = evaluate(run, episodes=10)
        print(
            f"\ntrue return of the trained policy over {result['episodes']} episodes: "
            f"{result['true_return_mean']:.1f} ± {result['true_return_std']:.1f}"
        )
        print(f"run directory: {run.path}")
    elif args.command == "eval":
        result = evaluate(args.run, episodes=args.episodes, seed=args.seed)
        print(
            format_table(
                ["episodes", "true return mean", "std"],
                [[result["episodes"], result["true_return_mean"], result["true_return_std"]]],
            )
        )
    elif args.command == "report":
        print(text_report(args.run) if is_text_run(args.run) else report(args.run))
    elif args.command == "text":
        return run_text(args)
    elif args.command == "label":
        from prefgym.label import describe_summary

        summary = label(
            args.run,
            labeler=args.labeler,
            lease=args.lease,
            fps=args.fps,
            speed=args.speed,
            rejudge=args.rejudge,
        )
        print(describe_summary(summary))
    elif args.command == "list-envs":
        rows = [
            [e.id, e.family, e.horizon, e.kwargs.get("termination", ""), e.extra or ""]
            for e in ALL_ENVS
        ]
        print(format_table(["id", "family", "horizon", "termination", "extra"], rows))
        print("\ntext envs train with `prefgym text train --env ID`")
    elif args.command == "list-oracles":
        print(format_table(["oracle", "what it does"], describe_presets()))
        print(
            f"\ncombine with '+' (stoc+myopic) and override fields (mistake,eps_mistake=0.2); "
            f"'{HUMAN}' waits for a person's judgments"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
