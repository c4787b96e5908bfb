"""Fixtures the labeling-window tests share; their helpers are in ``tests/label/windows.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from prefgym.label import LabelWindow
    from prefgym.segments import Segment


@pytest.fixture
def open_window(tmp_path: Path) -> Iterator[Callable[..., LabelWindow]]:
    """``open_window(segments, **session_kwargs)``: a window of ``windows.SIZE`` on a new store
    holding ``segments`` in pair queries; all are closed after the test."""
    from tests.label.windows import SIZE, Windows, fill  # imports pygame: only when used

    windows = Windows(tmp_path, SIZE)

    def make(segments: list[Segment], **kwargs: object) -> LabelWindow:
        return windows.open(lambda store: fill(store, segments), **kwargs)

    yield make
    windows.close()
