"""The Stable-Baselines3 driver: PPO or SAC trained against a learned reward.

:func:`make_vec_env` builds the training envs, :func:`make_agent` the algorithm
(wrap the envs in :class:`~prefgym.agents.sb3._reward_env.LearnedRewardVecEnv`
first), :func:`pay_rollout_rewards` hands PPO a rollout's learned rewards
computed in one batch at its end, :func:`relabel_replay_buffer` rewrites SAC's
stored rewards after the reward model is refitted (as PEBBLE does), and :func:`evaluate_true_return`
scores the deterministic policy by the hidden true reward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import prefgym
from prefgym.agents.sb3._pixel_features import policy_kwargs_for
from prefgym.agents.sb3.config import AgentConfig
from prefgym.reward import is_image_space
from prefgym.segments import TRUE_REWARD_KEY, RewardFn


def make_vec_env(
    env_id: str, n_envs: int, seed: int, *, env_kwargs: dict[str, Any] | None = None
) -> VecEnv:
    """``n_envs`` copies of ``env_id`` in an SB3 ``DummyVecEnv``.

    Args:
        env_id: A registered id, e.g. ``"prefgym/CartPole-v1"``.
        n_envs: Number of environments.
        seed: Env ``i`` is reset with seed ``seed + i`` on the first reset.
        env_kwargs: Passed to ``gymnasium.make``.

    Returns:
        The vectorised envs; wrap them in ``LearnedRewardVecEnv`` to pay a learned reward.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    prefgym.register_envs()
    kwargs = dict(env_kwargs or {})

    def make() -> gym.Env[Any, Any]:
        return gym.make(env_id, **kwargs)

    venv = DummyVecEnv([make] * n_envs)
    venv.seed(seed)
    return venv


def make_agent(
    config: AgentConfig, venv: VecEnv, seed: int, tensorboard_log: str | None = None
) -> BaseAlgorithm:
    """Build PPO or SAC on ``venv``: a CNN policy for image observations, else an MLP.

    Args:
        config: The hyper-parameters; ``config.n_envs`` must match ``venv``.
        venv: The training envs, usually a ``LearnedRewardVecEnv``.
        seed: Seeds the networks, the action sampling and the envs' next reset.
        tensorboard_log: Directory for SB3's TensorBoard logs, or None.

    Returns:
        The untrained algorithm; call ``learn`` on it.
    """
    if venv.num_envs != config.n_envs:
        raise ValueError(
            f"venv has {venv.num_envs} envs but config.n_envs is {config.n_envs}; "
            "build the envs with make_vec_env(env_id, config.n_envs, seed)"
        )
    policy = "MlpPolicy"
    policy_kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if is_image_space(venv.observation_space):
        policy = "CnnPolicy"  # SB3 moves channel-last images to channel-first itself
        policy_kwargs = policy_kwargs_for(config.cnn, config.net_arch)
    if config.use_sde and not isinstance(venv.action_space, spaces.Box):
        raise ValueError(
            f"use_sde needs a Box action space, got {venv.action_space}; set use_sde=False"
        )
    common: dict[str, Any] = {
        "use_sde": config.use_sde,
        "sde_sample_freq": config.sde_sample_freq,
        "learning_rate": config.learning_rate,
        "gamma": config.gamma,
        "policy_kwargs": policy_kwargs,
        "tensorboard_log": tensorboard_log,
        "seed": seed,
        "device": config.device,
        "verbose": 0,
    }
    if config.algo == "ppo":
        return PPO(
            policy,
            venv,
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            gae_lambda=config.gae_lambda,
            clip_range=config.clip_range,
            ent_coef=config.ent_coef,
            vf_coef=config.vf_coef,
            max_grad_norm=config.max_grad_norm,
            **common,
        )
    if not isinstance(venv.action_space, spaces.Box):
        raise ValueError(
            f"SAC needs a Box action space, got {venv.action_space}; use algo='ppo' for "
            "discrete actions"
        )
    return SAC(
        policy,
        venv,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.sac_batch_size,
        tau=config.tau,
        train_freq=config.train_freq,
        gradient_steps=config.gradient_steps,
        ent_coef=config.sac_ent_coef,
        **common,
    )


