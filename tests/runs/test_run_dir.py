from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from prefgym.errors import RunInUse
from prefgym.runs import RunDir
from prefgym.runs._run_dir import CONFIG_VERSION
from prefgym.runs.config import TextTrainConfig, TrainConfig
from prefgym.store import PreferenceStore


def test_create_writes_the_config_with_its_versions_and_open_reads_it(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"train": {"labels": 5}})
    config = RunDir.open(run.path).read_config()
    assert config["train"] == {"labels": 5}
    assert config["config_version"] == CONFIG_VERSION and config["prefgym"]
    assert [p.name for p in run.path.iterdir()] == ["config.json"]  # no temporary left


def test_create_refuses_an_existing_run(tmp_path: Path) -> None:
    RunDir.create(tmp_path, {})
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir.create(tmp_path, {"other": 1})
    assert "other" not in RunDir.open(tmp_path).read_config()


def test_open_names_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        RunDir.open(tmp_path)


def _run_with(tmp_path: Path, settings: dict[str, object], **top: object) -> RunDir:
    run = RunDir(tmp_path)
    run.config.write_text(json.dumps({"train": settings, **top}))
    return run


def test_a_config_of_today_reads_back_as_the_same_settings(tmp_path: Path) -> None:
    config = TrainConfig(labels=200, steps=3000, label_t0=None, seed=3)
    assert RunDir.create(tmp_path / "a", {"train": asdict(config)}).train_config() == config
    text = TextTrainConfig(algo="grpo", labels=30, iterations=4)
    assert RunDir.create(tmp_path / "b", {"text": text.to_json()}).text_config() == text


def test_a_config_without_a_version_is_read_as_version_1(tmp_path: Path) -> None:
    run = _run_with(tmp_path, asdict(TrainConfig(labels=7)))
    assert run.train_config().labels == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": None}, r"train: setting 'labels' is missing"),
        ({"lables": 200}, r"unknown setting 'lables'; did you mean 'labels'\?"),
        ({"labels": "200"}, r"train\.labels must be an integer, got '200' \(str\)"),
        ({"labels": 2.5}, r"train\.labels must be an integer"),
        ({"seed": True}, r"train\.seed must be an integer, got True"),
        ({"algo": "ddpg"}, r"train\.algo must be one of \['ppo', 'sac'\], got 'ddpg'"),
        ({"initial_fraction": float("nan")}, r"initial_fraction must be a finite number"),
        ({"initial_fraction": 1e400}, r"initial_fraction must be a finite number, got inf"),
        ({"label_t0": "soon"}, r"train\.label_t0 must be a number"),
        ({"members": 0}, r"config\.json: train: members must be >= 1"),
    ],
)
def test_a_wrong_config_names_the_field_and_the_file(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    settings = asdict(TrainConfig(labels=200))
    for key, value in change.items():
        if value is None:
            del settings[key]
        else:
            settings[key] = value
    run = _run_with(tmp_path, settings)
    with pytest.raises(ValueError, match=message) as error:
        run.train_config()
    assert str(run.config) in str(error.value)


def test_nested_text_settings_are_checked_too(tmp_path: Path) -> None:
    settings = TextTrainConfig().to_json()
    settings["ppo"]["lr"] = "fast"
    run = RunDir(tmp_path)
    run.config.write_text(json.dumps({"text": settings}))
    with pytest.raises(ValueError, match=r"text\.ppo\.lr must be a number, got 'fast'"):
        run.text_config()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"is not valid JSON \(it is empty: a write was cut off\)"),
        ("{", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"config_version": 99, "train": {}}', "written by a newer prefgym"),
        ('{"config_version": "1", "train": {}}', "config_version must be a positive integer"),
        ('{"text": {}}', "is a text run; use `prefgym text train --resume"),
        ('{"other": {}}', r"holds no run settings \(no 'train' object\)"),
    ],
)
def test_a_damaged_config_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    run = RunDir(tmp_path)
    run.config.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        run.train_config()
    assert str(tmp_path) in str(error.value)


