"""A corpus of damaged and crafted run directories, through the ``prefgym`` command.

Each case copies one small trained run, damages one file, and runs ``eval``,
``train --resume`` and ``report`` on it: each either works or ends with exit 2
(bad input) or 1, with one line ``prefgym: error: ...`` and no traceback, and no
file that holds the run's judgments or checkpoints changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from prefgym.cli import main
from prefgym.runs import RunDir, TrainConfig, train
from prefgym.store import PreferenceStore

Damage = Callable[[RunDir], None]
COMMANDS = (["eval", "--episodes", "2"], ["train", "--resume"], ["report"])


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A tiny run that has every checkpoint but is not marked finished (so resume loads)."""
    config = TrainConfig(labels=10, steps=1024, round_steps=512, seed=2)
    run = train(config, tmp_path_factory.mktemp("corpus") / "run", show_progress=False)
    with PreferenceStore(run.store) as store:
        store.set_meta("finished", None)
    return run


def _digests(run: RunDir) -> dict[str, str]:
    """sha256 of every file that holds judgments, settings or checkpoints."""
    kept = [run.config, run.store, *run.agent.glob("*"), *run.reward_model.glob("*")]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in kept if p.is_file()}


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _rewrite_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _rewrite_tensors(path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _poison_first_float(tensors: dict[str, torch.Tensor]) -> None:
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[1] = float("nan")


def _reshape_first(tensors: dict[str, torch.Tensor]) -> None:
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.dim() == 2)
    tensors[name] = torch.zeros(tensors[name].shape[0] + 1, tensors[name].shape[1])


def _other_sqlite(path: Path) -> None:
    path.unlink()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()


def _newer_store(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")


def _corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):  # every page but the header's
        data[start : start + 200] = os.urandom(200)
    path.write_bytes(bytes(data))


def _agent_file(run: RunDir, suffix: str) -> Path:
    return run.agent / f"agent.{suffix}"


def _rm_file(run: RunDir) -> Path:
    return run.reward_model / "reward_model.safetensors"


def _rm_json(run: RunDir) -> Path:
    return run.reward_model / "reward_model.json"


CASES: dict[str, Damage] = {
    # config.json
    "config empty": lambda r: _write(r.config, b""),
    "config random bytes": lambda r: _write(r.config, os.urandom(200)),
    "config truncated": lambda r: _write(r.config, r.config.read_bytes()[:40]),
    "config missing labels": lambda r: _rewrite_json(r.config, lambda d: d["train"].pop("labels")),
    "config unknown key": lambda r: _rewrite_json(
        r.config, lambda d: d["train"].update(lables=200)
    ),
    "config wrong type": lambda r: _rewrite_json(
        r.config, lambda d: d["train"].update(steps="many")
    ),
    "config newer version": lambda r: _rewrite_json(
        r.config, lambda d: d.update(config_version=99)
    ),
    "config module env id": lambda r: _rewrite_json(
        r.config, lambda d: d["train"].update(env_id="payload_module:Payload-v0")
    ),
    # store.sqlite
    "store random bytes": lambda r: _write(r.store, os.urandom(8192)),
    "store truncated": lambda r: _write(r.store, r.store.read_bytes()[:1000]),
    "store empty": lambda r: _write(r.store, b""),
    "store of another schema": lambda r: _other_sqlite(r.store),
    "store newer version": lambda r: _newer_store(r.store),
    "store corrupt pages": lambda r: _corrupt_middle(r.store),
    # reward model
    "rm weights random bytes": lambda r: _write(_rm_file(r), os.urandom(500)),
    "rm weights truncated": lambda r: _write(_rm_file(r), _rm_file(r).read_bytes()[:100]),
    "rm weights huge header": lambda r: _write(_rm_file(r), (2**40).to_bytes(8, "little")),
    "rm weights nan": lambda r: _rewrite_tensors(_rm_file(r), _poison_first_float),
    "rm weights wrong shape": lambda r: _rewrite_tensors(_rm_file(r), _reshape_first),
    "rm metadata empty": lambda r: _write(_rm_json(r), b""),
    "rm metadata wrong config": lambda r: _rewrite_json(
        _rm_json(r), lambda d: d["config"].update(members="three")
    ),
    # agent
    "agent weights random bytes": lambda r: _write(_agent_file(r, "safetensors"), os.urandom(64)),
    "agent weights nan": lambda r: _rewrite_tensors(
        _agent_file(r, "safetensors"), _poison_first_float
    ),
    "agent weights wrong shape": lambda r: _rewrite_tensors(
        _agent_file(r, "safetensors"), _reshape_first
    ),
    "agent metadata empty": lambda r: _write(_agent_file(r, "json"), b""),
    "agent metadata random": lambda r: _write(_agent_file(r, "json"), os.urandom(100)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_run_gets_one_line_and_keeps_its_files(
    case: str,
    unfinished_run: RunDir,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # a payload module an env id could name
    marker = tmp_path / "ran"
    (tmp_path / "payload_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    run = RunDir(tmp_path / "run")
    shutil.copytree(unfinished_run.path, run.path)
    CASES[case](run)
    before = _digests(run)
    failures = 0
    for command in COMMANDS:
        capsys.readouterr()
        status = main([*command, str(run.path), *(["--quiet"] if "train" in command else [])])
        err = capsys.readouterr().err
        assert "Traceback" not in err, (command, err)
        if status != 0:
            failures += 1
            assert status in (1, 2), (command, status, err)
            assert err.startswith("prefgym: error: ") and err.count("\n") == 1, (command, err)
        assert _digests(run) == before, command
    assert failures >= 1  # every damage is noticed by some command
    assert not marker.exists()
