"""The sweep directory: made once, read back checked, and left alone when it is not a sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefgym.sweeps import SweepDir, SweepSpec, TrialResult, is_sweep


def _spec() -> SweepSpec:
    return SweepSpec(grid={"labels": [10, 20]}, seeds=[0, 1])


def test_a_sweep_is_made_once(tmp_path: Path) -> None:
    sweep = SweepDir.create(tmp_path / "s", _spec())
    assert is_sweep(sweep.path)
    document = json.loads(sweep.file.read_text())
    assert document["format"] == "prefgym-sweep" and len(document["trials"]) == 4
    assert document["trials"][0]["settings"]["labels"] == 10
    assert sweep.spec() == _spec()
    with pytest.raises(FileExistsError, match="prefgym sweep --resume"):
        SweepDir.create(tmp_path / "s", _spec())
    with pytest.raises(ValueError, match="algo='sac'"):
        SweepDir.create(tmp_path / "bad", SweepSpec(grid={"algo": ["sac"]}, seeds=[0]))
    assert not (tmp_path / "bad").exists()  # a bad grid leaves nothing behind


def test_a_directory_that_is_not_a_sweep_is_named(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="is not a prefgym sweep .has no sweep.json"):
        SweepDir.open(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SweepDir.open(tmp_path / "nowhere")
    assert not is_sweep(tmp_path / "run")


def test_a_damaged_or_edited_sweep_json_is_named(tmp_path: Path) -> None:
    sweep = SweepDir.create(tmp_path / "s", _spec())
    document = json.loads(sweep.file.read_text())
    sweep.file.write_text(json.dumps({**document, "trials": document["trials"][:3]}))
    with pytest.raises(ValueError, match="the trials it lists are not the grid"):
        sweep.trials()
    spec = {**document["spec"], "seeds": [0, -1]}
    sweep.file.write_text(json.dumps({**document, "spec": spec}))
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        sweep.spec()
    sweep.file.write_text(json.dumps({**document, "spec": {**document["spec"], "sedes": 3}}))
    with pytest.raises(ValueError, match="did you mean 'seeds'"):
        sweep.spec()
    sweep.file.write_text("{half")
    with pytest.raises(ValueError, match="sweep"):
        sweep.spec()


def test_a_trial_result_is_read_back_checked(tmp_path: Path) -> None:
    sweep = SweepDir.create(tmp_path / "s", _spec())
    name = sweep.trials()[0].name
    assert sweep.result(name) is None
    sweep.trial_path(name).mkdir(parents=True)
    sweep.write_result(TrialResult(name, 480.5, 3.0, 12.0, 50_000, 100))
    assert sweep.result(name) == TrialResult(name, 480.5, 3.0, 12.0, 50_000, 100)
    file = sweep.trial_path(name) / "result.json"
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, "score": "high"}))
    with pytest.raises(ValueError, match="score must be a number"):
        sweep.result(name)
    file.write_text(json.dumps({**data, "score": float("inf")}))
    with pytest.raises(ValueError, match="score must be a finite number"):
        sweep.result(name)
