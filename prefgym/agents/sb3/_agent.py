"""An SB3 agent behind the loop's ``Agent`` protocol: train, hand over segments, checkpoint.

Checkpoints are safetensors and JSON (:mod:`prefgym.agents.sb3._checkpoint`);
SB3's own zip, which unpickles on load, is read only by :meth:`SB3Agent.load_sb3_zip`
for a file whose maker the caller trusts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from prefgym.agents.sb3._build import (
    AgentConfig,
    make_agent,
    make_vec_env,
    pay_rollout_rewards,
    relabel_replay_buffer,
)
from prefgym.agents.sb3._checkpoint import read_agent_checkpoint, save_agent_checkpoint
from prefgym.agents.sb3._reward_env import LearnedRewardVecEnv
from prefgym.reward import RewardEnsemble
from prefgym.segments import Policy, Segment

_RECENT_EPISODES = 20


class _Progress(BaseCallback):
    """Reports the environment steps of every vectorised step."""

    def __init__(self, report: Callable[[int], None]) -> None:
        super().__init__()
        self.report = report

    def _on_step(self) -> bool:
        self.report(self.training_env.num_envs)
        return True


class PayAtRolloutEnd(BaseCallback):
    """Pays PPO each rollout's learned rewards, computed in one batch when it is complete."""

    def __init__(self, envs: LearnedRewardVecEnv) -> None:
        """Settle ``envs``, the model's deferred ``LearnedRewardVecEnv``, after each rollout."""
        super().__init__()
        self.envs = envs

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        assert isinstance(self.model, PPO)
        rewards = self.envs.settle()
        pay_rollout_rewards(self.model, rewards, self.locals["values"], self.locals["dones"])


class SB3Agent:
    """PPO or SAC training against a learned reward through a ``LearnedRewardVecEnv``."""

    def __init__(
        self, model: BaseAlgorithm, envs: LearnedRewardVecEnv, config: AgentConfig
    ) -> None:
        """Wrap ``model``, built from ``config`` on ``envs``; use :meth:`create` or :meth:`load`."""
        self.model = model
        self.envs = envs
        self.config = config

    @classmethod
    def create(
        cls,
        env_id: str,
        config: AgentConfig,
        *,
        seed: int,
        segment_length: int,
        tensorboard_log: str | None = None,
        pay_true: bool = False,
    ) -> SB3Agent:
        """A fresh agent on ``config.n_envs`` copies of ``env_id``.

        ``pay_true`` pays the task's hidden reward (a true-reward baseline) instead of
        a learned one.
        """
        envs = cls._envs(env_id, config, seed, segment_length, pay_true)
        return cls(make_agent(config, envs, seed, tensorboard_log), envs, config)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        env_id: str,
        config: AgentConfig,
        *,
        seed: int,
        segment_length: int,
        tensorboard_log: str | None = None,
        pay_true: bool = False,
    ) -> SB3Agent:
        """An agent restored from the checkpoint directory :meth:`save` wrote.

        The model is built afresh from ``config`` (seeded with ``seed``) and the saved
        weights, optimizer state and counters are copied into it; nothing is unpickled.

        Raises:
            FileNotFoundError: ``path`` holds no agent checkpoint.
            ValueError: The checkpoint is damaged or does not fit ``config``; the
                message names the file.
        """
        checkpoint = read_agent_checkpoint(path, config)  # checked before anything is built
        agent = cls.create(
            env_id,
            config,
            seed=seed,
            segment_length=segment_length,
            tensorboard_log=tensorboard_log,
            pay_true=pay_true,
        )
        checkpoint.restore(agent.model)
        return agent

    @classmethod
    def load_sb3_zip(
        cls,
        path: str | os.PathLike[str],
        env_id: str,
        config: AgentConfig,
        *,
        seed: int,
        segment_length: int,
    ) -> SB3Agent:
        """An agent from Stable-Baselines3's own zip, which UNPICKLES: it can run any code.

        Only for a file whose maker the caller trusts (``prefgym convert RUN --trust``);
        save the agent with :meth:`save` to leave the pickles behind.
        """
        envs = cls._envs(env_id, config, seed, segment_length)
        algorithm = PPO if config.algo == "ppo" else SAC
        model = algorithm.load(os.fspath(path), env=envs, device=config.device)
        return cls(model, envs, config)

    @staticmethod
    def _envs(
        env_id: str, config: AgentConfig, seed: int, segment_length: int, pay_true: bool = False
    ) -> LearnedRewardVecEnv:
        venv = make_vec_env(env_id, config.n_envs, seed)
        # on-policy: learned rewards are needed at the rollout's end
        deferred = config.algo == "ppo" and not pay_true
        return LearnedRewardVecEnv(
            venv,
            segment_length=None if pay_true else segment_length,
            env_id=env_id,
            deferred=deferred,
            reward_scale=config.reward_scale,
            pay_true=pay_true,
        )

    @property
    def steps(self) -> int:
        """Environment steps trained so far."""
        return int(self.model.num_timesteps)

    def policy(self) -> Policy:
        """The current stochastic policy."""

        def act(observations: np.ndarray) -> np.ndarray:
            actions, _ = self.model.predict(observations, deterministic=False)
            return np.asarray(actions)

        return act

    def set_reward(self, model: RewardEnsemble | None) -> None:
        """Pay ``model``'s step rewards times ``reward_scale`` from now on (None: pay 0).

        SAC's replay buffer is relabelled too.
        """
        self.envs.set_reward_fn(no_reward if model is None else model.step_rewards)
        if isinstance(self.model, SAC):
            relabel_replay_buffer(self.model, self.envs.paid_rewards)

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        """Train ``steps`` more environment steps (PPO rounds up to whole rollouts)."""
        callbacks: list[BaseCallback] = []
        if self.envs.deferred:
            callbacks.append(PayAtRolloutEnd(self.envs))
        if progress is not None:
            callbacks.append(_Progress(progress))
        self.model.learn(steps, callback=CallbackList(callbacks), reset_num_timesteps=False)

    def pop_segments(self) -> list[Segment]:
        """Segments cut from the training rollouts since the last call."""
        return self.envs.pop_segments()

    def recent_metrics(self) -> dict[str, float]:
        """Mean true and learned return of the last finished training episodes (NaN if none)."""
        episodes = self.envs.recent_episodes()[-_RECENT_EPISODES:]
        if not episodes:
            return {"true_return": math.nan, "learned_return": math.nan}
        return {
            "true_return": float(np.mean([e.true_return for e in episodes])),
            "learned_return": float(np.mean([e.learned_return for e in episodes])),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Checkpoint the model into the directory ``path`` (safetensors and JSON), atomically."""
        save_agent_checkpoint(self.model, self.config, path)


def no_reward(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Reward 0 everywhere: what the agent is paid while every judgment is a tie."""
    return np.zeros(len(observations), dtype=np.float32)
