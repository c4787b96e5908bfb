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
