"""Real Atari 2600 games through ale-py, preprocessed as the deep-RL literature does.

One agent step repeats the action for ``frame_skip`` emulator frames (with
sticky actions, as in ALE v5), takes the pixel-wise maximum of the last two
grayscale screens (Atari sprites flicker), blanks the score area, resizes to
84x84 and stacks the last ``frame_stack`` results channel-last ``(84, 84, k)``.
Resets start with up to ``noop_max`` random no-ops.

The game's score is the hidden true reward (``info[TRUE_REWARD_KEY]``; the agent
is paid 0) and nothing signals a lost life: no episode end, no ``lives`` in
``info``. The score is blanked in the observations and in the rendered frames,
so neither the reward model nor a person judging can read it. An episode is
the fixed horizon of its registration; when the game is over it restarts in
place (``termination="penalty"``, with ``termination_penalty`` added, 0 by
default), freezes (``"absorb"``) or ends the episode (``"keep"``), as in
:class:`~prefgym.envs.preference_env.PreferenceEnv`.

Needs the ``atari`` extra (ale-py, whose wheel ships the ROMs, and OpenCV).
"""

from __future__ import annotations

import difflib
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from prefgym.envs.pixels import FrameStack, PixelWindow
from prefgym.segments import TRUE_REWARD_KEY

try:
    import cv2
    from ale_py.env import AtariEnv
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "the Atari tasks need ale-py and OpenCV: pip install 'prefgym[atari]'"
    ) from error

SIZE = 84
"""Height and width of a preprocessed frame."""

SCORE_ROWS: dict[str, tuple[int, int]] = {
    "pong": (0, 24),
    "breakout": (0, 17),
    "enduro": (155, 210),
    "beam_rider": (0, 43),
    "qbert": (0, 30),
    "seaquest": (0, 18),
    "space_invaders": (0, 20),
}
"""Rows ``[start, stop)`` of the 210x160 screen that show the score, by ROM name.

Enduro's panel shows the odometer and the cars still to pass; Beam Rider's
top shows the score, the sector and the enemies left in it."""

TERMINATIONS = ("penalty", "absorb", "keep")


