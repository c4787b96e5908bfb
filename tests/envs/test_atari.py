from __future__ import annotations

import math
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import prefgym  # noqa: F401  (registers the ids)
from prefgym.envs.registration import ATARI_HORIZON, ENVS

pytest.importorskip("ale_py", reason="the Atari tasks need the 'atari' extra")
pytest.importorskip("cv2", reason="the Atari tasks need the 'atari' extra")

from prefgym.envs.atari import SCORE_ROWS, AtariPreferenceEnv  # noqa: E402

ATARI = [pytest.param(info, id=info.id) for info in ENVS if info.family == "atari"]


def _play(env: gym.Env, steps: int, seed: int) -> tuple[list[np.ndarray], list[float]]:
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, true_rewards = [observation], []
    for _ in range(steps):
        observation, reward, terminated, _, info = env.step(env.action_space.sample())
        assert reward == 0.0 and not terminated
        assert "lives" not in info
        observations.append(observation)
        true_rewards.append(info["true_reward"])
    return observations, true_rewards


def _blanked_obs_rows(rows: tuple[int, int]) -> slice:
    """Rows of the 84x84 observation that lie wholly inside the blanked screen rows."""
    start, stop = rows
    return slice(math.ceil(start * 84 / 210), math.floor(stop * 84 / 210))


@pytest.mark.parametrize("info", ATARI)
def test_passes_gymnasium_env_checker(info) -> None:
    env = gym.make(info.id, render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    assert env.spec.max_episode_steps == ATARI_HORIZON
    env.close()


@pytest.mark.parametrize("info", ATARI)
def test_is_deterministic_under_a_seed(info) -> None:
    first = _play(gym.make(info.id), 80, seed=3)
    second = _play(gym.make(info.id), 80, seed=3)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]


@pytest.mark.parametrize("info", ATARI)
def test_blanks_the_score_in_observations_and_frames(info) -> None:
    env = gym.make(info.id, render_mode="rgb_array")
    env.reset(seed=0)
    rows = SCORE_ROWS[info.kwargs["game"]]
    inside = _blanked_obs_rows(rows)
    for _ in range(30):
        observation, *_ = env.step(env.action_space.sample())
        assert not observation[inside].any()
    frame = env.render()
    assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8
    assert not frame[rows[0] : rows[1]].any()
    assert frame.std() > 0, "the frame is blank"
    env.close()


def test_the_score_area_holds_the_score() -> None:
    # unblanked, Pong's score rows change when a point is scored
    env = AtariPreferenceEnv("pong", blank_score=False)
    env.reset(seed=0)
    before = env.ale.getScreenRGB()[:24].copy()
    for _ in range(2000):
        *_, info = env.step(0)
        if info["true_reward"] != 0:
            break
    assert info["true_reward"] != 0
    assert not np.array_equal(env.ale.getScreenRGB()[:24], before)


def test_renders_to_a_human_window() -> None:
    env = gym.make("prefgym/Pong-v5", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.step(0)
    env.close()


@pytest.mark.parametrize("info", ATARI)
def test_hides_the_score_and_reports_it_in_info(info) -> None:
    if info.kwargs["game"] == "enduro":
        pytest.skip("random play scores nothing in Enduro")
    _, true_rewards = _play(gym.make(info.id), 600, seed=0)
    assert any(r != 0.0 for r in true_rewards)


def test_a_game_over_restarts_in_place_or_ends_the_episode() -> None:
    for termination in ("penalty", "keep"):
        env = AtariPreferenceEnv("pong", termination=termination, termination_penalty=-5.0)
        env.reset(seed=0)
        for _ in range(5000):
            _, _, terminated, _, info = env.step(0)  # standing still loses 21-0
            if info.get("game_over"):
                break
        assert info.get("game_over")
        assert terminated == (termination == "keep")
        if termination == "penalty":
            assert info["true_reward"] <= -5.0
            *_, info = env.step(0)
            assert "game_over" not in info


def test_rejects_unknown_games_and_settings() -> None:
    with pytest.raises(ValueError, match="Did you mean 'pong'"):
        AtariPreferenceEnv("ponng")
    with pytest.raises(ValueError, match="termination must be one of"):
        AtariPreferenceEnv("pong", termination="explode")


def test_steps_at_a_useful_speed() -> None:
    env = AtariPreferenceEnv("pong")
    env.reset(seed=0)
    start = time.perf_counter()
    for action in np.random.default_rng(0).integers(env.action_space.n, size=500):
        env.step(action)
    assert 500 / (time.perf_counter() - start) > 300  # ~2,000 steps/s unloaded


@pytest.mark.parametrize("frame_skip", [1, 4])
def test_observations_are_max_pooled_blanked_and_resized(frame_skip: int) -> None:
    import cv2

    env = AtariPreferenceEnv("breakout", frame_skip=frame_skip, repeat_action_probability=0.0)
    env.reset(seed=0)
    for _ in range(5):
        env.step(1)
    state = env.ale.cloneState()
    previous = env.ale.getScreenGrayscale()
    observation, *_ = env.step(3)
    env.ale.restoreState(state)
    screens = [previous]
    for _ in range(frame_skip):
        env.ale.act(env.ale.getMinimalActionSet()[3])
        screens.append(env.ale.getScreenGrayscale())
    frame = np.maximum(screens[-2], screens[-1])
    frame[: SCORE_ROWS["breakout"][1]] = 0
    expected = cv2.resize(frame, (84, 84), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(observation[..., -1], expected)
