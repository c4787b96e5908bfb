"""Shared fixtures: a seeded rng, headless rendering, one torch thread, stores and segments.

Tests run with ``--import-mode=importlib``, so a test module cannot import this
file by name: what tests share is handed to them as fixtures. The factories
(``make_segment``, ``filled``, ``spawn``) take their rng or arguments when called;
their types (and :class:`FakeClock`) may be imported ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from prefgym.segments import Segment  # noqa: E402

if TYPE_CHECKING:
    from prefgym.lm import LanguageModel
    from prefgym.runs import RunDir
from prefgym.store import PreferenceStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SegmentFactory = Callable[..., Segment]
"""What the ``make_segment`` fixture is (for annotations, imported under TYPE_CHECKING)."""
Filled = Callable[..., list[int]]
"""What the ``filled`` fixture is."""
Spawn = Callable[..., subprocess.Popen[str]]
"""What the ``spawn`` fixture is."""


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for each test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Small networks run far faster on one thread on these machines."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


class FakeClock:
    """A clock that stands still until a test moves it (``clock.now += 60``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A fresh :class:`FakeClock` at 1000 s; the ``store`` fixture runs on it."""
    return FakeClock()


def _make_segment(
    rng: np.random.Generator,
    length: int = 6,
    frames: bool = True,
    info: Mapping[str, Any] | None = None,
) -> Segment:
    """A CartPole-like segment: observations ``(length, 4)``, frames ``(length, 6, 8, 3)``."""
    return Segment(
        observations=rng.normal(size=(length, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=length),
        true_rewards=rng.normal(size=length),
        frames=rng.integers(0, 256, size=(length, 6, 8, 3), dtype=np.uint8) if frames else None,
        env_id="prefgym/CartPole-v1",
        info=dict(info or {}),
    )


@pytest.fixture(scope="session")
def make_segment() -> SegmentFactory:
    """``make_segment(rng, length=6, frames=True, info=None)``: a random CartPole-like segment."""
    return _make_segment


@pytest.fixture(scope="session")
def filled() -> Filled:
    """``filled(store, rng, n=6, frames=False)``: adds ``n`` random segments, returns their ids."""

    def filled(
        store: PreferenceStore, rng: np.random.Generator, n: int = 6, frames: bool = False
    ) -> list[int]:
        return store.add_segments([_make_segment(rng, frames=frames) for _ in range(n)])

    return filled


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the ``store`` fixture keeps its file (for a second connection or process)."""
    return tmp_path / "prefs.sqlite"


@pytest.fixture
def store(store_path: Path, clock: FakeClock) -> Iterator[PreferenceStore]:
    """An empty store at ``store_path`` whose time is the ``clock`` fixture."""
    with PreferenceStore(store_path, clock=clock) as s:
        yield s


@pytest.fixture(scope="session")
def spawn() -> Spawn:
    """``spawn(code, *args, stdin=False)``: ``python -c code args`` on this checkout."""

    def spawn(code: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )

    return spawn


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A short CartPole run, shared by the tests that read one (it trains for seconds)."""
    from prefgym.runs import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "cartpole"
    config = TrainConfig(labels=50, steps=20_000, round_steps=2_500, seed=1)
    return train(config, out, show_progress=False)


@pytest.fixture(scope="module")
def sft() -> LanguageModel:
    """The cached SFT model of the sentiment task (built on first use), one per test module."""
    from prefgym.lm import load_language_model

    return load_language_model("sft", task="sentiment", progress=False)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the session's sweeps (started on first use, dashboard off, 2 CPUs)."""
    from prefgym.sweeps import ray_session

    with ray_session(num_cpus=2):
        yield
