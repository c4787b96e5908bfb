"""``prefgym sweep``: a grid of runs on Ray Tune, and ``prefgym sweep compare``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prefgym.cli._flags import FlagGroup
from prefgym.runs.config import TrainConfig
from prefgym.sweeps.config import SweepSpec

GRID_FLAGS = FlagGroup(TrainConfig, names={"env_id": "env"}, skip=frozenset({"seed", "reward"}))
"""One option per ``TrainConfig`` field, each taking the values to try (the true-reward
agent is ``--baseline``'s)."""
SPEC_FLAGS = FlagGroup(SweepSpec, skip=frozenset({"grid", "seeds", "kind"}))
"""The sweep's own settings: ``--baseline``, ``--cpus-per-trial``, ... (from ``SweepSpec``)."""


def add_sweep_parser(commands: Any) -> None:
    """``prefgym sweep`` and ``prefgym sweep compare``."""
    sweep = commands.add_parser(
        "sweep",
        help="run a grid of runs x seeds on Ray Tune (local, or a cluster with --address)",
        description=(
            "Every combination of the values given runs once per seed, each trial an ordinary "
            "run directory under OUT/trials/. `prefgym report OUT` prints the statistics."
        ),
    )
    sweep.add_argument("--out", metavar="DIR", help="the sweep directory")
    sweep.add_argument("--resume", metavar="DIR", help="carry on the sweep in DIR")
    sweep.add_argument("--file", metavar="GRID", help="a TOML or YAML grid file (see README)")
    sweep.add_argument("--text", action="store_true", help="a sweep of text runs")
    sweep.add_argument(
        "--grid",
        nargs="+",
        metavar="FIELD=V1,V2",
        help="any settings field (nested text fields dotted: ppo.lr=1e-5,3e-5)",
    )
    sweep.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: seed 0 only)")
    sweep.add_argument("--seed-list", type=int, nargs="+", metavar="SEED", help="these seeds")
    SPEC_FLAGS.add_to(sweep)
    sweep.add_argument(
        "--address", help="a Ray cluster (HOST:PORT or ray://HOST:PORT; default $RAY_ADDRESS)"
    )
    sweep.add_argument("--num-cpus", type=int, help="CPUs of a local Ray (default: all)")
    GRID_FLAGS.add_to(sweep.add_argument_group("grid (one or more values each)"), many=True)
    sweep.set_defaults(handler=_sweep)
    actions = sweep.add_subparsers(dest="sweep_command", metavar="compare", required=False)
    compare = actions.add_parser(
        "compare", help="probability of improvement of configuration A over B"
    )
    compare.add_argument(
        "a", metavar="A", help="SWEEP[:field=value,...], e.g. sweeps/cp:oracle=mistake"
    )
    compare.add_argument("b", metavar="B", help="the same for B (another sweep, or the same one)")
    compare.set_defaults(handler=_compare)


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The sweep a command line describes: the grid file, then the options over it."""
    from prefgym.schema import from_json
    from prefgym.sweeps import read_grid_file, seed_list
    from prefgym.sweeps.config import parse_value, split_values

    settings: dict[str, Any] = read_grid_file(args.file) if args.file else {}
    grid: dict[str, list[Any]] = dict(settings.pop("grid", {}))
    grid.update(GRID_FLAGS.given(args))
    for item in args.grid or []:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise ValueError(f"--grid {item!r} is not FIELD=V1,V2 (e.g. --grid members=3,5)")
        grid[name] = [parse_value(v) for v in split_values(values)]
    if args.text:
        settings["kind"] = "text"
    if args.seeds is not None and args.seed_list:
        raise ValueError("give --seeds N or --seed-list S ..., not both")
    if args.seeds is not None:
        settings["seeds"] = seed_list(args.seeds)
    elif args.seed_list:
        settings["seeds"] = seed_list(args.seed_list)
    settings.update(SPEC_FLAGS.given(args))
    document = {**SweepSpec().to_json(), **settings, "grid": grid}
    where = f"grid file {args.file}" if args.file else "the sweep"
    return from_json(SweepSpec, document, where)  # every value checked for its type


def _sweep(args: argparse.Namespace) -> int:
    from prefgym.sweeps import resume_sweep, run_sweep, sweep_report

    if args.resume:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("out", "file", "grid", "seeds", "seed_list")
            if getattr(args, name) is not None
        ]
        given += GRID_FLAGS.flags_given(args) + SPEC_FLAGS.flags_given(args)
        given += ["--text"] if args.text else []
        if given:
            raise ValueError(
                f"--resume takes the grid from {args.resume}/sweep.json; drop " + ", ".join(given)
            )
        sweep = resume_sweep(args.resume, address=args.address, num_cpus=args.num_cpus)
    else:
        if not args.out:
            raise ValueError("a new sweep needs --out DIR (or --resume DIR to carry one on)")
        spec = spec_from_args(args)
        sweep = run_sweep(spec, args.out, address=args.address, num_cpus=args.num_cpus)
    print(sweep_report(sweep.path))
    failed = [t.name for t in sweep.trials() if sweep.result(t.name) is None]
    if failed:
        print(
            f"prefgym: error: {len(failed)} trial(s) did not finish ({', '.join(failed[:3])}"
            f"{', ...' if len(failed) > 3 else ''}); see their errors above and carry on with "
            f"`prefgym sweep --resume {sweep.path}`",
            file=sys.stderr,
        )
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    from prefgym.sweeps import compare

    print(compare(args.a, args.b))
    return 0