def test_a_second_trainer_is_refused_with_the_pid_of_the_first(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"train": {}})
    holder = textwrap.dedent(
        f"""
        import sys, time
        from prefgym.runs import RunDir
        with RunDir.open({str(run.path)!r}).trainer_lock():
            print("held", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match=rf"being trained by pid {process.pid} on .* since"):
            with run.trainer_lock():
                pass
    finally:
        process.kill()  # like kill -9: the lock goes with the process
        process.wait()
    with run.trainer_lock():  # the dead trainer's lock is taken over
        assert f"pid {__import__('os').getpid()}" in run.lock_file.read_text()


def test_a_run_is_finished_once_marked_in_its_store(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"train": {}})
    assert run.finished() is None
    with PreferenceStore(run.store) as store:
        assert run.finished() is None
        run.mark_finished(store, steps=5000, judgments=40)
    note = run.finished()
    assert note is not None and note["steps"] == 5000 and note["judgments"] == 40
    assert "(5000 steps, 40 judgments); nothing to do" in run.finished_message(note)


def test_a_killed_save_is_found_by_readers_and_settled_by_the_next_trainer(
    tmp_path: Path,
) -> None:
    run = RunDir.create(tmp_path / "run", {})
    assert run.agent == run.path / "agent" and run.saved_agent() is None
    (run.path / "agent.old").mkdir()  # killed between the swap's two renames
    (run.path / "agent.new").mkdir()
    (run.path / "agent.new" / "agent.json").write_text("{}")
    files = ["agent.new", "agent.old", "config.json"]
    assert run.saved_agent() == run.agent
    assert sorted(p.name for p in run.path.iterdir()) == files  # a reader changes nothing
    with run.trainer_lock():
        assert sorted(p.name for p in run.path.iterdir()) == [
            "agent",
            "config.json",
            "trainer.lock",
        ]
    assert (run.agent / "agent.json").read_text() == "{}"


def test_an_agent_zip_alone_is_refused_with_the_convert_command(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {})
    run.legacy_agent.write_bytes(b"PK")
    with pytest.raises(ValueError) as error:
        run.saved_agent()
    assert str(error.value) == (
        f"{run.path}/agent.zip is Stable-Baselines3's pickle format, which prefgym no longer "
        f"opens (it can run code); if you trust whoever made {run.path}, convert it with "
        f"`prefgym convert {run.path} --trust`"
    )
    run.agent.mkdir()  # converted: the zip is not looked at
    assert run.saved_agent() == run.agent


def test_an_older_config_is_brought_up_by_its_migration_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefgym.runs import _run_dir

    def rename_labels(config: dict) -> dict:  # as a later version might rename a field
        settings = dict(config["train"])
        settings["labels"] = settings.pop("budget")
        return {**config, "train": settings}

    old = asdict(TrainConfig(labels=30))
    old["budget"] = old.pop("labels")
    run = _run_with(tmp_path, old, config_version=1)
    monkeypatch.setattr(_run_dir, "CONFIG_VERSION", 2)
    monkeypatch.setattr(_run_dir, "CONFIG_MIGRATIONS", {1: rename_labels})
    assert run.train_config().labels == 30
    assert "budget" in json.loads(run.config.read_text())["train"]  # the file is not rewritten
    monkeypatch.setattr(_run_dir, "CONFIG_MIGRATIONS", {})
    with pytest.raises(ValueError, match="config version 1 cannot be read"):
        run.train_config()


def test_a_version_1_config_gains_the_reward_source_its_run_used(tmp_path: Path) -> None:
    settings = asdict(TrainConfig(labels=9))
    del settings["reward"]  # version 1 had no such field: every run learned its reward
    run = _run_with(tmp_path, settings, config_version=1)
    config = run.train_config()
    assert config.reward == "learned" and not config.true_reward and config.labels == 9
    assert "reward" not in json.loads(run.config.read_text())["train"]  # read, not rewritten
