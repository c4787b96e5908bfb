"""The failures that are not bad input, which the command reports with exit status 1."""

from __future__ import annotations

from prefgym.cli._errors import BAD_INPUT, FAILED, describe_failure
from prefgym.errors import Failure, RunInUse
from prefgym.reward import DivergenceError


def test_failures_are_runtime_errors_and_exit_1_while_value_errors_exit_2() -> None:
    for failure in (Failure("disk full"), RunInUse("busy"), DivergenceError("nan")):
        assert isinstance(failure, RuntimeError) and not isinstance(failure, ValueError)
        assert describe_failure(failure) == (FAILED, str(failure))
    assert describe_failure(ValueError("bad seed")) == (BAD_INPUT, "bad seed")
