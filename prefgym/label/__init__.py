"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.label._clips import clip_for
    from prefgym.label._painter import (
        BACKGROUND,
        PANEL,
    )
    from prefgym.label._session import (
        LabelingSession,
        PairFeed,
    )
    from prefgym.label._state import (
        KEYMAPS,
        LEGEND,
        LOOP_PAUSE,
        POLL_SECONDS,
        SPEEDS,
        TEXT_LEGEND,
        TEXTMAPS,
        ChangeSpeed,
        Choose,
        Commit,
        Committed,
        Failed,
        Fetch,
        LabelState,
        Mode,
        PairView,
        Prefetch,
        Quit,
        Release,
        Revert,
        Reverted,
        Scroll,
        Shown,
        Tick,
        TogglePause,
        Undo,
        apply,
        command_for_click,
        command_for_key,
        command_for_text,
        initial_state,
    )
    from prefgym.label._window import (
        LabelWindow,
        WindowSummary,
        describe_summary,
        run_window,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
