"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym._faces import lazy_face

if TYPE_CHECKING:
    from prefgym.agents.sb3._agent import (
        PayAtRolloutEnd,
        SB3Agent,
    )
    from prefgym.agents.sb3._build import (
        AgentConfig,
        Algo,
        evaluate_true_return,
        make_agent,
        make_vec_env,
        pay_rollout_rewards,
        policy_fn,
        relabel_replay_buffer,
    )
    from prefgym.agents.sb3._reward_env import (
        EpisodeRecord,
        LearnedRewardVecEnv,
        TrueRewardVecEnv,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
