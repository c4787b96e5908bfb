"""A Gymnasium task with its reward hidden: the base of every preference environment.

The wrapped task's reward is reported as ``info["true_reward"]`` and the
reward returned to the agent is 0 until a learned reward is plugged in.

Early termination leaks the reward (an agent that must survive learns from
episode length alone), so by default episodes have a fixed horizon:

* ``termination="penalty"``: a failure (the pole falls, the hopper tips over)
  is shown for one step: the failed observation is returned, the next step's
  action is ignored, its true reward is ``termination_penalty``, and the task
  resets in place; the episode goes on to the horizon (Christiano et al. 2017).
  The penalty belongs to the failed state itself, so a reward model of
  (observation, action) can see it; paid on the last healthy step instead, it
  would have to be guessed from a state that has not fallen yet.
* ``termination="absorb"``: reaching a goal (Acrobot, MountainCar, a landed
  lunar lander) makes the final state absorbing: the observation stays, and
  every later step has true reward 0, so the true return equals the original
  episode return.
* ``termination="keep"``: the original termination is kept.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, SupportsFloat

import gymnasium as gym

Termination = Literal["penalty", "absorb", "keep"]
TERMINATIONS: tuple[Termination, ...] = ("penalty", "absorb", "keep")


class PreferenceEnv(gym.Env[Any, Any]):
    """A task whose reward is hidden from the agent and reported in ``info``."""

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 30}

    def __init__(
        self,
        base_id: str,
        *,
        termination: Termination = "penalty",
        termination_penalty: float = -10.0,
        keep_termination: bool = False,
        render_mode: str | None = None,
        **base_kwargs: Any,
    ) -> None:
        """Wrap the Gymnasium task ``base_id``.

        Args:
            base_id: The Gymnasium id of the task, e.g. ``"CartPole-v1"``.
            termination: What happens when the task terminates (see the module docstring).
            termination_penalty: Added to the true reward on a failure (``"penalty"`` only).
            keep_termination: Shorthand for ``termination="keep"``.
            render_mode: ``"rgb_array"`` for frames, ``"human"`` for a window, or None.
            **base_kwargs: Passed on to the task's constructor.
        """
        if termination not in TERMINATIONS:
            raise ValueError(f"termination must be one of {TERMINATIONS}, got {termination!r}")
        self.termination: Termination = "keep" if keep_termination else termination
        self.termination_penalty = float(termination_penalty)
        base = gym.make(base_id, render_mode=render_mode, **base_kwargs)
        self.base: gym.Env[Any, Any] = base.unwrapped  # no TimeLimit: the horizon is ours
        self.base_id = base_id
        self.observation_space = self.base.observation_space
        self.action_space = self.base.action_space
        modes = type(self).metadata["render_modes"]
        self.metadata = {"render_modes": modes, "render_fps": self.base.metadata["render_fps"]}
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._absorbed_observation: Any = None
        self._failed = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the task; a seed makes the whole episode reproducible."""
        super().reset(seed=seed)
        self._absorbed_observation = None
        self._failed = False
        observation, info = self.base.reset(seed=seed, options=options)
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the task; the reward is 0 and the true reward is in ``info``."""
        if self._absorbed_observation is not None:
            info = {"true_reward": 0.0, "absorbed": True}
            return copy.deepcopy(self._absorbed_observation), 0.0, False, False, info
        if self._failed:  # the step after a failure: pay the penalty, start again in place
            self._failed = False
            observation, _ = self.base.reset()
            info = {"true_reward": self.termination_penalty, "failure": True}
            return observation, 0.0, False, False, info
        observation, true_reward, terminated, truncated, info = self.base.step(action)
        info = dict(info, true_reward=float(true_reward))
        if terminated and self.termination == "penalty":
            self._failed = True
            terminated = False
        elif terminated and self.termination == "absorb":
            self._absorbed_observation = observation
            terminated = False
        return observation, 0.0, terminated, truncated, info

    def render(self) -> Any:
        """Render the task in the mode chosen at construction."""
        return self.base.render()

    def close(self) -> None:
        """Close the task (and its window, if any)."""
        self.base.close()


class MujocoPreferenceEnv(PreferenceEnv):
    """A MuJoCo task with its reward hidden; renders offscreen only (``MUJOCO_GL=egl``)."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}
