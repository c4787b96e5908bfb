from __future__ import annotations

import numpy as np
import pytest

from prefgym.envs import arcade_games
from prefgym.envs.arcade import ArcadeEnv
from prefgym.envs.arcade_game import SIZE, ArcadeGame
from prefgym.envs.arcade_games import Breakout, Enduro, Pong

GAMES = ["pong", "breakout", "enduro"]


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


def _new(game: str, seed: int = 0) -> ArcadeGame:
    played = arcade_games.GAMES[game]()
    played.reset(np.random.default_rng(seed))
    return played


def _frame(game: ArcadeGame) -> np.ndarray:
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    game.draw(canvas)
    return canvas


def _play(game: str, seed: int, actions: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    played = _new(game, seed)
    frames, rewards = [_frame(played)], []
    for action in actions:
        rewards.append(played.step(int(action)))
        frames.append(_frame(played))
    return frames, rewards


def test_the_games_by_name() -> None:
    assert list(arcade_games.GAMES) == GAMES
    assert arcade_games.GAMES["pong"] is Pong
    assert arcade_games.GAMES["breakout"] is Breakout
    assert arcade_games.GAMES["enduro"] is Enduro
    for game in arcade_games.GAMES.values():
        assert issubclass(game, ArcadeGame)
        assert game.actions[0] == "NOOP" and len(set(game.actions)) == len(game.actions)


@pytest.mark.parametrize("game", GAMES)
def test_the_expert_outscores_random_play(game: str) -> None:
    assert _return(game, "expert") > _return(game, "random") + 5


@pytest.mark.parametrize("game", GAMES)
def test_each_game_is_deterministic_under_a_seed(game: str, rng: np.random.Generator) -> None:
    actions = rng.integers(len(arcade_games.GAMES[game].actions), size=400)
    first, second, other = _play(game, 3, actions), _play(game, 3, actions), _play(game, 4, actions)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    assert any(r != 0.0 for r in first[1])
    assert any(not np.array_equal(a, b) for a, b in zip(first[0], other[0], strict=True))


@pytest.mark.parametrize("game", GAMES)
def test_draws_only_levels_it_has_colours_for(game: str, rng: np.random.Generator) -> None:
    played = _new(game)
    n_actions = len(played.actions)
    drawn: set[int] = set()
    for step in range(600):
        expert = played.expert()
        assert 0 <= expert < n_actions
        played.step(expert if step % 2 else int(rng.integers(n_actions)))
        drawn.update(np.unique(_frame(played)).tolist())
    assert drawn <= set(played.colors), sorted(drawn - set(played.colors))
    assert len(drawn) >= 4  # background, walls or road, the agent, something else
    for rgb in played.colors.values():
        assert len(rgb) == 3 and all(0 <= c <= 255 for c in rgb)


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pong_expert_never_misses_and_play_stays_in_the_court(seed: int) -> None:
    game = _new("pong", seed)
    assert isinstance(game, Pong)
    rewards = []
    for _ in range(3000):
        rewards.append(game.step(game.expert()))
        assert game.TOP <= game.y <= game.BOTTOM - game.BALL
        for paddle in (game.agent_y, game.opponent_y):
            assert game.TOP <= paddle <= game.BOTTOM - game.PADDLE
    assert -1.0 not in rewards and rewards.count(1.0) >= 5


def test_pong_returns_the_ball_steeper_off_the_end_of_the_paddle() -> None:
    game = _new("pong")
    assert isinstance(game, Pong)
    face = game.AGENT_X - game.BALL
    centre_y = 30.0 + game.PADDLE / 2 - game.BALL / 2  # the ball's centre on the paddle's
    for y, vy in [(centre_y, 0.0), (30.0 + game.PADDLE - 1, game.STEEPEST)]:
        game.agent_y = 30.0
        game.x, game.y, game.vx, game.vy = face - 2, y, 3.5, 0.0
        assert game.step(0) == 0.0
        assert game.x == face and game.vx == pytest.approx(-3.5 * 1.05)
        assert game.vy == pytest.approx(vy)
    game.agent_y = 30.0
    game.x, game.y, game.vx, game.vy = face - 2, centre_y, 4.9, 0.0
    game.step(0)
    assert game.vx == -game.MAX_SPEED


def test_pong_bounces_off_the_walls() -> None:
    game = _new("pong")
    assert isinstance(game, Pong)
    game.x, game.y, game.vx, game.vy = 40.0, game.TOP + 1.0, 1.0, -3.0
    assert game.step(0) == 0.0
    assert (game.y, game.vy) == (game.TOP + 2.0, 3.0)
    game.y, game.vy = game.BOTTOM - game.BALL - 1.0, 3.0
    game.step(0)
    assert (game.y, game.vy) == (game.BOTTOM - game.BALL - 2.0, -3.0)


def test_breakout_pays_more_for_higher_bricks_and_rebuilds_the_wall() -> None:
    env = ArcadeEnv("breakout")
    env.reset(seed=0)
    game = env.game
    game.bricks[:] = False
    game.bricks[0, 4] = True
    game.x, game.y, game.vx, game.vy, game.wait = 2 + 4 * 8 + 2, 16.0, 0.0, -2.0, 0
    assert env.step(0)[4]["true_reward"] == 7.0
    assert game.bricks.all()  # the last brick went: a new wall


@pytest.mark.parametrize("row", range(Breakout.ROWS))
def test_breakout_pays_each_rows_points_and_knocks_the_brick_out(row: int) -> None:
    game = _new("breakout")
    assert isinstance(game, Breakout)
    column = 3
    left = game.LEFT + column * game.BRICK_W
    top = game.WALL_TOP + row * game.BRICK_H
    assert _frame(game)[top, left] != 0
    game.x, game.y, game.vx, game.vy, game.wait = left + 2.0, top + 2.0, 0.0, -2.0, 0
    assert game.step(0) == game.POINTS[row]
    assert game.POINTS == (7, 7, 4, 4, 1, 1)
    assert not game.bricks[row, column] and game.bricks.sum() == game.ROWS * game.COLUMNS - 1
    assert game.vy == 2.0  # bounced
    y, x = row * game.BRICK_H, column * game.BRICK_W
    assert not game.wall[y : y + game.BRICK_H, x : x + game.BRICK_W].any()
    frame = _frame(game)
    hole = frame[top : top + game.BRICK_H, left : left + game.BRICK_W]
    assert set(np.unique(hole).tolist()) <= {0, 255}  # empty but for the ball
    assert frame[top, left + game.BRICK_W] != 0  # its neighbour stands


def test_breakouts_first_ball_rises_and_a_miss_costs_time_only() -> None:
    game = _new("breakout")
    assert isinstance(game, Breakout)
    y = game.y
    game.step(0)
    assert game.wait == 0 and game.y < y  # the first ball goes straight up, at once

    game.paddle_x, game.x, game.y, game.vx, game.vy = 60.0, 10.0, 83.0, 0.0, 2.0
    assert game.step(0) == 0.0  # lost: no points taken
    assert game.wait == game.SERVE_DELAY and game.vy > 0 and game.y == 40.0
    served = (game.x, game.y)
    for _ in range(game.SERVE_DELAY):
        assert 255 not in _frame(game)  # no ball while waiting
        game.step(0)
        assert (game.x, game.y) == served
    game.step(0)
    assert game.y == served[1] + game.SPEED  # then it drops toward the paddle
    assert 255 in _frame(game)


def test_breakouts_paddle_stays_between_the_walls() -> None:
    game = _new("breakout")
    assert isinstance(game, Breakout)
    for _ in range(40):
        game.step(1)
    assert game.paddle_x == game.LEFT
    for _ in range(40):
        game.step(2)
    assert game.paddle_x == game.RIGHT - game.PADDLE_W


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_breakout_expert_never_drops_the_ball(seed: int) -> None:
    game = _new("breakout", seed)
    assert isinstance(game, Breakout)
    score = 0.0
    for _ in range(3000):
        score += game.step(game.expert())
        assert game.wait == 0
    assert score > 50


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


def test_enduros_car_speeds_up_to_its_top_speed_and_coasts_to_a_stop() -> None:
    game = _new("enduro")
    assert isinstance(game, Enduro)
    game.cars, game.SPAWN_PROBABILITY = [], 0.0  # an empty road
    speeds = []
    for _ in range(80):
        game.step(1)
        speeds.append(game.speed)
    assert speeds[0] == pytest.approx(game.ACCELERATION)
    assert speeds == sorted(speeds) and speeds[-1] == game.MAX_SPEED
    distance = game.distance
    game.step(0)
    assert game.speed == pytest.approx(game.MAX_SPEED - game.FRICTION)
    assert game.distance == pytest.approx(distance + game.speed)
    for _ in range(300):
        game.step(0)
    assert game.speed == 0.0


def test_enduros_car_steers_but_stays_on_the_road() -> None:
    game = _new("enduro")
    assert isinstance(game, Enduro)
    game.cars, game.SPAWN_PROBABILITY = [], 0.0
    x = game.car_x
    game.step(2)
    assert game.car_x == x - game.STEER
    for _ in range(40):
        game.step(4)  # accelerate left
    assert game.car_x == game.ROAD_LEFT
    for _ in range(40):
        game.step(5)  # accelerate right
    assert game.car_x == game.ROAD_RIGHT - game.CAR_W


def test_an_enduro_crash_stops_the_car_and_scores_nothing() -> None:
    game = _new("enduro")
    assert isinstance(game, Enduro)
    game.SPAWN_PROBABILITY = 0.0
    game.speed = 2.0
    game.cars = [[game.car_x, game.CAR_Y - 1.0, 0.5]]  # just ahead, in our lane, slower
    assert game.step(1) == 0.0
    assert game.speed == 0.0
    assert game.cars == [[game.car_x, game.CAR_Y - game.CAR_H - 1.0, 0.5]]  # put back ahead


def test_enduro_keeps_at_most_four_cars_on_the_road(rng: np.random.Generator) -> None:
    game = _new("enduro")
    assert isinstance(game, Enduro)
    seen = 0
    for _ in range(2000):
        game.step(int(rng.integers(len(game.actions))) if rng.random() < 0.3 else 1)
        assert len(game.cars) <= game.MAX_CARS
        assert game.ROAD_LEFT <= game.car_x <= game.ROAD_RIGHT - game.CAR_W
        for x, _, speed in game.cars:
            assert game.ROAD_LEFT <= x <= game.ROAD_RIGHT - game.CAR_W and speed > 0
        seen = max(seen, len(game.cars))
    assert seen >= 2