def pay_rollout_rewards(
    model: PPO, rewards: np.ndarray, last_values: torch.Tensor, dones: np.ndarray
) -> None:
    """Add ``rewards`` to PPO's finished rollout and recompute its returns and advantages.

    Call it when the rollout is complete (a callback's ``on_rollout_end``) with the
    rewards of a deferred :class:`~prefgym.agents.sb3._reward_env.LearnedRewardVecEnv`,
    which paid 0 during the rollout. The rewards are added, not written over, so the
    value of a time-limited episode's last observation, which SB3 added to the reward
    of that step, is kept.

    Args:
        model: The PPO model whose ``rollout_buffer`` holds the finished rollout.
        rewards: Learned rewards ``(n_steps, n_envs)``, in step order.
        last_values: The value estimates of the observations after the rollout,
            ``values`` in ``collect_rollouts``.
        dones: Whether each env's episode ended at the rollout's last step.
    """
    buffer = model.rollout_buffer
    if rewards.shape != buffer.rewards.shape:
        raise ValueError(
            f"rewards must have the rollout's shape (n_steps, n_envs) = {buffer.rewards.shape}, "
            f"got {rewards.shape}; settle the wrapper once per rollout, at its end"
        )
    buffer.rewards += rewards
    buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)


def relabel_replay_buffer(model: SAC, reward_fn: RewardFn, batch_size: int = 4096) -> int:
    """Rewrite the reward of every stored transition with ``reward_fn`` (PEBBLE's relabelling).

    The buffer holds ``(buffer_size, n_envs)`` transitions, filled up to ``pos``
    unless ``full``; unfilled slots are left alone. Box actions are stored scaled
    to ``[-1, 1]`` and are unscaled before ``reward_fn`` sees them, so it gets
    the actions the envs received, as in ``LearnedRewardVecEnv``.

    Args:
        model: An off-policy SB3 algorithm with a (non-dict) replay buffer.
        reward_fn: Observations ``(n, *obs_shape)``, actions ``(n, *act_shape)`` to ``(n,)``.
        batch_size: Transitions per call to ``reward_fn``.

    Returns:
        The number of transitions relabelled.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    buffer = model.replay_buffer
    if buffer is None:
        raise ValueError("the model has no replay buffer; relabel an off-policy model (SAC)")
    if isinstance(buffer, DictReplayBuffer):
        raise TypeError("dict observation spaces are not supported; flatten the observations")
    rows = buffer.buffer_size if buffer.full else buffer.pos
    n = rows * buffer.n_envs
    observations = buffer.observations[:rows].reshape(n, *buffer.obs_shape)
    actions = buffer.actions[:rows].reshape(n, buffer.action_dim)
    rewards = np.empty(n, dtype=np.float32)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch_actions = actions[start:stop]
        if isinstance(model.action_space, spaces.Box):
            batch_actions = model.policy.unscale_action(batch_actions)
            batch_actions = batch_actions.reshape(-1, *model.action_space.shape)
        batch_rewards = np.asarray(reward_fn(observations[start:stop], batch_actions))
        if batch_rewards.shape != (stop - start,):
            raise ValueError(
                f"reward_fn must return shape ({stop - start},) for {stop - start} transitions, "
                f"got {batch_rewards.shape}"
            )
        rewards[start:stop] = batch_rewards
    buffer.rewards[:rows] = rewards.reshape(rows, buffer.n_envs)
    return n


def policy_fn(model: BaseAlgorithm) -> Callable[[np.ndarray], np.ndarray]:
    """The model's deterministic policy.

    Returns:
        A function from observations ``(n, *obs_shape)`` to actions ``(n, *act_shape)``.
    """

    def act(observations: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(observations, deterministic=True)
        return np.asarray(actions)

    return act


def evaluate_true_return(
    model: BaseAlgorithm, env_id: str, episodes: int, seed: int
) -> tuple[float, float, list[float]]:
    """Run the deterministic policy for ``episodes`` episodes and sum ``info["true_reward"]``.

    The episodes run side by side on fresh envs, episode ``k`` reset with seed
    ``seed + k``, so the result depends only on the model and the seed.

    Returns:
        The mean and standard deviation of the true returns, and the returns.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    prefgym.register_envs()
    act = policy_fn(model)
    envs = [gym.make(env_id) for _ in range(episodes)]
    try:
        observations = np.stack([env.reset(seed=seed + k)[0] for k, env in enumerate(envs)])
        returns = np.zeros(episodes, dtype=np.float64)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            active = np.flatnonzero(running)
            actions = act(observations[active])
            for env_index, action in zip(active, actions, strict=True):
                obs, _, terminated, truncated, info = envs[env_index].step(action)
                if TRUE_REWARD_KEY not in info:
                    raise KeyError(
                        f"{env_id!r} reports no {TRUE_REWARD_KEY!r} in its info; evaluate "
                        "on a prefgym/ env such as 'prefgym/CartPole-v1'"
                    )
                returns[env_index] += float(info[TRUE_REWARD_KEY])
                observations[env_index] = obs
                running[env_index] = not (terminated or truncated)
    finally:
        for env in envs:
            env.close()
    return float(returns.mean()), float(returns.std()), returns.tolist()
