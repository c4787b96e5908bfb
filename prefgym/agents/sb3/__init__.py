"""Stable-Baselines3 agents trained against a learned reward.

``SB3Agent`` (PPO or SAC) sits behind the loop's agent protocol; its VecEnv
wrapper pays the learned reward in place of the hidden one and cuts segments
from the training rollouts. Settings are in the cheap ``prefgym.agents.sb3.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.agents.sb3._agent import (
        PayAtRolloutEnd,
        SB3Agent,
        no_reward,
    )
    from prefgym.agents.sb3._build import (
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
    from prefgym.agents.sb3.config import ALGOS, AgentConfig, Algo

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
