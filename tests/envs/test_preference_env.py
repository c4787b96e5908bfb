from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import prefgym  # noqa: F401  (registers the ids)
from prefgym.envs.registration import ENVS, EnvInfo

_EXTRA_MODULE = {"box2d": "Box2D", "mujoco": "mujoco", "atari": "ale_py"}


def _needs_extra(info: EnvInfo) -> None:
    if info.extra is not None and importlib.util.find_spec(_EXTRA_MODULE[info.extra]) is None:
        pytest.skip(f"{info.id} needs the {info.extra!r} extra")


ENV_PARAMS = [pytest.param(info, id=info.id) for info in ENVS]


def _run(env: gym.Env, steps: int, seed: int) -> tuple[list[np.ndarray], list[float], list[float]]:
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards, true_rewards = [observation], [], []
    for _ in range(steps):
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        observations.append(observation)
        rewards.append(float(reward))
        true_rewards.append(info["true_reward"])
        if terminated or truncated:
            break
    return observations, rewards, true_rewards


@pytest.mark.parametrize("info", ENV_PARAMS)
def test_passes_gymnasium_env_checker(info: EnvInfo) -> None:
    _needs_extra(info)
    env = gym.make(info.id, render_mode="rgb_array")
    check_env(env.unwrapped)


@pytest.mark.parametrize("info", ENV_PARAMS)
def test_is_deterministic_under_a_seed(info: EnvInfo) -> None:
    _needs_extra(info)
    first = _run(gym.make(info.id), 60, seed=3)
    second = _run(gym.make(info.id), 60, seed=3)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[2] == second[2]


@pytest.mark.parametrize("info", ENV_PARAMS)
def test_hides_the_reward_and_reports_it_in_info(info: EnvInfo) -> None:
    _needs_extra(info)
    if info.family == "atari":
        pytest.skip("60 random Atari steps rarely score; tests/envs/test_atari.py covers it")
    _, rewards, true_rewards = _run(gym.make(info.id), 60, seed=0)
    assert set(rewards) == {0.0}
    assert any(r != 0.0 for r in true_rewards)


@pytest.mark.parametrize("info", ENV_PARAMS)
def test_renders_rgb_frames(info: EnvInfo) -> None:
    _needs_extra(info)
    env = gym.make(info.id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.std() > 0, "the frame is blank"
    env.close()


def test_classic_control_renders_to_a_human_window() -> None:
    env = gym.make("prefgym/CartPole-v1", render_mode="human")
    env.reset(seed=0)
    env.step(0)
    env.close()


def test_cartpole_has_a_fixed_horizon_and_a_failure_penalty() -> None:
    env = gym.make("prefgym/CartPole-v1")
    env.reset(seed=0)
    failures, true_return = 0, 0.0
    for step in range(1, 501):
        _, _, terminated, truncated, info = env.step(0)  # always push left: falls fast
        assert not terminated
        assert truncated == (step == 500)
        failures += info.get("failure", False)
        true_return += info["true_reward"]
    assert failures > 10
    # each failure costs its penalty step (-10) instead of a step upright (+1)
    assert true_return == pytest.approx(500 - 11.0 * failures)


def test_a_failure_is_shown_for_one_step_with_the_penalty_then_the_task_restarts() -> None:
    env = gym.make("prefgym/CartPole-v1")
    env.reset(seed=0)
    for _ in range(100):
        fallen, _, _, _, info = env.step(0)
        if abs(fallen[2]) > 0.2095:  # past CartPole's failure angle
            break
    assert "failure" not in info and info["true_reward"] == 1.0
    restarted, _, terminated, _, info = env.step(1)  # the action is ignored
    assert not terminated and info == {"true_reward": -10.0, "failure": True}
    assert np.all(np.abs(restarted) <= 0.05)  # CartPole's reset state
    _, _, _, _, info = env.step(1)
    assert info["true_reward"] == 1.0


def test_keep_termination_restores_the_original_episode_end() -> None:
    env = gym.make("prefgym/CartPole-v1", keep_termination=True)
    env.reset(seed=0)
    for _ in range(100):
        _, _, terminated, _, _ = env.step(0)
        if terminated:
            break
    assert terminated


def test_reaching_the_goal_is_absorbing() -> None:
    env = gym.make("prefgym/MountainCarContinuous-v0")
    env.reset(seed=0)
    env.unwrapped.base.state = np.array([0.44, 0.06])  # one push from the flag
    observation, _, terminated, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert not terminated and info["true_reward"] > 90  # the goal bonus, once
    for _ in range(5):
        after, _, terminated, _, info = env.step(np.array([-1.0], dtype=np.float32))
        assert not terminated and info["true_reward"] == 0.0
        np.testing.assert_array_equal(after, observation)


def test_rejects_an_unknown_termination_mode() -> None:
    with pytest.raises(ValueError, match="termination must be one of"):
        gym.make("prefgym/CartPole-v1", termination="explode")


def test_acrobots_hidden_reward_is_shaped_by_its_energy() -> None:
    from prefgym.envs.preference_env import acrobot_energy

    env = gym.make("prefgym/Acrobot-v1")
    first, _ = env.reset(seed=0)
    assert acrobot_energy(first) == pytest.approx(0.0, abs=0.2)  # hanging, nearly at rest
    assert acrobot_energy(np.array([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0])) == pytest.approx(39.2)
    env.action_space.seed(0)
    true_return, observation = 0.0, first
    for _ in range(50):
        observation, _, _, _, info = env.step(env.action_space.sample())
        true_return += info["true_reward"]
    # -1 a step, plus 0.1 x the energy gained: the shaping telescopes
    gained = acrobot_energy(observation) - acrobot_energy(first)
    assert true_return == pytest.approx(-50 + 0.1 * gained)

    plain = gym.make("prefgym/Acrobot-v1", shaping=0.0)
    plain.reset(seed=0)
    assert plain.step(0)[4]["true_reward"] == -1.0


def test_shaping_needs_a_task_with_a_potential() -> None:
    with pytest.raises(ValueError, match="'CartPole-v1' has none; leave shaping at 0"):
        gym.make("prefgym/CartPole-v1", shaping=1.0)
