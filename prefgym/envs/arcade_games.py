"""The rules of the arcade games: a Pong, a Breakout and an Enduro of our own.

Coordinates are pixels of the 84x84 frame, ``x`` to the right and ``y`` down;
positions are floats and objects are drawn at their floor. Each game serves or
spawns from the generator the env hands it, so a seed fixes the whole game.

* **Pong**: the agent's paddle is on the right, a fallible computer opponent on
  the left. +1 when the opponent misses, -1 when the agent does.
* **Breakout**: a wall of bricks worth 1, 4 or 7 points by row (top rows pay
  most) and a paddle at the bottom. The first ball rises into the wall; after
  a miss a new ball drops toward the paddle after a pause, so a miss costs
  time only. A cleared wall is rebuilt.
* **Enduro**: a road seen from above, traffic anywhere across it at its own speeds;
  +1 for each car the agent overtakes, -1 for each car that overtakes it. A
  crash stops the agent's car.
"""

from __future__ import annotations

import numpy as np

from prefgym.envs.arcade_game import SIZE, ArcadeGame, fill_rect

# Gray levels shared by the games' drawings.
_WALL, _OTHER, _AGENT, _BALL = 100, 140, 200, 255


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class Pong(ArcadeGame):
    """Return the ball past a computer opponent that aims imperfectly."""

    actions = ("NOOP", "UP", "DOWN")
    colors = {
        0: (24, 72, 48),
        _WALL: (210, 210, 210),
        _OTHER: (230, 130, 60),
        _AGENT: (110, 220, 110),
        _BALL: (250, 250, 250),
    }
    TOP, BOTTOM = 3, SIZE - 3
    """The play area lies between the walls, rows ``TOP`` to ``BOTTOM``."""
    PADDLE, BALL = 12, 2
    AGENT_X, OPPONENT_X = 76, 6
    """Left edges of the paddles (each 2 pixels wide)."""
    AGENT_SPEED, OPPONENT_SPEED = 6.0, 2.8
    SERVE_SPEED, MAX_SPEED = 3.5, 5.0
    STEEPEST = 3.5
    """Vertical speed of a ball that leaves a paddle from its very end."""
    AIM_ERROR = 9.0
    """The opponent aims up to this many pixels off; beyond half a paddle it misses."""

    def _reset(self) -> None:
        middle = (self.TOP + self.BOTTOM - self.PADDLE) / 2
        self.agent_y = self.opponent_y = middle
        self._serve()

    def _serve(self) -> None:
        self.x = (SIZE - self.BALL) / 2
        self.y = float(self.rng.uniform(self.TOP + 10, self.BOTTOM - 10))
        self.vx = self.SERVE_SPEED * (1 if self.rng.random() < 0.5 else -1)
        self.vy = float(self.rng.uniform(-2.0, 2.0))
        self._aim()

    def _aim(self) -> None:
        self.aim = float(self.rng.uniform(-self.AIM_ERROR, self.AIM_ERROR))

    def step(self, action: int) -> float:
        """Move the paddles, then the ball; score when it leaves the court."""
        low, high = self.TOP, self.BOTTOM - self.PADDLE
        if action == 1:
            self.agent_y = max(self.agent_y - self.AGENT_SPEED, low)
        elif action == 2:
            self.agent_y = min(self.agent_y + self.AGENT_SPEED, high)
        half = self.PADDLE / 2
        target = (self.y + 1 + self.aim if self.vx < 0 else (self.TOP + self.BOTTOM) / 2) - half
        move = _clip(target - self.opponent_y, -self.OPPONENT_SPEED, self.OPPONENT_SPEED)
        self.opponent_y = _clip(self.opponent_y + move, low, high)

        self.x += self.vx
        self.y += self.vy
        if self.y < self.TOP:
            self.y, self.vy = 2 * self.TOP - self.y, -self.vy
        elif self.y > self.BOTTOM - self.BALL:
            self.y, self.vy = 2 * (self.BOTTOM - self.BALL) - self.y, -self.vy
        face = self.AGENT_X - self.BALL  # the ball's x when it touches the agent's paddle
        if self.vx > 0 and self.x >= face > self.x - self.vx and self._meets(self.agent_y):
            self._bounce(face, self.agent_y)
            self._aim()
        face = self.OPPONENT_X + 2
        if self.vx < 0 and self.x <= face < self.x - self.vx and self._meets(self.opponent_y):
            self._bounce(face, self.opponent_y)
        if self.x > SIZE:
            self._serve()
            return -1.0
        if self.x < -self.BALL:
            self._serve()
            return 1.0
        return 0.0

    def expert(self) -> int:
        """Meet the ball when it comes, wait in the middle when it goes."""
        centre = self.agent_y + self.PADDLE / 2
        target = self.y + self.BALL / 2 if self.vx > 0 else (self.TOP + self.BOTTOM) / 2
        if abs(target - centre) < self.AGENT_SPEED / 2:
            return 0
        return 1 if target < centre else 2

    def _meets(self, paddle_y: float) -> bool:
        return self.y + self.BALL > paddle_y and self.y < paddle_y + self.PADDLE

    def _bounce(self, face: float, paddle_y: float) -> None:
        """Send the ball back; the farther from the paddle's centre, the steeper."""
        speed = min(abs(self.vx) * 1.05, self.MAX_SPEED)
        self.x, self.vx = face, speed if self.vx < 0 else -speed
        offset = (self.y + self.BALL / 2 - paddle_y - self.PADDLE / 2) / (self.PADDLE / 2)
        self.vy = _clip(offset, -1.0, 1.0) * self.STEEPEST

    def draw(self, canvas: np.ndarray) -> None:
        """Walls, paddles and ball."""
        canvas[: self.TOP] = _WALL
        canvas[self.BOTTOM :] = _WALL
        fill_rect(canvas, self.OPPONENT_X, self.opponent_y, 2, self.PADDLE, _OTHER)
        fill_rect(canvas, self.AGENT_X, self.agent_y, 2, self.PADDLE, _AGENT)
        fill_rect(canvas, self.x, self.y, self.BALL, self.BALL, _BALL)


