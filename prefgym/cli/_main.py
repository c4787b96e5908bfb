"""The ``prefgym`` command: argument parsing and dispatch to :mod:`prefgym.runs`.

Parsing only: what a command does lives in ``prefgym.runs``; the options of
``prefgym train`` are generated from :class:`~prefgym.runs.config.TrainConfig`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import prefgym
from prefgym.cli._flags import FlagGroup, check_resume
from prefgym.cli._text import add_text_parser, run_text
from prefgym.envs.registration import ALL_ENVS
from prefgym.judges import describe_presets
from prefgym.runs.config import HUMAN, THREADS_VARIABLE, TrainConfig

TRAIN_FLAGS = FlagGroup(TrainConfig, names={"env_id": "env"})
"""The options of ``prefgym train``, one per :class:`TrainConfig` field."""


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

    train_parser = commands.add_parser("train", help="train an agent from preferences")
    train_parser.add_argument("--resume", metavar="RUN", help="carry on the run in RUN")
    train_parser.add_argument(
        "--out", metavar="DIR", help="run directory (default runs/<env>-<time>)"
    )
    TRAIN_FLAGS.add_to(train_parser)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``prefgym`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        from prefgym.runs import set_threads

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
    from prefgym.runs import (
        evaluate,
        format_table,
        is_text_run,
        label,
        report,
        resume,
        text_report,
        train,
    )

    if args.command == "train":
        chosen = TRAIN_FLAGS.given(args)
        if args.resume:
            check_resume(args, TRAIN_FLAGS.flags_given(args))
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
