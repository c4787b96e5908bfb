"""The ``prefgym`` command line (``main``); what it runs is :mod:`prefgym.runs`.

``TrainConfig``, ``train``, ``resume``, ``evaluate``, ``report``, ``label`` and
``set_threads`` are also here under the names earlier releases used; they are
:mod:`prefgym.runs`'s (``from prefgym.runs import TrainConfig, train``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.cli._main import main
    from prefgym.runs import (
        TrainConfig,
        evaluate,
        label,
        report,
        resume,
        set_threads,
        train,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
