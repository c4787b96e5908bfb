"""A tiny sweep run once per session on the shared local Ray (``ray_cluster``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.sweeps import SweepSpec

TINY = {"steps": [1024], "round_steps": [512], "labels": [8]}
"""Trials of a few seconds: one PPO rollout a round, two rounds."""


@pytest.fixture(scope="session")
def finished_sweep(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sweep run to the end: 2 envs x 2 seeds, with the true-reward baseline."""
    import io

    from prefgym.sweeps import run_sweep

    out = tmp_path_factory.mktemp("sweep") / "tiny"
    spec = SweepSpec(
        grid={"env_id": ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"], **TINY},
        seeds=[0, 1],
        baseline="true-reward",
        episodes=2,
    )
    lines = io.StringIO()
    run_sweep(spec, out, stream=lines)
    (out / "progress.txt").write_text(lines.getvalue())
    return out
