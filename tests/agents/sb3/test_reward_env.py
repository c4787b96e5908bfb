from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

import prefgym  # noqa: F401  (registers the prefgym/ ids)
from prefgym.agents.sb3 import EpisodeRecord, LearnedRewardVecEnv

HORIZON = 7
ENV_IDS = ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"]


def make_venv(env_id: str, n_envs: int, seed: int, horizon: int | None = HORIZON) -> DummyVecEnv:
    kwargs: dict[str, Any] = {} if horizon is None else {"max_episode_steps": horizon}
    venv = DummyVecEnv([lambda: gym.make(env_id, **kwargs)] * n_envs)
    venv.seed(seed)
    return venv


def step(
    venv: LearnedRewardVecEnv, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    venv.step_async(actions)
    return venv.step_wait()


def obs_plus_action(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """A reward that depends on both arguments: obs[:, 0] + the action (summed over its axes)."""
    return observations[:, 0] + actions.reshape(len(actions), -1).sum(axis=1)


def random_actions(space: gym.Space[Any], n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, int(space.n), size=n)
    assert isinstance(space, spaces.Box)
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32)


def pendulum_true_reward(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Pendulum's own reward, computed from the observation before the step and the action."""
    theta = np.arctan2(observations[:, 1], observations[:, 0])
    torque = np.clip(actions[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * observations[:, 2] ** 2 + 0.001 * torque**2)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rewards_are_reward_fn_of_pre_step_observation_against_manual_rollout(
    env_id: str, rng: np.random.Generator
) -> None:
    n_envs, seed, n_steps = 2, 3, 3 * HORIZON + 2
    venv = LearnedRewardVecEnv(make_venv(env_id, n_envs, seed), obs_plus_action)
    manual = [gym.make(env_id, max_episode_steps=HORIZON) for _ in range(n_envs)]
    manual_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(manual)]
    obs = venv.reset()
    np.testing.assert_array_equal(obs, np.stack(manual_obs))
    n_dones = 0
    for _ in range(n_steps):
        actions = random_actions(venv.action_space, n_envs, rng)
        expected = obs_plus_action(np.stack(manual_obs), actions).astype(np.float32)
        venv.step_async(actions)
        obs, rewards, dones, infos = venv.step_wait()
        np.testing.assert_array_equal(rewards, expected)
        for i, env in enumerate(manual):
            manual_obs[i], _, terminated, truncated, info = env.step(actions[i])
            assert dones[i] == (terminated or truncated)
            assert infos[i]["true_reward"] == info["true_reward"]
            if dones[i]:
                n_dones += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], manual_obs[i])
                manual_obs[i], _ = env.reset()
        np.testing.assert_array_equal(obs, np.stack(manual_obs))
    assert n_dones == 3 * n_envs


def test_finishing_step_reward_uses_pre_step_observation_not_terminal_or_reset() -> None:
    # Pendulum's true reward is a function of (o_t, a_t): a reward_fn reproducing it must
    # match info["true_reward"] on every step, the finishing ones included.
    venv = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 3, 0), pendulum_true_reward)
    venv.reset()
    rng = np.random.default_rng(1)
    finishing = 0
    for _ in range(2 * HORIZON):
        actions = random_actions(venv.action_space, 3, rng)
        _, rewards, dones, infos = venv.step(actions)
        true = np.array([info["true_reward"] for info in infos])
        np.testing.assert_allclose(rewards, true, rtol=1e-4, atol=1e-4)
        for i in np.flatnonzero(dones):
            finishing += 1
            wrong = pendulum_true_reward(infos[i]["terminal_observation"][None], actions[i : i + 1])
            assert not np.isclose(rewards[i], wrong[0], rtol=1e-4, atol=1e-4)
    assert finishing == 2 * 3


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episode_returns_and_recent_episodes(env_id: str, rng: np.random.Generator) -> None:
    n_envs = 2
    venv = LearnedRewardVecEnv(make_venv(env_id, n_envs, 0), obs_plus_action, max_episodes=3)
    venv.reset()
    true_sums, learned_sums = np.zeros(n_envs), np.zeros(n_envs)
    expected: list[EpisodeRecord] = []
    for _ in range(2 * HORIZON + 3):
        _, rewards, dones, infos = venv.step(random_actions(venv.action_space, n_envs, rng))
        true_sums += [info["true_reward"] for info in infos]
        learned_sums += rewards
        for i in range(n_envs):
            if dones[i]:
                assert infos[i]["episode_true_return"] == pytest.approx(true_sums[i])
                assert infos[i]["episode_learned_return"] == pytest.approx(learned_sums[i])
                expected.append(EpisodeRecord(true_sums[i], learned_sums[i], HORIZON))
                true_sums[i] = learned_sums[i] = 0.0
            else:
                assert "episode_true_return" not in infos[i]
                assert "episode_learned_return" not in infos[i]
    assert len(expected) == 4
    recent = venv.recent_episodes()
    assert len(recent) == 3  # max_episodes keeps the most recent
    for got, want in zip(recent, expected[-3:], strict=True):
        assert got.true_return == pytest.approx(want.true_return)
        assert got.learned_return == pytest.approx(want.learned_return)
        assert got.length == HORIZON
    assert venv.total_steps == n_envs * (2 * HORIZON + 3)


