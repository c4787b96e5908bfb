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
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
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
    """sha256 of every file that holds judgments, settings or checkpoints (control or text)."""
    checkpoints = [*run.agent.glob("*"), *run.reward_model.glob("*"), *run.path.glob("policy/*")]
    kept = [run.config, run.store, *checkpoints]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in kept if p.is_file()}


def _failures(run: RunDir, commands: list[list[str]], capsys: pytest.CaptureFixture[str]) -> int:
    """Run each command on ``run``: each works or fails in one line, and no kept file changes.

    Returns:
        How many commands failed.
    """
    before = _digests(run)
    failures = 0
    for command in commands:
        capsys.readouterr()
        status = main(command)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (command, err)
        if status != 0:
            failures += 1
            assert status in (1, 2), (command, status, err)
            assert err.startswith("prefgym: error: ") and err.count("\n") == 1, (command, err)
        assert _digests(run) == before, command
    return failures


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
    "metrics garbage": lambda r: _write(r.metrics, b"step,true_return\n512,many\n"),
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
    commands = [
        [*command, str(run.path), *(["--quiet"] if "train" in command else [])]
        for command in COMMANDS
    ]
    assert _failures(run, commands, capsys) >= 1  # every damage is noticed by some command
    assert not marker.exists()


def _crafted_store_run(tmp_path: Path) -> tuple[RunDir, Path, dict[str, str]]:
    """A human run whose store names ``payload_module:Payload-v0``, and the child env."""
    import numpy as np

    from prefgym.segments import Segment

    marker = tmp_path / "ran"
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "payload_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = TrainConfig(oracle="human", labels=4, labeler="alice")
    run = RunDir.create(tmp_path / "run", {"train": asdict(config)})
    with PreferenceStore(run.store) as store:
        ids = store.add_segments(
            [
                Segment(
                    observations=np.zeros((5, 4), dtype=np.float32),
                    actions=np.zeros(5, dtype=np.int64),
                    true_rewards=np.ones(5, dtype=np.float32),
                    env_id="payload_module:Payload-v0",
                    info={"seed": i},  # a replay would make the env from this id
                )
                for i in range(4)
            ]
        )
        store.add_queries([ids[:2], ids[2:]])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(payload), os.environ.get("PYTHONPATH", "")]),
        "SDL_VIDEODRIVER": "dummy",
        "OMP_NUM_THREADS": "1",
    }
    return run, marker, env


def test_a_store_naming_a_module_runs_no_code_in_the_window_or_the_report(
    tmp_path: Path,
) -> None:
    run, marker, env = _crafted_store_run(tmp_path)
    gymnasium_make = "import gymnasium; gymnasium.make('payload_module:Payload-v0')"
    subprocess.run([sys.executable, "-c", gymnasium_make], env=env, capture_output=True)
    assert marker.exists()  # what gymnasium itself does with such an id
    marker.unlink()
    window = subprocess.Popen(
        [sys.executable, "-m", "prefgym.cli", "label", str(run.path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:  # until the first pair is on screen (its clips built, replay tried)
        with closing(sqlite3.connect(run.store)) as conn:
            leased = conn.execute("SELECT COUNT(*) FROM queries WHERE lease_owner IS NOT NULL")
            if leased.fetchone()[0] >= 1:
                break
        assert window.poll() is None, window.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    window.send_signal(signal.SIGINT)
    _, err = window.communicate(timeout=30)
    assert window.returncode == 0 and "Traceback" not in err, err
    report = subprocess.run(
        [sys.executable, "-m", "prefgym.cli", "report", str(run.path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0 and "Traceback" not in report.stderr
    assert not marker.exists()


@pytest.fixture(scope="module")
def unfinished_text_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A tiny text run (token PPO) with every checkpoint, not marked finished."""
    from prefgym.agents.text import TokenPPOConfig
    from prefgym.runs import TextTrainConfig, train_text

    config = TextTrainConfig(
        labels=20,
        label_rounds=1,
        iterations=2,
        eval_prompts=8,
        eval_every=1,
        reward_epochs=2,
        ppo=TokenPPOConfig(batch_size=8, minibatch_size=8, ppo_epochs=1),
    )
    out = tmp_path_factory.mktemp("corpus") / "text"
    train_text(config, out, progress=False)
    run = RunDir.open(out)
    with PreferenceStore(run.store) as store:
        store.set_meta("finished", None)
    return run


TEXT_CASES: dict[str, Damage] = {
    "text config wrong type": lambda r: _rewrite_json(
        r.config, lambda d: d["text"]["ppo"].update(lr="fast")
    ),
    "text config unknown key": lambda r: _rewrite_json(
        r.config, lambda d: d["text"].update(iteratons=3)
    ),
    "trainer.json empty": lambda r: _write(r.path / "policy" / "trainer.json", b""),
    "trainer.json a list": lambda r: _write(r.path / "policy" / "trainer.json", b"[]"),
    "trainer state random": lambda r: _write(
        r.path / "policy" / "trainer_state.safetensors", os.urandom(256)
    ),
    "policy weights nan": lambda r: _rewrite_tensors(
        r.path / "policy" / "policy.safetensors", _poison_first_float
    ),
    "text rm weights truncated": lambda r: _write(_rm_file(r), _rm_file(r).read_bytes()[:64]),
    "metrics garbage": lambda r: _write(r.metrics, b"iteration,true_score\n1,many\n"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_a_damaged_text_run_gets_one_line_and_keeps_its_files(
    case: str,
    unfinished_text_run: RunDir,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = RunDir(tmp_path / "run")
    shutil.copytree(unfinished_text_run.path, run.path)
    TEXT_CASES[case](run)
    resume = ["text", "train", "--resume", str(run.path), "--quiet"]
    assert _failures(run, [resume, ["report", str(run.path)]], capsys) >= 1
