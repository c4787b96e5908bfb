"""Arcade games written for the suite: small pixel tasks that learn on a CPU in minutes.

Each game keeps its state in plain Python numbers, draws itself into an 84x84
grayscale canvas with numpy, and never ends: a lost ball or a crash costs
points and play goes on, so an episode is the fixed horizon of its
registration and its length says nothing about the score. The score is the
hidden true reward, reported as ``info[TRUE_REWARD_KEY]``; the agent is paid 0.

Observations are the last ``frame_stack`` frames (2 by default: enough to see
which way things move), channel-last ``(84, 84, k)`` uint8, as ``CnnPolicy``
and the CNN reward model read them. ``render()`` gives
the newest frame in colour, ``(84, 84, 3)``; ``render_mode="human"`` shows it
in a pygame window. The rules live in :mod:`prefgym.envs.arcade_games`, on the base of
:mod:`prefgym.envs.arcade_game`.
"""

from __future__ import annotations

import difflib
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from prefgym.envs.arcade_game import SIZE, ArcadeGame, fill_rect
from prefgym.envs.arcade_games import GAMES
from prefgym.envs.pixels import FrameStack, PixelWindow, palette_lut
from prefgym.segments import TRUE_REWARD_KEY

__all__ = ["SIZE", "ArcadeEnv", "ArcadeGame", "fill_rect"]


class ArcadeEnv(gym.Env[np.ndarray, np.int64]):
    """A game of :data:`~prefgym.envs.arcade_games.GAMES` with its score hidden."""

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(self, game: str, *, frame_stack: int = 2, render_mode: str | None = None) -> None:
        """Create the game ``game``.

        Args:
            game: ``"pong"``, ``"breakout"`` or ``"enduro"``.
            frame_stack: Frames per observation ``k``; observations are ``(84, 84, k)``.
            render_mode: ``"rgb_array"`` for colour frames, ``"human"`` for a window, or None.
        """
        if game not in GAMES:
            close = difflib.get_close_matches(game, list(GAMES), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown arcade game {game!r}; choose from {sorted(GAMES)}.{hint}")
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}")
        self.game_name = game
        self.game: ArcadeGame = GAMES[game]()
        self.render_mode = render_mode
        self.stack = FrameStack(SIZE, SIZE, frame_stack)
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, frame_stack), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.game.actions))
        self._lut = palette_lut(self.game.colors)
        self._window: PixelWindow | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new game; a seed makes the whole episode reproducible."""
        super().reset(seed=seed)
        self.game.reset(self.np_random)
        self.stack.advance()
        self.game.draw(self.stack.canvas)
        self.stack.fill()
        if self.render_mode == "human":
            self.render()
        return self.stack.observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play one frame; the reward is 0 and the points scored are ``info[TRUE_REWARD_KEY]``."""
        true_reward = self.game.step(int(action))
        self.stack.advance()
        self.game.draw(self.stack.canvas)
        if self.render_mode == "human":
            self.render()
        return self.stack.observation(), 0.0, False, False, {TRUE_REWARD_KEY: true_reward}

    def render(self) -> np.ndarray | None:
        """The newest frame in colour ``(84, 84, 3)`` uint8, or None after showing it."""
        frame = self._lut[self.stack.canvas]
        if self.render_mode == "human":
            if self._window is None:
                title = f"prefgym arcade {self.game_name}"
                self._window = PixelWindow(title, self.metadata["render_fps"])
            self._window.show(frame)
            return None
        return frame

    def close(self) -> None:
        """Close the window, if any."""
        if self._window is not None:
            self._window.close()
            self._window = None
