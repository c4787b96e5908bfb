"""A person judges pairs in a window: the labeling window, its pure state, key maps and layout.

``run_window(store, labeler)`` opens the window on a preference store until the
person quits; ``LabelingSession`` drives the pure state (``apply(state,
command)``) against the store; ``lay_out`` places everything for a window size.
Only ``LabelWindow``/``run_window`` (and the painter's colours) import pygame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.label._clips import clip_for
    from prefgym.label._keys import (
        KEYMAPS,
        LEGEND,
        MAX_RANKED,
        RANKING_LEGEND,
        TEXT_LEGEND,
        TEXTMAPS,
        command_for_click,
        command_for_key,
        command_for_text,
    )
    from prefgym.label._layout import (
        DEFAULT_SIZE,
        MIN_SIZE,
        Layout,
        check_size,
        font_points,
        lay_out,
        parse_size,
    )
    from prefgym.label._painter import (
        BACKGROUND,
        PANEL,
    )
    from prefgym.label._session import (
        NO_TRAINER,
        LabelingSession,
        PairFeed,
        orphaned_leases,
        window_owner,
    )
    from prefgym.label._state import (
        LOOP_PAUSE,
        POLL_SECONDS,
        SPEEDS,
        TRAINER_SECONDS,
        ChangeSpeed,
        Choose,
        Commit,
        CommitRanking,
        Committed,
        Failed,
        Fetch,
        LabelState,
        Mode,
        PairView,
        Pick,
        PollTrainer,
        Prefetch,
        Quit,
        Release,
        Renew,
        Revert,
        Reverted,
        Scroll,
        Shown,
        Submit,
        Tick,
        TogglePause,
        TrainerSeen,
        Undo,
        Unpick,
        apply,
        initial_state,
    )
    from prefgym.label._window import (
        LabelWindow,
        WindowSummary,
        describe_summary,
        run_window,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
