"""Key to next pair: how long a person waits after answering, with real key presses under Xvfb.

A store holds CartPole pairs as a human run stores them (small frames, and the seed
and actions to replay each clip sharp at full size). The labeling window runs in
this process on a virtual X server; a second thread plays the person through one
long-lived ``xdotool -`` (so starting xdotool is not timed): for each pair it waits
``delay`` seconds after the pair reached the screen, notes the time and presses
Left. The latency of a press is the time until the next pair is on screen (the
window's own note of each pair's first flip). Two kinds of person:

- ``after a loop``: answers after watching the clip once (its length at its fps);
- ``at 0.1 s``: answers 0.1 s after the pair appears, while the window may still
  be loading the next one.

Prints median, p90 and max per kind (target: p90 <= 50 ms) and writes
``latency.json`` to ``--out``::

    OMP_NUM_THREADS=1 python benchmarks/label_latency.py --pairs 40
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ENV_ID = "prefgym/CartPole-v1"
LENGTH = 25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="pairs answered per kind")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latency"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import prefgym.label._window  # noqa: F401  (names the X window's class before SDL starts)

    with tempfile.TemporaryDirectory(prefix="latency") as folder, _xvfb() as display:
        os.environ["DISPLAY"], os.environ["SDL_VIDEODRIVER"] = display, "x11"
        results = {}
        for kind in ("after a loop", "at 0.1 s"):
            store_path = Path(folder) / f"{kind.replace(' ', '_')}.sqlite"
            _fill(store_path, args.pairs + 2)
            results[kind] = _measure(store_path, display, args.pairs, kind)
    _report(results, args.out)


def _fill(path: Path, pairs: int) -> None:
    """A store of CartPole pairs as a human run keeps them (frames every third pixel)."""
    from prefgym.segments import make_vector_env, random_policy, rollout_segments
    from prefgym.store import PreferenceStore

    env = make_vector_env(ENV_ID, 4, frames=True, replayable=True)
    env.action_space.seed(0)
    segments = rollout_segments(
        env, random_policy(env.action_space), 2 * pairs, LENGTH, seed=0, frames=True,
        frame_stride=3,
    )  # fmt: skip
    env.close()
    with PreferenceStore(path) as store:
        ids = store.add_segments(segments)
        store.add_queries([(ids[i], ids[i + 1]) for i in range(0, len(ids), 2)])


def _measure(store_path: Path, display: str, pairs: int, kind: str) -> list[float]:
    """Latencies (seconds) of ``pairs`` real key presses, each ``delay`` after a pair showed."""
    from prefgym.label import run_window
    from prefgym.label._clips import render_fps
    from prefgym.store import PreferenceStore

    delay = 0.1 if kind == "at 0.1 s" else LENGTH / render_fps(ENV_ID)
    holder: list[object] = []
    latencies: list[float] = []
    failure: list[BaseException] = []

    def person() -> None:
        try:
            window = _wait_for(lambda: holder[0] if holder else None, 60)
            found = subprocess.run(
                ["xdotool", "search", "--sync", "--classname", "prefgym"],
                capture_output=True, text=True, check=True, timeout=30,
            )  # fmt: skip
            subprocess.run(
                ["xdotool", "windowfocus", "--sync", found.stdout.split()[0]],
                check=True, timeout=30,
            )  # fmt: skip
            xdotool = subprocess.Popen(
                ["xdotool", "-"], stdin=subprocess.PIPE, text=True, env=dict(os.environ)
            )
            assert xdotool.stdin is not None
            shown = window.pairs_shown  # type: ignore[attr-defined]
            _wait_for(lambda: len(shown) >= 1 or None, 60)
            for n in range(pairs):
                query, at = shown[n]
                time.sleep(max(0.0, at + delay - time.perf_counter()))
                pressed = time.perf_counter()
                xdotool.stdin.write("key Left\n")
                xdotool.stdin.flush()
                _wait_for(lambda n=n: len(shown) > n + 1 or None, 30)
                latencies.append(shown[n + 1][1] - pressed)
            xdotool.stdin.write("key q\n")
            xdotool.stdin.close()
            xdotool.wait(timeout=30)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failure.append(error)

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    with PreferenceStore(store_path) as store:
        run_window(
            store,
            "bench",
            max_seconds=pairs * (delay + 2) + 60,
            on_frame=lambda window: holder.append(window) if not holder else None,
        )
    thread.join(timeout=30)
    if failure:
        raise failure[0]
    return latencies


def _wait_for(value: object, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while (found := value()) is None:  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        time.sleep(0.002)
    return found


def _report(results: dict[str, list[float]], out: Path) -> None:
    from prefgym.runs import format_table

    rows = []
    for kind, latencies in results.items():
        ms = 1000 * np.asarray(latencies)
        rows.append(
            [kind, len(ms), float(np.median(ms)), float(np.percentile(ms, 90)), float(ms.max())]
        )
    print(format_table(["person answers", "presses", "median ms", "p90 ms", "max ms"], rows))
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency.json").write_text(json.dumps(results, indent=1))
    print(f"latencies in {out / 'latency.json'}")


class _xvfb:
    """A virtual X server for the duration (``with _xvfb() as display``)."""

    def __enter__(self) -> str:
        number = next(n for n in range(90, 200) if not Path(f"/tmp/.X{n}-lock").exists())
        self.display = f":{number}"
        self.server = subprocess.Popen(
            ["Xvfb", self.display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or None, 20)
        return self.display

    def __exit__(self, *exc: object) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)


if __name__ == "__main__":
    main()
