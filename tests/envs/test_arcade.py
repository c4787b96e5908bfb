from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import prefgym  # noqa: F401  (registers the ids)
from prefgym.envs.arcade import ArcadeEnv
from prefgym.envs.pixels import FrameStack
from prefgym.envs.registration import ARCADE_HORIZON, ENVS

ARCADE = [pytest.param(info.id, id=info.id) for info in ENVS if info.family == "arcade"]
GAMES = ["pong", "breakout", "enduro"]
STEPS_PER_SECOND = 20_000
"""Target of observation generation, single-threaded, without Gymnasium's wrappers."""


def _play(env: gym.Env, steps: int, seed: int) -> tuple[list[np.ndarray], list[float]]:
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, true_rewards = [observation], []
    for _ in range(steps):
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == 0.0 and not terminated
        observations.append(observation)
        true_rewards.append(info["true_reward"])
    return observations, true_rewards


def _return(game: str, policy: str, steps: int = 1500, seed: int = 0) -> float:
    env = ArcadeEnv(game)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(steps):
        if policy == "expert":
            action = env.game.expert()
        else:
            action = int(rng.integers(env.action_space.n))
        total += env.step(action)[4]["true_reward"]
    return total


def test_three_games_are_registered() -> None:
    ids = [p.values[0] for p in ARCADE]
    expected = ["prefgym/ArcadePong-v0", "prefgym/ArcadeBreakout-v0", "prefgym/ArcadeEnduro-v0"]
    assert ids == expected


@pytest.mark.parametrize("env_id", ARCADE)
def test_passes_gymnasium_env_checker(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 255, (84, 84, 2), np.uint8)


@pytest.mark.parametrize("env_id", ARCADE)
def test_is_deterministic_under_a_seed(env_id: str) -> None:
    first = _play(gym.make(env_id), 300, seed=3)
    second = _play(gym.make(env_id), 300, seed=3)
    other = _play(gym.make(env_id), 300, seed=4)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    assert any(not np.array_equal(a, b) for a, b in zip(first[0], other[0], strict=True))


@pytest.mark.parametrize("env_id", ARCADE)
def test_hides_the_score_and_never_ends_before_the_horizon(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    true_rewards = []
    for step in range(1, ARCADE_HORIZON + 1):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == 0.0 and not terminated
        assert truncated == (step == ARCADE_HORIZON)
        true_rewards.append(info["true_reward"])
    assert any(r != 0.0 for r in true_rewards[:60])


@pytest.mark.parametrize("env_id", ARCADE)
def test_stacks_frames_oldest_first(env_id: str) -> None:
    env = gym.make(env_id, frame_stack=4)
    observation, _ = env.reset(seed=1)
    for k in range(1, 4):  # after a reset every frame is the first one
        np.testing.assert_array_equal(observation[..., k], observation[..., 0])
    for _ in range(20):
        previous = observation
        observation, *_ = env.step(env.action_space.sample())
        np.testing.assert_array_equal(observation[..., :3], previous[..., 1:])
    assert observation[..., 3].std() > 0


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_any_stack_depth_gives_the_same_newest_frame(depth: int) -> None:
    deep, other = ArcadeEnv("pong", frame_stack=4), ArcadeEnv("pong", frame_stack=depth)
    a, _ = deep.reset(seed=2)
    b, _ = other.reset(seed=2)
    assert b.shape == (84, 84, depth)
    for action in [1, 1, 2, 0, 2] * 6:
        a, *_ = deep.step(action)
        b, *_ = other.step(action)
        np.testing.assert_array_equal(a[..., -depth:], b)


def test_frame_stack_rejects_an_empty_stack() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        FrameStack(84, 84, 0)


@pytest.mark.parametrize("env_id", ARCADE)
def test_renders_colour_frames_of_the_newest_observation(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    observation, *_ = env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (84, 84, 3) and frame.dtype == np.uint8
    assert frame.std() > 0
    # the colour frame shows exactly the objects of the gray one
    gray = observation[..., -1]
    for level in np.unique(gray):
        colours = np.unique(frame[gray == level], axis=0)
        assert len(colours) == 1


@pytest.mark.parametrize("env_id", ARCADE)
def test_renders_to_a_human_window(env_id: str) -> None:
    env = gym.make(env_id, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    env.step(0)
    env.close()


@pytest.mark.parametrize("game", GAMES)
def test_the_expert_outscores_random_play(game: str) -> None:
    assert _return(game, "expert") > _return(game, "random") + 5


@pytest.mark.parametrize("game", GAMES)
def test_steps_fast_enough(game: str) -> None:
    env = ArcadeEnv(game)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=3000)
    best = 0.0
    for _ in range(3):  # best of three: other processes share the CPU
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        best = max(best, len(actions) / (time.perf_counter() - start))
    assert best >= STEPS_PER_SECOND, f"{game}: {best:.0f} steps/s"


def test_an_unknown_game_gets_a_suggestion() -> None:
    with pytest.raises(ValueError, match="Did you mean 'pong'"):
        ArcadeEnv("pongg")


def test_rejects_an_unknown_render_mode() -> None:
    with pytest.raises(ValueError, match="render_mode must be one of"):
        ArcadeEnv("pong", render_mode="ansi")


def test_pong_scores_both_ways() -> None:
    env = ArcadeEnv("pong")
    env.reset(seed=0)
    game = env.game
    game.x, game.y, game.vx, game.vy = 83.0, 40.0, 3.5, 0.0
    game.agent_y = 3.0  # far from the ball
    assert env.step(0)[4]["true_reward"] == -1.0
    game.x, game.y, game.vx, game.vy = 0.0, 40.0, -3.5, 0.0
    game.opponent_y, game.aim = 70.0, 0.0
    assert env.step(0)[4]["true_reward"] == 1.0


def test_breakout_pays_more_for_higher_bricks_and_rebuilds_the_wall() -> None:
    env = ArcadeEnv("breakout")
    env.reset(seed=0)
    game = env.game
    game.bricks[:] = False
    game.bricks[0, 4] = True
    game.x, game.y, game.vx, game.vy, game.wait = 2 + 4 * 8 + 2, 16.0, 0.0, -2.0, 0
    assert env.step(0)[4]["true_reward"] == 7.0
    assert game.bricks.all()  # the last brick went: a new wall


def test_enduro_counts_overtakes_both_ways() -> None:
    env = ArcadeEnv("enduro")
    env.reset(seed=0)
    game = env.game
    game.speed, game.car_x = 2.0, 14.0
    game.cars = [[60.0, 69.5, 1.0]]  # ahead in another lane, slower
    assert env.step(1)[4]["true_reward"] == 1.0
    game.speed = 0.0
    game.cars = [[60.0, 71.0, 2.0]]  # behind in another lane, faster
    assert env.step(0)[4]["true_reward"] == -1.0
