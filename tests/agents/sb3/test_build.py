from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from prefgym.agents.sb3 import (
    AgentConfig,
    Algo,
    LearnedRewardVecEnv,
    evaluate_true_return,
    make_agent,
    make_vec_env,
    pay_rollout_rewards,
    policy_fn,
    relabel_replay_buffer,
)
from tests.agents.sb3.helpers import CARTPOLE, PENDULUM, obs_plus_action, pendulum_reward, stored

# PPO settings that learn CartPole within ~20k steps (after RL Zoo's CartPole settings)
FAST_CARTPOLE = AgentConfig(
    n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
    learning_rate=1e-3,
)  # fmt: skip


def upright(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """A learnable stand-in for a CartPole reward model: 1 upright, 0 at the failure angle,
    and the penalty in the fallen state that the env shows for one step after a failure."""
    angle = np.abs(observations[:, 2])
    return np.where(angle > 0.2095, -10.0, 1.0 - angle / 0.21)


def random_policy_true_return(env_id: str, seeds: range) -> float:
    returns = []
    for seed in seeds:
        env = gym.make(env_id)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        total, done = 0.0, False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            total += info["true_reward"]
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


# --- AgentConfig -------------------------------------------------------------------------


def test_ppo_batch_size_is_not_checked_for_sac() -> None:
    assert AgentConfig(algo="sac", n_steps=100, batch_size=64).n_steps == 100


# --- make_vec_env ------------------------------------------------------------------------


def test_make_vec_env_is_seeded() -> None:
    venv = make_vec_env(PENDULUM, 3, seed=5)
    assert isinstance(venv, DummyVecEnv)
    assert venv.num_envs == 3
    first = np.asarray(venv.reset())
    assert len({tuple(row) for row in first}) == 3  # env i gets seed 5 + i
    np.testing.assert_array_equal(first, np.asarray(make_vec_env(PENDULUM, 3, seed=5).reset()))
    assert not np.array_equal(first, np.asarray(make_vec_env(PENDULUM, 3, seed=6).reset()))
    short = make_vec_env(PENDULUM, 1, seed=0, env_kwargs={"max_episode_steps": 2})
    short.reset()
    assert not short.step(np.zeros((1, 1)))[2][0]
    assert short.step(np.zeros((1, 1)))[2][0]


# --- make_agent --------------------------------------------------------------------------


class RolloutRecorder(BaseCallback):
    """Copies PPO's rollout buffer at the end of each rollout, before training reshapes it."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict[str, np.ndarray]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        assert isinstance(self.model, PPO)
        buffer = self.model.rollout_buffer
        names = ("observations", "actions", "rewards", "episode_starts")
        self.rollouts.append({name: getattr(buffer, name).copy() for name in names})


@pytest.mark.parametrize("env_id", [CARTPOLE, PENDULUM])
def test_ppo_learns_through_the_wrapper_without_error(env_id: str) -> None:
    config = AgentConfig(n_envs=2, n_steps=512, batch_size=256, n_epochs=2)
    venv = LearnedRewardVecEnv(make_vec_env(env_id, 2, seed=0), obs_plus_action, segment_length=25)
    model = make_agent(config, venv, seed=0)
    assert isinstance(model, PPO)
    recorder = RolloutRecorder()
    model.learn(3072, callback=recorder)
    assert venv.total_steps == 3072
    assert venv.recent_episodes()  # both envs have fixed horizons <= 1536
    segments = venv.pop_segments()
    assert segments and all(segment.length == 25 for segment in segments)
    # PPO's rollouts hold the learned reward of (pre-step obs, action sent to the env);
    # PPO adds a bootstrap value to the reward of a truncated step, so those are left out
    assert len(recorder.rollouts) == 3
    for rollout in recorder.rollouts:
        actions = rollout["actions"]
        if isinstance(venv.action_space, gym.spaces.Box):
            actions = np.clip(actions, venv.action_space.low, venv.action_space.high)
        observations = rollout["observations"]  # (n_steps, n_envs, obs_dim)
        expected = obs_plus_action(
            observations.reshape(-1, observations.shape[-1]),
            actions.reshape(-1, actions.shape[-1]),
        ).reshape(rollout["rewards"].shape)
        truncated = np.zeros(rollout["rewards"].shape, dtype=bool)
        truncated[:-1] = rollout["episode_starts"][1:] == 1.0
        truncated[-1] = True  # unknown from this rollout alone
        np.testing.assert_allclose(
            rollout["rewards"][~truncated], expected[~truncated], rtol=1e-5, atol=1e-5
        )
        assert (~truncated).sum() >= 2 * 512 - 2 - 2 * 3


def test_sac_on_discrete_actions_is_rejected() -> None:
    venv = make_vec_env(CARTPOLE, 1, seed=0)
    with pytest.raises(ValueError, match="SAC needs a Box action space, got Discrete"):
        make_agent(AgentConfig(algo="sac", n_envs=1), venv, seed=0)


def test_sde_on_discrete_actions_is_rejected() -> None:
    venv = make_vec_env(CARTPOLE, 1, seed=0)
    with pytest.raises(ValueError, match="use_sde needs a Box action space, got Discrete"):
        make_agent(AgentConfig(n_envs=1, use_sde=True), venv, seed=0)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_sde_noise_is_a_function_of_the_state_until_it_is_redrawn(
    algo: Algo,
) -> None:
    config = AgentConfig(algo=algo, n_envs=1, n_steps=16, batch_size=16, use_sde=True)
    model = make_agent(replace(config, sde_sample_freq=4), make_vec_env(PENDULUM, 1, 0), seed=0)
    assert model.use_sde and model.sde_sample_freq == 4
    observations = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (3, 1))
    observations[:, 2] = [0.0, 0.1, 0.2]
    model.policy.reset_noise(1)
    actions, _ = model.predict(observations, deterministic=False)
    again, _ = model.predict(observations, deterministic=False)
    np.testing.assert_array_equal(actions, again)  # one noise matrix: noise is a function of state
    model.policy.reset_noise(1)
    redrawn, _ = model.predict(observations, deterministic=False)
    assert not np.array_equal(redrawn, actions)
    model.learn(32)


def test_n_envs_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="venv has 2 envs but config.n_envs is 4"):
        make_agent(AgentConfig(n_envs=4), make_vec_env(CARTPOLE, 2, seed=0), seed=0)


def test_ppo_improves_true_return_with_a_learnable_reward() -> None:
    venv = LearnedRewardVecEnv(make_vec_env(CARTPOLE, FAST_CARTPOLE.n_envs, seed=0), upright)
    model = make_agent(FAST_CARTPOLE, venv, seed=0)
    model.learn(20_000)
    random_return = random_policy_true_return(CARTPOLE, range(2))  # about 280: ~22 falls
    mean, _, _ = evaluate_true_return(model, CARTPOLE, episodes=4, seed=100)
    assert mean >= 400.0
    assert mean >= random_return + 100.0
    late = [episode.true_return for episode in venv.recent_episodes()[-8:]]
    assert np.mean(late) >= random_return + 100.0


@pytest.mark.slow
def test_sac_learns_pendulum_after_relabelling_its_replay_buffer() -> None:
    # PEBBLE's order: collect under an unknown reward (0), then refit, relabel and go on
    config = AgentConfig(algo="sac", n_envs=1, learning_starts=1000, gamma=0.98)
    venv = LearnedRewardVecEnv(make_vec_env(PENDULUM, 1, seed=0))
    model = make_agent(config, venv, seed=0)
    assert isinstance(model, SAC)
    model.learn(2_000)
    venv.set_reward_fn(pendulum_reward)
    assert relabel_replay_buffer(model, pendulum_reward) == 2_000
    model.learn(6_000, reset_num_timesteps=False)
    mean, _, _ = evaluate_true_return(model, PENDULUM, episodes=4, seed=100)
    assert mean >= -400.0  # a random policy scores about -1200


# --- relabel_replay_buffer ---------------------------------------------------------------


def collect_sac(n_envs: int, buffer_size: int, steps: int) -> tuple[SAC, LearnedRewardVecEnv]:
    config = AgentConfig(
        algo="sac", n_envs=n_envs, buffer_size=buffer_size, learning_starts=10_000
    )  # no update: only collects
    venv = LearnedRewardVecEnv(make_vec_env(PENDULUM, n_envs, seed=0), obs_plus_action)
    model = make_agent(config, venv, seed=0)
    assert isinstance(model, SAC)
    model.learn(steps)
    return model, venv


def test_relabel_rewrites_filled_slots_and_leaves_the_rest() -> None:
    model, _ = collect_sac(n_envs=2, buffer_size=40, steps=2 * 13)
    buffer = model.replay_buffer
    assert buffer is not None and buffer.pos == 13 and not buffer.full
    observations, actions = stored(model, 13)
    # what the wrapper paid online is reward_fn of the stored obs and (unscaled) actions
    np.testing.assert_allclose(
        buffer.rewards[:13].reshape(-1), obs_plus_action(observations, actions), atol=1e-5
    )
    buffer.rewards[13:] = 123.0

    n = relabel_replay_buffer(model, pendulum_reward, batch_size=7)

    assert n == 2 * 13
    np.testing.assert_allclose(
        buffer.rewards[:13], pendulum_reward(observations, actions).reshape(13, 2), rtol=1e-6
    )
    assert np.all(buffer.rewards[13:] == 123.0)


def test_relabel_rewrites_every_slot_of_a_full_buffer() -> None:
    model, _ = collect_sac(n_envs=2, buffer_size=20, steps=2 * 15)  # 15 rows into 10: wrapped
    buffer = model.replay_buffer
    assert buffer is not None and buffer.full and buffer.pos == 5
    n = relabel_replay_buffer(model, pendulum_reward)
    assert n == 20
    observations, actions = stored(model, 10)
    np.testing.assert_allclose(
        buffer.rewards.reshape(-1), pendulum_reward(observations, actions), rtol=1e-6
    )


def test_relabel_checks_reward_fn_shape() -> None:
    model, _ = collect_sac(n_envs=1, buffer_size=10, steps=4)
    with pytest.raises(ValueError, match=r"shape \(4,\) for 4 transitions, got \(4, 1\)"):
        relabel_replay_buffer(model, lambda obs, act: np.zeros((len(obs), 1)))


# --- policy_fn and evaluate_true_return --------------------------------------------------


@pytest.mark.parametrize(("env_id", "action_shape"), [(CARTPOLE, (5,)), (PENDULUM, (5, 1))])
def test_policy_fn_is_deterministic_and_batched(
    env_id: str, action_shape: tuple[int, ...], rng: np.random.Generator
) -> None:
    venv = make_vec_env(env_id, 1, seed=0)
    model = make_agent(AgentConfig(n_envs=1), venv, seed=0)
    act = policy_fn(model)
    observations = np.stack([venv.observation_space.sample() for _ in range(5)])
    actions = act(observations)
    assert actions.shape == action_shape
    np.testing.assert_array_equal(actions, act(observations))
    assert all(venv.action_space.contains(action) for action in actions)


def test_evaluate_true_return_is_deterministic_under_a_seed() -> None:
    model = make_agent(AgentConfig(n_envs=1), make_vec_env(PENDULUM, 1, seed=0), seed=0)
    mean, std, returns = evaluate_true_return(model, PENDULUM, episodes=3, seed=7)
    assert len(returns) == 3
    assert mean == pytest.approx(np.mean(returns))
    assert std == pytest.approx(np.std(returns))
    assert len(set(returns)) == 3  # episode k starts from seed 7 + k
    assert evaluate_true_return(model, PENDULUM, episodes=3, seed=7) == (mean, std, returns)
    assert evaluate_true_return(model, PENDULUM, episodes=3, seed=8)[2] != returns
    # episodes are independent of one another (up to float rounding of the batched policy)
    assert evaluate_true_return(model, PENDULUM, episodes=2, seed=8)[2] == pytest.approx(
        returns[1:], rel=1e-6
    )


def test_evaluate_true_return_sums_the_true_reward() -> None:
    model = make_agent(AgentConfig(n_envs=1), make_vec_env(PENDULUM, 1, seed=0), seed=0)
    _, _, (expected,) = evaluate_true_return(model, PENDULUM, episodes=1, seed=3)
    env = gym.make(PENDULUM)
    obs, _ = env.reset(seed=3)
    total, done = 0.0, False
    while not done:
        action = model.predict(obs[None], deterministic=True)[0][0]
        obs, _, terminated, truncated, info = env.step(action)
        total += info["true_reward"]
        done = terminated or truncated
    assert expected == pytest.approx(total)


def test_evaluate_true_return_needs_a_true_reward() -> None:
    model = make_agent(AgentConfig(n_envs=1), make_vec_env(CARTPOLE, 1, seed=0), seed=0)
    with pytest.raises(KeyError, match="'true_reward'.*prefgym/"):
        evaluate_true_return(model, "CartPole-v1", episodes=1, seed=0)


def test_pay_rollout_rewards_rejects_rewards_of_another_shape() -> None:
    venv = LearnedRewardVecEnv(make_vec_env(CARTPOLE, 2, seed=0), deferred=True)
    model = make_agent(AgentConfig(n_envs=2, n_steps=16, batch_size=8), venv, seed=0)
    assert isinstance(model, PPO)
    with pytest.raises(ValueError, match=r"rollout's shape \(n_steps, n_envs\) = \(16, 2\)"):
        pay_rollout_rewards(model, np.zeros((15, 2)), None, np.zeros(2))  # type: ignore[arg-type]
