"""The preference loop: ask, judge, refit, train on, for control tasks and the text game alike.

``PreferenceLoop`` is the driver; a query source, a plan and an agent (online)
or trainer (offline) are its seams. ``control_loop`` wires the control half
(active pairs from rollouts, the label schedule of Christiano et al. 2017).
``LoopConfig`` (in the cheap ``prefgym.loop.config``) holds the control loop's settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.loop._judging import SegmentCache, judge_pending
    from prefgym.loop._loop import (
        LEARNER_STATE,
        Agent,
        Plan,
        PreferenceLoop,
        QuerySource,
        RewardFitting,
        RoundResult,
        Trainer,
        describe,
    )
    from prefgym.loop._pairs import ActivePairs, RolloutAgent, control_loop
    from prefgym.loop._plans import LabelRounds, StepRounds
    from prefgym.loop._schedule import ATARI_INITIAL_LABELS, ATARI_T0, LabelSchedule
    from prefgym.loop._selection import (
        candidate_pool,
        preference_probabilities,
        score_pairs,
        select_queries,
    )
    from prefgym.loop.config import SELECTIONS, LoopConfig, Selection

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
