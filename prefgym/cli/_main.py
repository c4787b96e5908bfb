"""The ``prefgym`` command: argument parsing and dispatch to :mod:`prefgym.runs`.

Parsing only: what a command does lives in ``prefgym.runs``; the options of
``prefgym train`` are generated from :class:`~prefgym.runs.config.TrainConfig`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

import prefgym
from prefgym.cli._errors import DEBUG_VARIABLE, describe_failure
from prefgym.cli._flags import (
    FlagGroup,
    add_max_wait,
    check_resume,
    finished_before,
    max_wait_of,
)
from prefgym.cli._sweep import add_sweep_parser
from prefgym.cli._text import add_text_parser
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
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error (also ${DEBUG_VARIABLE}=1)",
    )
    parser.add_argument("--version", action="version", version=f"prefgym {prefgym.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_train,
        _add_eval,
        _add_report,
        _add_label,
        _add_convert,
        _add_lists,
        add_text_parser,
        add_sweep_parser,
    ):
        add(commands)
    return parser


def _add_train(commands: Any) -> None:
    train = commands.add_parser("train", help="train an agent from preferences")
    train.add_argument("--resume", metavar="RUN", help="carry on the run in RUN")
    train.add_argument("--out", metavar="DIR", help="run directory (default runs/<env>-<time>)")
    TRAIN_FLAGS.add_to(train)
    add_max_wait(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)


def _add_eval(commands: Any) -> None:
    from prefgym.runs import evaluate as run

    evaluate = commands.add_parser("eval", help="true return of a run's trained policy")
    evaluate.add_argument("run", metavar="RUN", help="a run directory")
    _keyword(evaluate, run, "episodes", int, "episodes")
    _keyword(evaluate, run, "seed", int, "seed of the first episode")
    evaluate.set_defaults(handler=_eval)


def _keyword(parser: Any, function: Any, name: str, kind: type, help_text: str) -> None:
    """An option for ``function``'s keyword ``name``; its default is the function's own."""
    default = inspect.signature(function).parameters[name].default
    shown = "" if default is None else f" (default: {default})"
    parser.add_argument(f"--{name}", type=kind, default=None, help=help_text + shown)


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` that were given (the others keep the function's default)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="tables in the terminal, plots as PNG")
    report.add_argument("run", metavar="RUN", help="a run directory, or a sweep directory")
    report.set_defaults(handler=_report)


def _add_label(commands: Any) -> None:
    from prefgym.label import DEFAULT_SIZE, MIN_SIZE
    from prefgym.runs import label as run

    label = commands.add_parser(
        "label", help="judge a run's pairs in a window (for --oracle human)"
    )
    label.add_argument("run", metavar="RUN", help="a run directory (or its store file)")
    label.add_argument(
        "--labeler", metavar="NAME", help="your id, stored with each judgment (default: the run's)"
    )
    _keyword(label, run, "lease", float, "seconds a pair on screen stays reserved for this window")
    _keyword(label, run, "fps", float, "playback rate (default: the env's render_fps)")
    _keyword(label, run, "speed", float, "initial playback speed")
    label.add_argument(
        "--rejudge", action="store_true", help="also show pairs others judged, to measure agreement"
    )
    width, height = DEFAULT_SIZE
    least_width, least_height = MIN_SIZE
    label.add_argument(
        "--size",
        metavar="WxH",
        help=f"window size in pixels, at least {least_width}x{least_height} "
        f"(default: {width}x{height}; the window can be resized)",
    )
    label.add_argument(
        "--instructions",
        metavar="TEXT",
        help="what 'better' means, shown above the clips (default: the task's own criterion)",
    )
    label.set_defaults(handler=_label)


def _add_convert(commands: Any) -> None:
    convert = commands.add_parser(
        "convert", help="move a run of an earlier release off Stable-Baselines3's pickles"
    )
    convert.add_argument("run", metavar="RUN", help="a run directory holding agent.zip")
    convert.add_argument(
        "--trust",
        action="store_true",
        help="required: reading agent.zip unpickles it, which runs any code its maker put in",
    )
    convert.set_defaults(handler=_convert)


def _add_lists(commands: Any) -> None:
    commands.add_parser("list-envs", help="the registered environments").set_defaults(
        handler=_list_envs
    )
    commands.add_parser("list-oracles", help="the simulated teachers' presets").set_defaults(
        handler=_list_oracles
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``prefgym`` command; returns the exit status.

    0: done. 2: bad input (a value, a file, a run directory), with a one-line
    ``prefgym: error: ...`` that names it and the way out. 1: anything else that
    failed, also in one line. 130: Ctrl-C. ``--debug`` (or ``PREFGYM_DEBUG=1``)
    shows the traceback instead.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        from prefgym.runs import set_threads

        set_threads(args.threads)
        return int(args.handler(args))
    except KeyboardInterrupt:
        if args.command == "sweep":
            print(
                "\ninterrupted: finished trials keep their results; carry on with "
                f"`prefgym sweep --resume {args.resume or args.out or 'DIR'}`",
                file=sys.stderr,
            )
            return 130
        print(
            "\ninterrupted: every judgment so far is stored; carry on with "
            "`prefgym train --resume RUN` (`prefgym text train --resume RUN` for text)",
            file=sys.stderr,
        )
        return 130
    except Exception as error:
        if debug:
            raise
        run = getattr(args, "run", None) or getattr(args, "resume", None)
        status, message = describe_failure(error, run)
        print(f"prefgym: error: {message}", file=sys.stderr)
        return status


def _train(args: argparse.Namespace) -> int:
    from prefgym.runs import evaluate, report, resume, train

    if args.resume:
        check_resume(args, TRAIN_FLAGS.flags_given(args))
        if finished_before(args.resume):
            return 0
        run = resume(args.resume, show_progress=not args.quiet, max_wait=max_wait_of(args))
    else:
        config = TrainConfig(**TRAIN_FLAGS.given(args))
        run = train(config, args.out, show_progress=not args.quiet, max_wait=max_wait_of(args))
    print(report(run))
    result = evaluate(run, episodes=10)
    print(
        f"\ntrue return of the trained policy over {result['episodes']} episodes: "
        f"{result['true_return_mean']:.1f} ± {result['true_return_std']:.1f}"
    )
    print(f"run directory: {run.path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from prefgym.runs import evaluate, format_table

    result = evaluate(args.run, **_given(args, "episodes", "seed"))
    row = [result["episodes"], result["true_return_mean"], result["true_return_std"]]
    print(format_table(["episodes", "true return mean", "std"], [row]))
    return 0


def _report(args: argparse.Namespace) -> int:
    from prefgym.runs import is_text_run, report, text_report
    from prefgym.sweeps import is_sweep, sweep_report

    if is_sweep(args.run):
        print(sweep_report(args.run))
    else:
        print(text_report(args.run) if is_text_run(args.run) else report(args.run))
    return 0


def _label(args: argparse.Namespace) -> int:
    from prefgym.label import describe_summary, parse_size
    from prefgym.runs import label

    options = _given(args, "labeler", "lease", "fps", "speed", "instructions")
    if args.size is not None:
        options["size"] = parse_size(args.size)
    summary = label(args.run, rejudge=args.rejudge, **options)
    print(describe_summary(summary))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from prefgym.runs import convert_run

    if not args.trust:
        raise ValueError(
            f"converting reads {args.run}/agent.zip with pickle, which runs any code its maker "
            "put in; if you trust whoever made the run, add --trust"
        )
    run = convert_run(args.run)
    print(f"converted {run.legacy_agent} to {run.agent}/; the zip is now agent.zip.converted")
    return 0


def _list_envs(args: argparse.Namespace) -> int:
    from prefgym.runs import format_table

    rows = [
        [e.id, e.family, e.horizon, e.kwargs.get("termination", ""), e.extra or ""]
        for e in ALL_ENVS
    ]
    print(format_table(["id", "family", "horizon", "termination", "extra"], rows))
    print("\ntext envs train with `prefgym text train --env ID`")
    return 0


def _list_oracles(args: argparse.Namespace) -> int:
    from prefgym.runs import format_table

    print(format_table(["oracle", "what it does"], describe_presets()))
    print(
        f"\ncombine with '+' (stoc+myopic) and override fields (mistake,eps_mistake=0.2); "
        f"'{HUMAN}' waits for a person's judgments"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