class AtariPreferenceEnv(gym.Env[np.ndarray, np.int64]):
    """An Atari game with its score hidden and blanked, preprocessed for a CNN."""

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        *,
        frame_skip: int = 4,
        frame_stack: int = 4,
        noop_max: int = 30,
        repeat_action_probability: float = 0.25,
        blank_score: bool = True,
        termination: str = "penalty",
        termination_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        """Load the ROM ``game``.

        Args:
            game: The ROM's name in ale-py, e.g. ``"pong"`` or ``"space_invaders"``.
            frame_skip: Emulator frames per agent step.
            frame_stack: Preprocessed frames per observation ``k``.
            noop_max: Most random no-ops at the start of a game.
            repeat_action_probability: Chance that the emulator repeats the previous
                action in a frame (sticky actions).
            blank_score: Blank the score area (rows of :data:`SCORE_ROWS`).
            termination: What a game over does: ``"penalty"`` (restart in place),
                ``"absorb"`` (freeze, reward 0 from then on) or ``"keep"`` (end the episode).
            termination_penalty: Added to the true reward at a game over (``"penalty"``).
            render_mode: ``"rgb_array"``, ``"human"`` or None.
        """
        if game not in SCORE_ROWS:
            close = difflib.get_close_matches(game, list(SCORE_ROWS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"no score area known for {game!r}: choose from {sorted(SCORE_ROWS)}.{hint}"
            )
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if noop_max < 0:
            raise ValueError(f"noop_max must be >= 0, got {noop_max}")
        if termination not in TERMINATIONS:
            raise ValueError(f"termination must be one of {TERMINATIONS}, got {termination!r}")
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}")
        self.game = game
        self.frame_skip = frame_skip
        self.noop_max = noop_max
        self.blank_rows = SCORE_ROWS[game] if blank_score else (0, 0)
        self.termination = termination
        self.termination_penalty = float(termination_penalty)
        self.render_mode = render_mode
        self.emulator = AtariEnv(
            game=game,
            obs_type="grayscale",
            frameskip=1,
            repeat_action_probability=repeat_action_probability,
            full_action_space=False,
        )
        self.ale = self.emulator.ale
        self._action_set = self.ale.getMinimalActionSet()
        self._noop = self._action_set[0]
        height, width = self.ale.getScreenDims()
        self._screens = np.zeros((2, height, width), dtype=np.uint8)
        """The last two grayscale screens of a step, max-pooled into one frame."""
        self.stack = FrameStack(SIZE, SIZE, frame_stack)
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, frame_stack), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self._action_set))
        self._absorbed = False
        self._window: PixelWindow | None = None

    def get_action_meanings(self) -> list[str]:
        """Names of the actions, e.g. ``["NOOP", "FIRE", "RIGHT", ...]``."""
        return self.emulator.get_action_meanings()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new game; a seed fixes the emulator, the sticky actions and the no-ops."""
        super().reset(seed=seed)
        if seed is not None:
            self.emulator.reset(seed=int(self.np_random.integers(2**31)))
        self._absorbed = False
        self._new_game()
        self.stack.fill()
        if self.render_mode == "human":
            self.render()
        return self.stack.observation(), {}

    def _new_game(self) -> None:
        """Restart the game, play the random no-ops and push its first frame."""
        self.ale.reset_game()
        for _ in range(int(self.np_random.integers(self.noop_max + 1))):
            self.ale.act(self._noop)
            if self.ale.game_over():
                self.ale.reset_game()
        self.ale.getScreenGrayscale(self._screens[0])
        self._screens[1] = self._screens[0]
        self._push_frame()

    def _push_frame(self) -> None:
        frame = np.maximum(self._screens[0], self._screens[1])
        start, stop = self.blank_rows
        frame[start:stop] = 0
        self.stack.advance()
        self.stack.canvas[...] = cv2.resize(frame, (SIZE, SIZE), interpolation=cv2.INTER_AREA)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Play ``frame_skip`` frames; the reward is 0, the score gained is in ``info``."""
        if self._absorbed:
            return (
                self.stack.observation(),
                0.0,
                False,
                False,
                {TRUE_REWARD_KEY: 0.0, "absorbed": True},
            )
        ale_action = self._action_set[int(action)]
        if self.frame_skip == 1:  # pool with the previous step's screen
            self._screens[0] = self._screens[1]
        score = 0
        for frame in range(self.frame_skip):
            score += self.ale.act(ale_action)
            if self.ale.game_over():
                self.ale.getScreenGrayscale(self._screens[0])
                self._screens[1] = self._screens[0]
                break
            if frame >= self.frame_skip - 2:
                self.ale.getScreenGrayscale(self._screens[frame - self.frame_skip + 2])
        info: dict[str, Any] = {TRUE_REWARD_KEY: float(score)}
        terminated = False
        if self.ale.game_over():
            info["game_over"] = True
            if self.termination == "penalty":
                info[TRUE_REWARD_KEY] += self.termination_penalty
                self._new_game()
            elif self.termination == "absorb":
                self._absorbed = True
                self._push_frame()
            else:
                terminated = True
                self._push_frame()
        else:
            self._push_frame()
        if self.render_mode == "human":
            self.render()
        return self.stack.observation(), 0.0, terminated, False, info

    def render(self) -> np.ndarray | None:
        """The screen ``(210, 160, 3)`` uint8 with the score blanked; None after showing it."""
        frame = self.ale.getScreenRGB()
        start, stop = self.blank_rows
        frame[start:stop] = 0
        if self.render_mode == "human":
            if self._window is None:
                self._window = PixelWindow(f"prefgym {self.game}", self.metadata["render_fps"], 3)
            self._window.show(frame)
            return None
        return frame

    def close(self) -> None:
        """Close the emulator and the window, if any."""
        if self._window is not None:
            self._window.close()
            self._window = None
        self.emulator.close()
