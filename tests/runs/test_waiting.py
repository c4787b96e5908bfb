"""What a run's progress bar says while it waits for people (``prefgym.runs._waiting``)."""

from __future__ import annotations

import io
import math
import time

import pytest
from tqdm import tqdm

from prefgym.runs._waiting import check_max_wait, wait_reporter


def test_max_wait_is_seconds_or_none() -> None:
    assert check_max_wait(None) is None and check_max_wait(math.inf) is None
    assert check_max_wait(0) == 0.0 and check_max_wait(90) == 90.0
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="max_wait must be >= 0 seconds"):
            check_max_wait(bad)
    for bad in ("10", True):
        with pytest.raises(ValueError, match="max_wait must be a number of seconds"):
            check_max_wait(bad)  # type: ignore[arg-type]


def test_the_bar_says_what_it_waits_for_and_its_rate_ignores_the_wait() -> None:
    out = io.StringIO()
    bar = tqdm(total=100, desc="CartPole-v1", file=out, mininterval=0)
    bar.update(10)
    on_wait = wait_reporter(bar, "CartPole-v1")
    on_wait(3, 42.4)
    assert bar.desc == "CartPole-v1: waiting for 3 judgments from people (42 s)"
    on_wait(1, 43.0)
    assert bar.desc == "CartPole-v1: waiting for 1 judgment from people (43 s)"
    before = bar.last_print_t
    time.sleep(0.05)
    on_wait(0, 44.0)  # the wait is over: the description comes back, the clock restarts
    assert bar.desc == "CartPole-v1" and bar.last_print_t > before
    assert "waiting for 3 judgments from people (42 s)" in out.getvalue()
    bar.close()
