"""What a run's progress bar says while the loop waits for people's judgments."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def check_max_wait(max_wait: float | None) -> float | None:
    """``max_wait`` (seconds a refit waits for people, None: no limit), or a ValueError."""
    if max_wait is None:
        return None
    if isinstance(max_wait, bool) or not isinstance(max_wait, int | float):
        raise ValueError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
    if math.isnan(max_wait) or max_wait < 0:
        raise ValueError(
            f"max_wait must be >= 0 seconds, got {max_wait} (leave it out to wait as long "
            "as people take)"
        )
    return None if math.isinf(max_wait) else float(max_wait)


def wait_reporter(bar: Any, description: str) -> Callable[[int, float], None]:
    """The loop's ``on_wait`` for a tqdm ``bar``: "waiting for 3 judgments from people (42 s)".

    When the wait is over the description comes back and the bar's clock restarts,
    so the time spent waiting does not drag the rate down and the ETA up.
    """

    def on_wait(pending: int, seconds: float) -> None:
        if pending == 0:
            bar.set_description_str(description, refresh=False)
            bar.unpause()
            bar.refresh()
            return
        s = "s" * (pending != 1)
        bar.set_description_str(
            f"{description}: waiting for {pending} judgment{s} from people ({seconds:.0f} s)",
            refresh=True,
        )

    return on_wait
