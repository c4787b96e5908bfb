"""Running a sweep's trials on Ray Tune: a local Ray by default, a cluster by address.

The driver starts (or joins) Ray, hands Tune the unfinished trials as a grid of
trial names, and prints one line whenever a trial changes state. Each trial runs
:func:`prefgym.sweeps._trial.run_trial` in a Ray worker with the CPUs (and GPUs)
the sweep asks for. A crashed trial is retried by Tune (``max_failures``) and
carries its run directory on. A sweep whose driver died is resumed by running a
new Tune experiment over the trials without a result: Tune's own restore would
unpickle ``tune/``, and nothing from disk is unpickled here.
"""

from __future__ import annotations

import importlib
import os
import secrets
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from prefgym.sweeps._sweep_dir import SweepDir
from prefgym.sweeps.config import SweepSpec, Trial

ADDRESS_VARIABLE = "RAY_ADDRESS"
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a cluster's address to answer before saying it cannot be reached."""


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    stream: TextIO | None = None,
) -> SweepDir:
    """Start the sweep ``spec`` in ``out`` and run every trial.

    Args:
        spec: The grid, seeds and per-trial resources.
        out: The sweep directory (must not hold a sweep).
        address: A Ray cluster to run on (``ray://host:port`` or ``host:port``); None
            reads ``$RAY_ADDRESS``, else starts a local Ray with this machine's cores.
        num_cpus: CPUs of the local Ray (default: all).
        stream: Where progress lines go (default stderr).
    """
    address = _address(address)
    sweep = SweepDir.create(out, spec)
    _run(sweep, address, num_cpus, stream or sys.stderr)
    return sweep


def resume_sweep(
    path: str | os.PathLike[str],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    stream: TextIO | None = None,
) -> SweepDir:
    """Carry on the sweep in ``path``: run the trials that have no result yet.

    A trial that was running when the sweep died resumes its run directory from its
    last round; a trial with a result is not run again.

    Raises:
        FileNotFoundError: ``path`` is not a sweep (nothing is touched).
    """
    sweep = SweepDir.open(path)
    sweep.trials()  # a damaged sweep.json is named before Ray starts
    _run(sweep, _address(address), num_cpus, stream or sys.stderr)
    return sweep


def pending_trials(sweep: SweepDir) -> list[Trial]:
    """The trials of ``sweep`` without a result."""
    return [t for t in sweep.trials() if sweep.result(t.name) is None]


def _run(sweep: SweepDir, address: str | None, num_cpus: int | None, stream: TextIO) -> None:
    spec, trials = sweep.spec(), sweep.trials()
    pending = pending_trials(sweep)
    progress = Progress(sweep, [t.name for t in trials], [t.name for t in pending], stream)
    progress.start()
    if not pending:
        return
    no_gpus = 0 if spec.gpus_per_trial == 0 else None  # a local Ray need not look for any
    with ray_session(address, num_cpus, no_gpus):
        _fit(sweep, spec, pending, progress)
    progress.finish()


def _fit(sweep: SweepDir, spec: SweepSpec, pending: list[Trial], progress: Progress) -> None:
    import ray
    from ray import tune

    _check_resources(spec, ray.cluster_resources())
    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    trainable = tune.with_resources(_trainable, resources)
    tuner = tune.Tuner(
        trainable,
        param_space={
            "trial": tune.grid_search([t.name for t in pending]),
            "sweep": str(sweep.path.resolve()),
            "threads": spec.threads,
        },
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(
            name=f"attempt-{sweep.attempts() + 1}",
            storage_path=str(sweep.tune_dir.resolve()),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[_callback(progress)],
            log_to_file=True,
        ),
    )
    tuner.fit()


def _check_resources(spec: SweepSpec, cluster: dict[str, float]) -> None:
    """Refuse per-trial resources the Ray cluster cannot grant (Tune would wait forever).

    Raises:
        ValueError: A trial asks for more CPUs or GPUs than the cluster has.
    """
    cpus, gpus = float(cluster.get("CPU", 0.0)), float(cluster.get("GPU", 0.0))
    if spec.cpus_per_trial > cpus:
        raise ValueError(
            f"--cpus-per-trial {spec.cpus_per_trial:g} is more than the {cpus:g} CPUs of this "
            "Ray; lower it (or raise --num-cpus, or join a bigger cluster with --address)"
        )
    if spec.gpus_per_trial > gpus:
        raise ValueError(
            f"--gpus-per-trial {spec.gpus_per_trial:g} is more than the {gpus:g} GPUs of this "
            "Ray; lower it (0 runs on CPUs)"
        )


def _trainable(config: dict[str, Any]) -> None:
    """A Tune function trainable: one sweep trial, reporting every round."""
    from ray import tune

    from prefgym.sweeps._trial import run_trial

    run_trial(config["sweep"], config["trial"], tune.report, threads=int(config["threads"]))


def _address(address: str | None) -> str | None:
    """The cluster to join (the argument, else ``$RAY_ADDRESS``), checked to answer.

    Raises:
        ValueError: The address is malformed or nothing answers there.
    """
    address = address or os.environ.get(ADDRESS_VARIABLE) or None
    if address is None or address == "local":
        return None
    if address == "auto":
        return address
    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"--address {address!r} is not HOST:PORT (or ray://HOST:PORT); give the address "
            "`ray start --head` printed, or leave --address out for a local Ray"
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ValueError(
            f"cannot reach a Ray cluster at --address {address!r} ({error.strerror or error}); "
            "check that `ray start --head` runs there, or leave --address out for a local Ray"
        ) from None
    return address


@contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None
) -> Iterator[None]:
    """Ray started (locally: no dashboard, no usage report, no file in the home directory).

    Inside a session already started (a test session's shared Ray), sweeps run on it and
    it is left running.
    """
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        yield
        return
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"--num-cpus must be >= 1, got {num_cpus}")
    saved = dict(os.environ)
    try:
        with _started(address, num_cpus, num_gpus):
            yield
    finally:  # Ray's settings and the cluster token do not outlive the session
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _started(address: str | None, num_cpus: int | None, num_gpus: int | None) -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network access
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables stay quiet
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address is None and "RAY_AUTH_TOKEN" not in os.environ:
        # A local cluster's token, in this process's environment: Ray would otherwise
        # write one to ~/.ray/auth_token.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    import logging
    import threading

    import ray  # after the environment above: Ray reads its settings on import

    # Tune's import runs while ray.init waits for its processes to start.
    tune_import = threading.Thread(target=importlib.import_module, args=("ray.tune",))
    tune_import.start()

    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "configure_logging": True,
        "ignore_reinit_error": True,
    }
    if address is None:
        if num_cpus is not None:
            options["num_cpus"] = num_cpus
        if num_gpus is not None:
            options["num_gpus"] = num_gpus
        ray.init(**options)
    else:
        ray.init(address=address, **options)
    tune_import.join()
    try:
        yield
    finally:
        ray.shutdown()  # a cluster carries on; a local Ray stops


class Progress:
    """One line per trial state change, with counts and the sweep's ETA."""

    def __init__(
        self, sweep: SweepDir, names: list[str], pending: list[str], stream: TextIO | None
    ) -> None:
        """Track ``pending`` of the sweep's trials ``names`` (the others finished before)."""
        self.sweep, self.stream = sweep, stream
        self.total = len(names)
        self.state = {n: "done" for n in names}
        self.state.update({n: "pending" for n in pending})
        self.started: dict[str, float] = {}
        self.durations: list[float] = []
        self.slots = 1
        """The most trials seen running at once: how many run side by side."""
        self.began = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks into ``tune/`` (never read back here): the stream stays."""
        return {**self.__dict__, "stream": None}

    def start(self) -> None:
        """Say what the sweep holds."""
        done = self.total - sum(s == "pending" for s in self.state.values())
        before = f" ({done} finished before)" if done else ""
        self._say(f"sweep {self.sweep.path}: {self.total} trials{before}")

    def running(self, name: str) -> None:
        """``name`` started (or restarted after a failure)."""
        again = self.state.get(name) == "failed"
        self.state[name] = "running"
        self.started[name] = time.monotonic()
        self.slots = max(self.slots, sum(s == "running" for s in self.state.values()))
        self._say(f"{name}: {'retrying' if again else 'running'}")

    def result(self, name: str, metrics: dict[str, Any]) -> None:
        """``name`` reported a round (shown only as its final score)."""
        if metrics.get("done"):
            score = metrics.get("score")
            self.state[name] = "done"
            began = self.started.pop(name, None)
            if began is not None and not metrics.get("resumed"):
                self.durations.append(time.monotonic() - began)
            self._say(f"{name}: done, score {score:.4g}" if score is not None else f"{name}: done")

    def failed(self, name: str, final: bool) -> None:
        """``name`` crashed (``final``: no retry left)."""
        self.state[name] = "failed"
        self.started.pop(name, None)
        error = self.sweep.error(name) or "see its Tune log under tune/"
        self._say(f"{name}: failed{'' if final else ', will retry'}: {error}")

    def finish(self) -> None:
        """The closing line."""
        wall = time.monotonic() - self.began
        left = sum(s != "done" for s in self.state.values())
        ended = "finished" if not left else f"ended with {left} of {self.total} trials unfinished"
        self._say(f"sweep {ended} in {wall:.0f} s")

    def _counts(self) -> str:
        states = list(self.state.values())
        parts = [f"{states.count(s)} {s}" for s in ("done", "running", "pending", "failed")]
        return ", ".join(parts)

    def _eta(self) -> str:
        running = [n for n, s in self.state.items() if s == "running"]
        pending = sum(s == "pending" for s in self.state.values())
        if not self.durations or not (running or pending):
            return "ETA after the first trial" if running or pending else ""
        each = statistics.median(self.durations)
        slots = self.slots
        now = time.monotonic()
        left = sum(max(0.0, each - (now - self.started.get(n, now))) for n in running)
        seconds = (left + pending * each) / slots
        return f"ETA {_duration(seconds)} ({each:.0f} s a trial)"

    def _say(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        eta = self._eta()
        tail = f" · {eta}" if eta else ""
        stream = self.stream or sys.stderr
        print(f"[{stamp}] {text}  [{self._counts()}{tail}]", file=stream, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _callback(progress: Progress) -> Any:
    """A Tune callback that feeds :class:`Progress`."""
    from ray.tune import Callback

    class _Lines(Callback):  # type: ignore[misc]
        def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            progress.running(trial.config["trial"])

        def on_trial_restore(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            progress.running(trial.config["trial"])

        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: dict[str, Any], **info: Any
        ) -> None:
            progress.result(trial.config["trial"], result)

        def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            progress.failed(trial.config["trial"], final=True)

        def on_trial_recover(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            progress.failed(trial.config["trial"], final=False)

    return _Lines()