def test_reset_drops_unfinished_episode(rng: np.random.Generator) -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 1, 0), obs_plus_action)
    venv.reset()
    for _ in range(3):
        venv.step(random_actions(venv.action_space, 1, rng))
    venv.reset()
    true_sum = 0.0
    for _ in range(HORIZON):
        _, _, dones, infos = venv.step(random_actions(venv.action_space, 1, rng))
        true_sum += infos[0]["true_reward"]
    assert dones[0]
    (record,) = venv.recent_episodes()
    assert record.length == HORIZON
    assert record.true_return == pytest.approx(true_sum)


def test_no_reward_fn_pays_zero_and_set_reward_fn_swaps(rng: np.random.Generator) -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 2, 0))
    assert venv.reward_fn is None
    venv.reset()
    _, rewards, _, infos = venv.step(random_actions(venv.action_space, 2, rng))
    np.testing.assert_array_equal(rewards, np.zeros(2, dtype=np.float32))
    assert all(info["true_reward"] == 1.0 for info in infos)

    venv.set_reward_fn(lambda obs, act: np.full(len(obs), 2.5))
    _, rewards, _, _ = venv.step(random_actions(venv.action_space, 2, rng))
    np.testing.assert_array_equal(rewards, [2.5, 2.5])
    assert rewards.dtype == np.float32

    obs = venv.reset()
    venv.set_reward_fn(obs_plus_action)
    actions = random_actions(venv.action_space, 2, rng)
    _, rewards, _, _ = venv.step(actions)
    np.testing.assert_array_equal(rewards, obs_plus_action(obs, actions).astype(np.float32))


def test_reward_fn_is_called_once_per_step_with_the_whole_batch(rng: np.random.Generator) -> None:
    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def recording(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        shapes.append((observations.shape, actions.shape))
        return np.zeros(len(observations))

    venv = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 3, 0), recording)
    venv.reset()
    for _ in range(4):
        venv.step(random_actions(venv.action_space, 3, rng))
    assert shapes == [((3, 3), (3, 1))] * 4


def test_reward_fn_with_wrong_shape_is_rejected(rng: np.random.Generator) -> None:
    venv = LearnedRewardVecEnv(
        make_venv("prefgym/CartPole-v1", 2, 0), lambda o, a: np.zeros((2, 1))
    )
    venv.reset()
    with pytest.raises(ValueError, match=r"shape \(2,\), got shape \(2, 1\)"):
        venv.step(random_actions(venv.action_space, 2, rng))


