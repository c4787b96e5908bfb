"""How a sweep scales: N equal trials on k CPUs against N/k times one trial run alone.

1. One trial alone: a fresh Python process runs one trial of the sweep's kind
   (``prefgym.sweeps`` ``run_trial``: train, then score), as a researcher running
   trials one after another by hand would; its wall time includes the process's
   start and imports.
2. The sweep: ``run_sweep`` of N trials (the same settings, seeds 0..N-1) on a
   local Ray with k CPUs, one CPU per trial, timed from the call (Ray's import and
   start included) to its return. Ray's start-up is the time from the call to the
   first trial's start.

It prints both, the ratio ``sweep / ((N / k) * one trial)`` (target <= 1.15) and
Ray's start-up (target <= 10 s), and writes ``scaling.json`` to ``--out``::

    OMP_NUM_THREADS=1 python benchmarks/sweep_scaling.py --trials 6 --cpus 2
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


class TimedLines(io.StringIO):
    """A progress stream that notes when each line arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        if text.strip():
            self.arrived.append((time.perf_counter(), text.strip()))
            print(text.strip(), flush=True)
        return super().write(text)


def spec(args: argparse.Namespace, seeds: Sequence[int]):  # type: ignore[no-untyped-def]
    from prefgym.sweeps import SweepSpec

    return SweepSpec(
        grid={"env_id": [args.env], "steps": [args.steps], "labels": [args.labels]},
        seeds=list(seeds),
        episodes=20,
    )


def one_trial(args: argparse.Namespace, out: Path) -> float:
    """Wall seconds of one trial run by itself in a fresh process."""
    from prefgym.sweeps import SweepDir

    sweep = SweepDir.create(out / "alone", spec(args, [0]))
    name = sweep.trials()[0].name
    code = (
        "from prefgym.sweeps._trial import run_trial\n"
        f"print(run_trial({str(sweep.path)!r}, {name!r}, lambda row: None))\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def the_sweep(args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """Wall seconds of the sweep of ``args.trials`` trials, and Ray's start-up."""
    from prefgym.sweeps import run_sweep

    lines = TimedLines()
    started = time.perf_counter()
    run_sweep(spec(args, range(args.trials)), out / "sweep", num_cpus=args.cpus, stream=lines)
    wall = time.perf_counter() - started
    first = next(t for t, line in lines.arrived if ": running" in line)
    return wall, first - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--env", default="prefgym/CartPole-v1")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sweep_scaling")
    args = parser.parse_args(argv)
    for earlier in ("alone", "sweep"):  # only what an earlier run of this script made
        shutil.rmtree(args.out / earlier, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    alone = one_trial(args, args.out)
    print(f"one trial alone: {alone:.1f} s", flush=True)
    wall, startup = the_sweep(args, args.out)
    ideal = args.trials / args.cpus * alone
    result = {
        "trials": args.trials,
        "cpus": args.cpus,
        "env": args.env,
        "steps": args.steps,
        "labels": args.labels,
        "one_trial_s": alone,
        "sweep_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "ray_startup_s": startup,
    }
    (args.out / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nsweep of {args.trials} trials on {args.cpus} CPUs: {wall:.1f} s; "
        f"(N/k) x one trial = {ideal:.1f} s; ratio {wall / ideal:.3f} (target <= 1.15)\n"
        f"Ray's start-up (call to the first trial's start): {startup:.1f} s (target <= 10 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
