"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym._faces import lazy_face

if TYPE_CHECKING:
    from prefgym.cli._main import (
        TrainConfig,
        evaluate,
        label,
        main,
        report,
        resume,
        set_threads,
        train,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