def test_env_without_true_reward_fails_on_first_step_with_a_hint() -> None:
    venv = LearnedRewardVecEnv(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    venv.reset()
    with pytest.raises(KeyError, match=r"'true_reward'.*prefgym/"):
        venv.step(np.array([0]))


def test_step_before_reset_is_an_error() -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 1, 0))
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.array([0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"segment_length": 0}, "segment_length must be >= 1 or None, got 0"),
        ({"max_segments": 0}, "max_segments must be >= 1, got 0"),
        ({"max_episodes": -1}, "max_episodes must be >= 1, got -1"),
        ({"reward_scale": 0.0}, "reward_scale must be a finite number > 0, got 0.0"),
        ({"reward_scale": float("nan")}, "reward_scale must be a finite number > 0, got nan"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 1, 0), **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_segments_match_the_rollout_and_never_span_a_reset(
    env_id: str, rng: np.random.Generator
) -> None:
    n_envs, length, n_steps = 2, 3, 3 * HORIZON
    venv = LearnedRewardVecEnv(make_venv(env_id, n_envs, 0), obs_plus_action, segment_length=length)
    obs = venv.reset()
    # per env, the current episode's (observation, action, true reward) steps
    episodes: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n_envs)]
    expected = []
    for _ in range(n_steps):
        actions = random_actions(venv.action_space, n_envs, rng)
        next_obs, _, dones, infos = step(venv, actions)
        for i in range(n_envs):
            episodes[i].append((obs[i], actions[i], infos[i]["true_reward"]))
            if len(episodes[i]) % length == 0:
                expected.append(episodes[i][-length:])
            if dones[i]:
                episodes[i] = []
        obs = next_obs

    segments = venv.pop_segments()
    # an episode of 7 steps gives two segments of 3; its 7th step is dropped
    assert len(segments) == len(expected) == n_envs * 3 * (HORIZON // length)
    for segment, steps in zip(segments, expected, strict=True):
        assert segment.length == length
        assert segment.env_id == env_id
        np.testing.assert_array_equal(segment.observations, np.stack([s[0] for s in steps]))
        np.testing.assert_array_equal(segment.actions, np.stack([s[1] for s in steps]))
        assert segment.true_return == pytest.approx(sum(s[2] for s in steps))
    assert venv.pop_segments() == []


def test_segment_longer_than_remaining_episode_is_dropped(rng: np.random.Generator) -> None:
    # length 4 on a 7-step horizon: steps 4..7 would run into the next episode
    venv = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 1, 0), segment_length=4)
    obs = venv.reset()
    first_observations = [obs[0]]
    for t in range(2 * HORIZON):
        obs, _, dones, _ = step(venv, random_actions(venv.action_space, 1, rng))
        if dones[0]:
            first_observations.append(obs[0])
        assert dones[0] == (t % HORIZON == HORIZON - 1)
    segments = venv.pop_segments()
    assert len(segments) == 2
    for segment, first in zip(segments, first_observations[:2], strict=True):
        np.testing.assert_array_equal(segment.observations[0], first)


def test_pop_segments_keeps_the_most_recent_max_segments(rng: np.random.Generator) -> None:
    venv = LearnedRewardVecEnv(
        make_venv("prefgym/CartPole-v1", 2, 0, horizon=None), segment_length=2, max_segments=3
    )
    venv.reset()
    for _ in range(10):
        venv.step(random_actions(venv.action_space, 2, rng))
    segments = venv.pop_segments()
    # 2 segments (one per env) complete every 2nd step; total_steps counts both envs
    assert [s.info["total_steps"] for s in segments] == [16, 20, 20]
    assert venv.pop_segments() == []
    venv.step(random_actions(venv.action_space, 2, rng))
    venv.step(random_actions(venv.action_space, 2, rng))
    assert len(venv.pop_segments()) == 2


def test_no_segments_without_segment_length(rng: np.random.Generator) -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 2, 0))
    venv.reset()
    for _ in range(5):
        venv.step(random_actions(venv.action_space, 2, rng))
    assert venv.pop_segments() == []


