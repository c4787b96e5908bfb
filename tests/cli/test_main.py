from __future__ import annotations

from pathlib import Path

import pytest

import prefgym.runs
from prefgym.cli import main
from prefgym.loop import ATARI_T0
from prefgym.runs import RunDir, TrainConfig, format_table
from tests.runs.legacy import legacy_run

KEYS = ("episodes", "true_return_mean", "true_return_std")


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of a command that must end with status 2 (bad input)."""
    try:
        status = main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        status = int(exit_info.code or 0)
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("prefgym: error: ") or "error:" in err
    assert err.count("\n") == 1 or "usage:" in err and "Traceback" not in err
    return err


def test_unknown_env_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--env", "prefgym/CartPol-v1"], capsys)
    assert "'prefgym/CartPol-v1'" in err and "Did you mean 'prefgym/CartPole-v1'" in err


def test_unknown_oracle_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--oracle", "mistak"], capsys)
    assert "mistak" in err and "mistake" in err


def test_bad_numbers_name_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert "-5" in _error(["train", "--labels", "-5"], capsys)
    assert "twelve" in _error(["train", "--steps", "twelve"], capsys)


def test_a_bad_label_t0_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "--label-t0", "-5"], capsys)
    assert "label_t0" in err and "-5" in err
    assert "'soon'" in _error(["train", "--label-t0", "soon"], capsys)


def test_label_t0_reaches_the_loops_schedule(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[TrainConfig] = []

    def start(config: TrainConfig, out: object, **kwargs: object) -> RunDir:
        started.append(config)
        raise ValueError("not training in this test")

    monkeypatch.setattr(prefgym.runs, "train", start)
    _error(["train", "--label-t0", "2e6", "--steps", "10000000", "--labels", "600"], capsys)
    (config,) = started
    assert config.label_t0 == 2e6
    schedule = config.loop_config().schedule()
    assert (schedule.t0, schedule.total_steps, schedule.budget) == (2e6, 10_000_000, 600)


def test_rollout_envs_reaches_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert TrainConfig().loop_config().rollout_envs == 4
    assert TrainConfig(rollout_envs=16).loop_config().rollout_envs == 16
    err = _error(["train", "--rollout-envs", "0"], capsys)
    assert "rollout_envs" in err and "0" in err


@pytest.mark.parametrize(
    ("env_id", "label_t0", "t0"),
    [
        ("prefgym/Pong-v5", None, ATARI_T0),  # Christiano et al.'s Atari schedule
        ("prefgym/Breakout-v5", 1e5, 1e5),  # a T0 given wins
        ("prefgym/ArcadePong-v0", None, None),  # our own arcade games: steps / 5
        ("prefgym/CartPole-v1", None, None),
    ],
)
def test_atari_envs_get_christianos_t0_by_default(
    env_id: str, label_t0: float | None, t0: float | None
) -> None:
    config = TrainConfig(env_id=env_id, label_t0=label_t0)
    assert config.loop_config().label_t0 == t0
    assert config.label_t0 == label_t0  # config.json keeps what was asked for


def test_resume_refuses_new_settings(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    err = _error(["train", "--resume", str(short_run.path), "--labels", "10"], capsys)
    assert "--labels" in err and "config.json" in err


def test_refuses_to_overwrite_a_run(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    err = _error(["train", "--out", str(short_run.path)], capsys)
    assert "--resume" in err


def test_resume_of_a_missing_run_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "prefgym train --out" in _error(["train", "--resume", str(tmp_path)], capsys)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--env",
        "--oracle",
        "--labels",
        "--steps",
        "--seed",
        "--algo",
        "--segment-length",
        "--selection",
        "--round-steps",
        "--initial-fraction",
        "--label-t0",
        "--members",
        "--labeler",
        "--resume",
        "--out",
        "--quiet",
    ):
        assert flag in text


def test_list_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-envs"]) == 0
    envs = capsys.readouterr().out
    assert "prefgym/Hopper-v5" in envs and "penalty" in envs
    assert main(["list-oracles"]) == 0
    oracles = capsys.readouterr().out
    assert all(name in oracles for name in ("oracle", "stoc", "mistake", "skip", "equal", "myopic"))


def test_eval_prints_the_true_return(capsys: pytest.CaptureFixture[str], short_run: RunDir) -> None:
    assert main(["eval", str(short_run.path), "--episodes", "2"]) == 0
    assert "true return" in capsys.readouterr().out


def test_the_earlier_python_spelling_still_works() -> None:
    """``from prefgym.cli import TrainConfig, train, ...`` names what ``prefgym.runs`` has."""
    import prefgym.cli
    import prefgym.runs

    for name in ("TrainConfig", "train", "resume", "evaluate", "report", "label", "set_threads"):
        assert getattr(prefgym.cli, name) is getattr(prefgym.runs, name)
    with pytest.raises(AttributeError, match="has no attribute 'TextRun'"):
        prefgym.cli.TextRun  # noqa: B018


@pytest.mark.parametrize("command", [["eval", "RUN"], ["train", "--resume", "RUN", "--quiet"]])
def test_a_crafted_run_of_an_earlier_release_runs_no_code(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    run, _ = legacy_run(tmp_path / "run", marker)
    err = _error([str(run.path) if word == "RUN" else word for word in command], capsys)
    assert not marker.exists()
    assert err.count("\n") == 1 and err.startswith("prefgym: error: ")
    assert f"{run.legacy_agent} is Stable-Baselines3's pickle format" in err
    assert f"`prefgym convert {run.path} --trust`" in err


def test_report_on_a_crafted_run_shows_the_tables_and_names_the_convert_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The report opens no agent: it still works, and says how to move the run on."""
    marker = tmp_path / "marker"
    run, _ = legacy_run(tmp_path / "run", marker)
    assert main(["report", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert not marker.exists()
    assert f"`prefgym convert {run.path} --trust`" in out.splitlines()[-1]


def test_convert_needs_trust_and_then_the_run_evaluates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run, _ = legacy_run(tmp_path / "run")
    err = _error(["convert", str(run.path)], capsys)
    assert err.count("\n") == 1 and "pickle" in err and "--trust" in err
    assert run.legacy_agent.is_file() and not run.agent.exists()
    assert main(["convert", str(run.path), "--trust"]) == 0
    assert str(run.agent) in capsys.readouterr().out
    assert not run.legacy_agent.exists() and (run.agent / "agent.json").is_file()
    assert main(["eval", str(run.path), "--episodes", "2", "--seed", "7"]) == 0
    shown = capsys.readouterr().out.splitlines()[-1].split()
    result = prefgym.runs.evaluate(run.path, episodes=2, seed=7)
    assert shown == [format_table(["x"], [[result[k]]]).split()[-1] for k in KEYS]


@pytest.mark.parametrize("value", ["-3", "soon", "nan"])
@pytest.mark.parametrize("command", [["train"], ["text", "train"]])
def test_a_bad_max_wait_is_named_and_leaves_no_run(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    err = _error([*command, "--oracle", "human", "--max-wait", value, "--out", str(out)], capsys)
    assert err.count("\n") == 1 and err.startswith("prefgym: error: ")
    assert f"--max-wait {value!r} is not a number of seconds >= 0" in err
    assert not out.exists()


def test_max_wait_reaches_the_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[object] = []

    def start(config: TrainConfig, out: object, **kwargs: object) -> RunDir:
        waits.append(kwargs["max_wait"])
        raise ValueError("not training in this test")

    monkeypatch.setattr(prefgym.runs, "train", start)
    _error(["train", "--oracle", "human", "--max-wait", "90"], capsys)
    _error(["train", "--oracle", "human"], capsys)
    assert waits == [90.0, None]
