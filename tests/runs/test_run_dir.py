from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.runs import RunDir


def test_create_writes_the_config_and_open_reads_it(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", {"train": {"labels": 5}})
    assert RunDir.open(run.path).read_config() == {"train": {"labels": 5}}
    assert not list(run.path.glob("*.tmp"))


def test_create_refuses_an_existing_run(tmp_path: Path) -> None:
    RunDir.create(tmp_path, {})
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir.create(tmp_path, {"other": 1})
    assert RunDir.open(tmp_path).read_config() == {}


def test_open_names_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        RunDir.open(tmp_path)


def test_saved_agent_is_none_then_the_checkpoint_then_settles_a_killed_save(
    tmp_path: Path,
) -> None:
    run = RunDir.create(tmp_path / "run", {})
    assert run.agent == run.path / "agent" and run.saved_agent() is None
    (run.path / "agent.old").mkdir()  # killed between the swap's two renames
    (run.path / "agent.new").mkdir()
    (run.path / "agent.new" / "agent.json").write_text("{}")
    assert run.saved_agent() == run.agent
    assert sorted(p.name for p in run.path.iterdir()) == ["agent", "config.json"]
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