def test_env_id_is_read_from_the_wrapped_envs() -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 1, 0))
    assert venv.env_id == "prefgym/CartPole-v1"
    assert LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 1, 0), env_id="x").env_id == "x"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_deferred_rewards_settle_to_the_per_step_rewards(
    env_id: str, rng: np.random.Generator
) -> None:
    n_envs, n_steps = 3, 2 * HORIZON + 3
    now = LearnedRewardVecEnv(make_venv(env_id, n_envs, 5), obs_plus_action)
    later = LearnedRewardVecEnv(
        make_venv(env_id, n_envs, 5), obs_plus_action, deferred=True, settle_batch=4
    )
    now.reset()
    later.reset()
    paid = []
    for _ in range(n_steps):
        actions = random_actions(now.action_space, n_envs, rng)
        _, rewards, dones, infos = step(now, actions)
        _, zeros, later_dones, later_infos = step(later, actions)
        paid.append(rewards)
        np.testing.assert_array_equal(zeros, 0.0)
        np.testing.assert_array_equal(dones, later_dones)
        for info, later_info in zip(infos, later_infos, strict=True):
            assert info.get("episode_true_return") == later_info.get("episode_true_return")
            assert "episode_learned_return" not in later_info
    assert later.unsettled_steps == n_steps
    assert later.recent_episodes() == []  # learned returns are known once settled
    np.testing.assert_allclose(later.settle(), np.stack(paid), rtol=1e-6)
    assert later.unsettled_steps == 0
    assert later.settle().shape == (0, n_envs)
    assert len(later.recent_episodes()) == 2 * n_envs
    for a, b in zip(now.recent_episodes(), later.recent_episodes(), strict=True):
        assert (a.true_return, a.length) == (b.true_return, b.length)
        assert a.learned_return == pytest.approx(b.learned_return, rel=1e-5)


@pytest.mark.parametrize("deferred", [False, True])
def test_reward_scale_multiplies_what_the_agent_is_paid(
    deferred: bool, rng: np.random.Generator
) -> None:
    plain = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 2, 3), obs_plus_action)
    scaled = LearnedRewardVecEnv(
        make_venv("prefgym/Pendulum-v1", 2, 3), obs_plus_action, deferred=deferred, reward_scale=0.1
    )
    plain.reset()
    scaled.reset()
    paid, scaled_paid = [], []
    for _ in range(HORIZON):
        actions = random_actions(plain.action_space, 2, rng)
        paid.append(step(plain, actions)[1])
        scaled_paid.append(step(scaled, actions)[1])
    if deferred:
        scaled_paid = list(scaled.settle())
    np.testing.assert_allclose(np.stack(scaled_paid), 0.1 * np.stack(paid), rtol=1e-6)
    assert scaled.reward_fn is obs_plus_action  # the reward model itself is kept as given
    learned = [e.learned_return for e in scaled.recent_episodes()]
    np.testing.assert_allclose(learned, [0.1 * e.learned_return for e in plain.recent_episodes()])


def test_deferred_rewards_without_a_reward_fn_settle_to_zero() -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 2, 0), deferred=True)
    venv.reset()
    for _ in range(3):
        step(venv, np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(venv.settle(), np.zeros((3, 2)))


def test_settle_rejects_a_reward_fn_of_the_wrong_shape() -> None:
    def per_env_sum(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.zeros(2)  # one reward for each env, not one for each step of each env

    venv = LearnedRewardVecEnv(make_venv("prefgym/CartPole-v1", 2, 0), per_env_sum, deferred=True)
    venv.reset()
    for _ in range(3):
        step(venv, np.zeros(2, dtype=np.int64))
    match = r"one reward per \(observation, action\) pair, shape \(6,\)"
    with pytest.raises(ValueError, match=match):
        venv.settle()


def test_pay_true_pays_the_hidden_reward_and_records_episodes_alike(
    rng: np.random.Generator,
) -> None:
    venv = LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 2, 0), pay_true=True)
    venv.reset()
    paid, hidden = [], []
    for _ in range(HORIZON):
        _, rewards, _, infos = step(venv, random_actions(venv.action_space, 2, rng))
        paid.append(rewards)
        hidden.append([info["true_reward"] for info in infos])
    np.testing.assert_allclose(paid, np.array(hidden, dtype=np.float32))
    assert np.asarray(paid).std() > 0  # Pendulum's reward varies: not a constant that matches
    episodes = venv.recent_episodes()
    assert len(episodes) == 2
    assert episodes[0].true_return == pytest.approx(episodes[0].learned_return)
    with pytest.raises(ValueError, match="pay_true pays the hidden reward"):
        LearnedRewardVecEnv(make_venv("prefgym/Pendulum-v1", 1, 0), obs_plus_action, pay_true=True)
