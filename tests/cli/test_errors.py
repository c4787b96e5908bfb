"""Every failure of the command is one line with an exit status; --debug shows the traceback."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import subprocess
import sys

import pytest

from prefgym.cli import _main
from prefgym.cli._errors import BAD_INPUT, FAILED, describe_failure
from prefgym.errors import RunInUse
from prefgym.store import StoreError


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (ValueError("labels must be >= 1, got 0"), BAD_INPUT, "labels must be >= 1, got 0"),
        (StoreError("x.sqlite is not a store"), BAD_INPUT, "x.sqlite is not a store"),
        (FileNotFoundError("no run in d"), BAD_INPUT, "no run in d"),
        (
            sqlite3.DatabaseError("database disk image is malformed"),
            BAD_INPUT,
            "the preference store is damaged (database disk image is malformed)",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/r/store.sqlite"),
            BAD_INPUT,
            "permission denied on /r/store.sqlite (Permission denied); make it writable",
        ),
        (
            sqlite3.OperationalError("database is locked"),
            FAILED,
            "the preference store failed: database is locked",
        ),
        (RunInUse("run r is being trained by pid 7"), FAILED, "run r is being trained by pid 7"),
        (RuntimeError("boom\nsecond line"), FAILED, "RuntimeError: boom second line (`prefgym"),
        (OSError(errno.ENOSPC, "No space left on device"), FAILED, "No space left on device"),
    ],
)
def test_each_kind_of_failure_gets_its_status_and_one_line(
    error: Exception, status: int, message: str
) -> None:
    got_status, got = describe_failure(error)
    assert got_status == status and message in got and "\n" not in got


def _failing(error: BaseException) -> None:
    def handler(args: argparse.Namespace) -> int:
        raise error

    return handler  # type: ignore[return-value]


def test_main_prints_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_main, "_list_envs", _failing(RuntimeError("deep inside")))
    assert _main.main(["list-envs"]) == FAILED
    err = capsys.readouterr().err
    assert err.startswith("prefgym: error: RuntimeError: deep inside") and err.count("\n") == 1
    with pytest.raises(RuntimeError, match="deep inside"):
        _main.main(["--debug", "list-envs"])
    monkeypatch.setenv("PREFGYM_DEBUG", "1")
    with pytest.raises(RuntimeError, match="deep inside"):
        _main.main(["list-envs"])


def test_ctrl_c_says_how_to_carry_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_main, "_list_envs", _failing(KeyboardInterrupt()))
    assert _main.main(["list-envs"]) == 130
    assert "every judgment so far is stored" in capsys.readouterr().err


def test_ctrl_c_while_the_command_loads_is_quiet() -> None:
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *a, **k):\n"
        "    if name == 'prefgym.cli._main': raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = interrupted\n"
        "from prefgym.cli.__main__ import run\n"
        "sys.exit(run())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 130
    assert "Traceback" not in result.stderr and result.stderr.strip() == "interrupted"


def test_a_bad_threads_variable_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFGYM_THREADS", "abc")
    assert _main.main(["list-oracles"]) == BAD_INPUT
    err = capsys.readouterr().err
    assert "PREFGYM_THREADS='abc'" in err and err.count("\n") == 1
