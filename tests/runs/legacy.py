"""Runs of earlier releases, whose agent is Stable-Baselines3's zip, honest or crafted.

Import as ``from tests.runs.legacy import ...``.
"""

from __future__ import annotations

import base64
import json
import pathlib
import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path

import prefgym
from prefgym.agents.sb3 import SB3Agent
from prefgym.runs import RunDir, TrainConfig, agent_preset
from prefgym.store import PreferenceStore

CONFIG = TrainConfig(labels=10, steps=512, round_steps=256, seed=3)


class Touch:
    """Unpickling this creates ``path``: what a crafted run directory could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def legacy_run(path: Path, marker: Path | None = None) -> tuple[RunDir, SB3Agent]:
    """A run with a briefly trained agent saved as ``agent.zip`` by SB3, as earlier releases did.

    With ``marker``, the zip's ``data`` JSON also carries a serialized entry whose
    unpickling creates ``marker``.

    Returns:
        The run and the agent that was saved.
    """
    run = RunDir.create(path, {"train": asdict(CONFIG), "prefgym": prefgym.__version__})
    agent = SB3Agent.create(
        CONFIG.env_id, agent_preset(CONFIG.env_id), seed=CONFIG.seed, segment_length=25
    )
    agent.learn(256)  # one rollout: weights, optimizer moments and counters not at their start
    PreferenceStore(run.store).close()  # every run had its store
    agent.model.save(str(run.legacy_agent))
    if marker is not None:
        _plant(run.legacy_agent, marker)
    return run, agent


def _plant(zip_path: Path, marker: Path) -> None:
    """Add a serialized entry to the ``data`` JSON in SB3's zip, as SB3 writes its own."""
    with zipfile.ZipFile(zip_path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(files["data"])
    payload = base64.b64encode(pickle.dumps(Touch(marker))).decode()
    data["innocent_looking"] = {":type:": "<class 'NoneType'>", ":serialized:": payload}
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