class Breakout(ArcadeGame):
    """Keep the ball in play and knock bricks out of the wall."""

    actions = ("NOOP", "LEFT", "RIGHT")
    ROWS, COLUMNS = 6, 10
    BRICK_W, BRICK_H, WALL_TOP = 8, 3, 14
    POINTS = (7, 7, 4, 4, 1, 1)
    """Points of a brick by row, top row first."""
    _BRICK_LEVELS = (230, 210, 180, 160, 130, 110)
    colors = {
        0: (0, 0, 0),
        _WALL: (142, 142, 142),
        _AGENT: (200, 72, 72),
        _BALL: (220, 220, 220),
        230: (200, 72, 72),
        210: (198, 108, 58),
        180: (180, 122, 48),
        160: (162, 162, 42),
        130: (72, 160, 72),
        110: (66, 72, 200),
    }
    LEFT, RIGHT, TOP = 2, SIZE - 2, 2
    """The field inside the walls."""
    PADDLE_W, PADDLE_Y, PADDLE_SPEED, BALL = 12, 76, 3.5, 2
    SPEED = 2.0
    """Vertical speed of the ball, in pixels per frame."""
    SERVE_DELAY = 30
    """Frames without a ball after a miss."""

    def _reset(self) -> None:
        self._build_wall()
        self.paddle_x = (SIZE - self.PADDLE_W) / 2
        self._serve()
        self.vy, self.wait = -self.SPEED, 0  # the first ball goes straight up to the wall

    def _build_wall(self) -> None:
        self.bricks = np.ones((self.ROWS, self.COLUMNS), dtype=bool)
        self.wall = np.zeros((self.ROWS * self.BRICK_H, self.COLUMNS * self.BRICK_W), np.uint8)
        """The wall as drawn: bricks with a one-pixel gap below and to the right."""
        for row, level in enumerate(self._BRICK_LEVELS):
            self.wall[row * self.BRICK_H : (row + 1) * self.BRICK_H - 1] = level
        self.wall[:, self.BRICK_W - 1 :: self.BRICK_W] = 0

    def _serve(self) -> None:
        """A new ball drops from below the wall toward the paddle after a pause."""
        self.x = float(self.rng.uniform(self.LEFT + 10, self.RIGHT - 10))
        self.y = 40.0
        self.vx = float(self.rng.uniform(0.5, 1.5)) * (1 if self.rng.random() < 0.5 else -1)
        self.vy = self.SPEED
        self.wait = self.SERVE_DELAY

    def step(self, action: int) -> float:
        """Move the paddle, then the ball; bricks score as they break."""
        if action == 1:
            self.paddle_x = max(self.paddle_x - self.PADDLE_SPEED, self.LEFT)
        elif action == 2:
            self.paddle_x = min(self.paddle_x + self.PADDLE_SPEED, self.RIGHT - self.PADDLE_W)
        if self.wait > 0:
            self.wait -= 1
            return 0.0
        self.x += self.vx
        self.y += self.vy
        if self.x < self.LEFT:
            self.x, self.vx = 2 * self.LEFT - self.x, -self.vx
        elif self.x > self.RIGHT - self.BALL:
            self.x, self.vx = 2 * (self.RIGHT - self.BALL) - self.x, -self.vx
        if self.y < self.TOP:
            self.y, self.vy = 2 * self.TOP - self.y, -self.vy
        reward = self._hit_brick()
        face = self.PADDLE_Y - self.BALL
        if self.vy > 0 and self.y >= face > self.y - self.vy:
            if self.x + self.BALL > self.paddle_x and self.x < self.paddle_x + self.PADDLE_W:
                centre = self.paddle_x + self.PADDLE_W / 2
                offset = (self.x + self.BALL / 2 - centre) / (self.PADDLE_W / 2)
                self.y, self.vy = face, -self.SPEED
                vx = _clip(offset, -1.0, 1.0) * 2.0
                self.vx = vx if abs(vx) >= 0.5 else (0.5 if self.vx >= 0 else -0.5)
        if self.y > SIZE:
            self._serve()
        return reward

    def expert(self) -> int:
        """Put the paddle where the falling ball will land."""
        centre = self.paddle_x + self.PADDLE_W / 2
        target = self.x + self.BALL / 2
        if self.vy > 0:  # where the ball will meet the paddle, walls folded in
            target += self.vx * (self.PADDLE_Y - self.BALL - self.y) / self.vy
            span = self.RIGHT - self.LEFT - self.BALL
            target = (target - self.LEFT - self.BALL / 2) % (2 * span)
            target = self.LEFT + self.BALL / 2 + (target if target <= span else 2 * span - target)
        if abs(target - centre) < self.PADDLE_SPEED / 2:
            return 0
        return 1 if target < centre else 2

    def _hit_brick(self) -> float:
        """Knock out the brick under the ball's centre, if any, and bounce."""
        row = int((self.y + self.BALL / 2 - self.WALL_TOP) // self.BRICK_H)
        column = int((self.x + self.BALL / 2 - self.LEFT) // self.BRICK_W)
        if not (0 <= row < self.ROWS and 0 <= column < self.COLUMNS and self.bricks[row, column]):
            return 0.0
        self.bricks[row, column] = False
        y, x = row * self.BRICK_H, column * self.BRICK_W
        self.wall[y : y + self.BRICK_H, x : x + self.BRICK_W] = 0
        self.y -= self.vy
        self.vy = -self.vy
        if not self.bricks.any():
            self._build_wall()
        return float(self.POINTS[row])

    def draw(self, canvas: np.ndarray) -> None:
        """Walls, bricks, paddle and (unless waiting to serve) ball."""
        canvas[: self.TOP] = _WALL
        canvas[:, : self.LEFT] = _WALL
        canvas[:, self.RIGHT :] = _WALL
        height, width = self.wall.shape
        canvas[self.WALL_TOP : self.WALL_TOP + height, self.LEFT : self.LEFT + width] = self.wall
        fill_rect(canvas, self.paddle_x, self.PADDLE_Y, self.PADDLE_W, 2, _AGENT)
        if self.wait == 0:
            fill_rect(canvas, self.x, self.y, self.BALL, self.BALL, _BALL)


class Enduro(ArcadeGame):
    """Race down a road and overtake as many cars as possible without crashing."""

    actions = ("NOOP", "ACCELERATE", "LEFT", "RIGHT", "ACCELERATE_LEFT", "ACCELERATE_RIGHT")
    _GRASS, _ROAD, _EDGE, _MARK = 40, 70, 220, 160
    colors = {
        _GRASS: (40, 110, 40),
        _ROAD: (90, 90, 96),
        _EDGE: (230, 230, 230),
        _MARK: (200, 200, 120),
        _OTHER: (70, 110, 220),
        _AGENT: (220, 60, 60),
    }
    ROAD_LEFT, ROAD_RIGHT = 14, 70
    CAR_W, CAR_H, CAR_Y = 6, 9, 70
    """Size of every car, and the row of the top of the agent's car."""
    STEER, ACCELERATION, FRICTION, MAX_SPEED = 2.0, 0.06, 0.015, 3.0
    MAX_CARS, SPAWN_PROBABILITY = 4, 0.04
    DASH = 12
    """Length of a lane marking plus its gap."""
    _MARKINGS = [
        ROAD_LEFT + (ROAD_RIGHT - ROAD_LEFT) // 3,
        ROAD_LEFT + 2 * (ROAD_RIGHT - ROAD_LEFT) // 3,
    ]
    """Columns of the lines between lanes."""
    _SCENERY = np.full((DASH, SIZE, SIZE), _GRASS, np.uint8)
    _SCENERY[:, :, ROAD_LEFT:ROAD_RIGHT] = _ROAD
    _SCENERY[:, :, [ROAD_LEFT - 1, ROAD_RIGHT]] = _EDGE
    _SCENERY[:, :, _MARKINGS] = np.where(
        (np.arange(SIZE) - np.arange(DASH)[:, None]) % DASH < DASH // 2, _MARK, _ROAD
    )[:, :, None]
    """Grass, road, edges and lane lines, drawn once for each of the ``DASH`` scroll phases:
    in phase ``p`` a dash starts on every row ``r`` with ``(r - p) % DASH == 0``."""

    def _reset(self) -> None:
        self.car_x = (self.ROAD_LEFT + self.ROAD_RIGHT - self.CAR_W) / 2
        self.speed = 0.0
        self.distance = 0.0
        self.cars: list[list[float]] = []
        """Each other car as ``[x, y, speed]``."""
        self._spawn(ahead=True, y=30.0)
        self._spawn(ahead=False, y=SIZE - 2.0)

    def _spawn(self, *, ahead: bool, y: float) -> None:
        x = float(self.rng.uniform(self.ROAD_LEFT, self.ROAD_RIGHT - self.CAR_W))
        for other_x, other_y, _ in self.cars:
            if abs(other_x - x) < self.CAR_W + 2 and abs(other_y - y) < 2 * self.CAR_H:
                return  # no room: try again another frame
        if ahead:
            speed = float(self.rng.uniform(0.8, 1.8))
        else:
            speed = min(
                max(self.speed, 1.0) + float(self.rng.uniform(0.6, 1.2)), self.MAX_SPEED + 0.5
            )
        self.cars.append([x, y, speed])

    def step(self, action: int) -> float:
        """Drive one frame; score each overtake, lose a point when overtaken."""
        if action in (1, 4, 5):
            self.speed = min(self.speed + self.ACCELERATION, self.MAX_SPEED)
        else:
            self.speed = max(self.speed - self.FRICTION, 0.0)
        if action in (2, 4):
            self.car_x = max(self.car_x - self.STEER, self.ROAD_LEFT)
        elif action in (3, 5):
            self.car_x = min(self.car_x + self.STEER, self.ROAD_RIGHT - self.CAR_W)
        self.distance += self.speed
        reward = 0.0
        middle = self.CAR_Y + self.CAR_H / 2
        kept = []
        for car in self.cars:
            before = car[1] + self.CAR_H / 2
            car[1] += self.speed - car[2]
            if abs(car[0] - self.car_x) < self.CAR_W and abs(car[1] - self.CAR_Y) < self.CAR_H:
                self.speed = 0.0  # a crash: the agent stops, the other car drives on ahead
                car[1] = self.CAR_Y - self.CAR_H - 1
            after = car[1] + self.CAR_H / 2
            if before < middle <= after:
                reward += 1.0
            elif after < middle <= before:
                reward -= 1.0
            if -2 * self.CAR_H < car[1] < SIZE + self.CAR_H:
                kept.append(car)
        self.cars = kept
        if len(self.cars) < self.MAX_CARS and self.rng.random() < self.SPAWN_PROBABILITY:
            if self.speed > 1.2:
                self._spawn(ahead=True, y=-float(self.CAR_H))
            else:
                self._spawn(ahead=False, y=float(SIZE))
        return reward

    def expert(self) -> int:
        """Accelerate, and steer to the roomier side of the nearest car ahead."""
        ahead = [x for x, y, _ in self.cars if self.CAR_Y - 45 < y < self.CAR_Y + self.CAR_H]
        threat = [x for x in ahead if abs(x - self.car_x) < self.CAR_W + 3]
        if not threat:
            return 1
        x = min(threat, key=lambda x: abs(x - self.car_x))
        room_left = x - self.ROAD_LEFT > self.ROAD_RIGHT - x - self.CAR_W
        return 4 if room_left else 5

    def draw(self, canvas: np.ndarray) -> None:
        """Grass, road, scrolling lane lines and cars."""
        canvas[:] = self._SCENERY[int(self.distance) % self.DASH]  # lines scroll down as we drive
        for x, y, _ in self.cars:
            fill_rect(canvas, x, y, self.CAR_W, self.CAR_H, _OTHER)
        fill_rect(canvas, self.car_x, self.CAR_Y, self.CAR_W, self.CAR_H, _AGENT)


GAMES: dict[str, type[ArcadeGame]] = {"pong": Pong, "breakout": Breakout, "enduro": Enduro}
"""The arcade games by name."""
