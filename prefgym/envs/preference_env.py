"""A Gymnasium task with its reward hidden: the base of every preference environment.

The wrapped task's reward is reported as ``info[TRUE_REWARD_KEY]`` and the
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

A task whose own reward says nothing until the very end (Acrobot pays -1 per
step until the tip swings above the bar) makes every judgment of two clips a
tie. ``shaping`` adds potential-based shaping (Ng et al. 1999) to the hidden
reward, ``shaping * (phi(s') - phi(s))`` with the task's progress potential
``phi`` (Acrobot: its mechanical energy), which leaves the best policy
unchanged and makes a clip whose swings grow better than one whose swings
die down, as a person watching would judge it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from prefgym.segments import TRUE_REWARD_KEY

Termination = Literal["penalty", "absorb", "keep"]
TERMINATIONS: tuple[Termination, ...] = ("penalty", "absorb", "keep")


def acrobot_energy(observation: np.ndarray) -> float:
    """Acrobot's mechanical energy (Gymnasium's masses, lengths and inertias), 0 hanging at rest.

    Swinging up is pumping energy in: about 39 takes the tip from hanging to upright.
    """
    cos1, sin1, cos2, sin2, speed1, speed2 = (float(v) for v in observation[:6])
    gravity, length, centre, inertia = 9.8, 1.0, 0.5, 1.0  # both links, unit masses
    cos12 = cos1 * cos2 - sin1 * sin2  # cos(theta1 + theta2)
    potential = gravity * (-centre * cos1 - length * cos1 - centre * cos12) + 2.0 * gravity
    speed12 = speed1 + speed2
    kinetic = 0.5 * (centre**2 + inertia) * speed1**2 + 0.5 * inertia * speed12**2
    kinetic += 0.5 * (length**2 * speed1**2 + centre**2 * speed12**2)
    kinetic += length * centre * speed1 * speed12 * cos2
    return potential + kinetic


POTENTIALS: dict[str, Callable[[np.ndarray], float]] = {"Acrobot-v1": acrobot_energy}
"""The progress potential of each task that ``shaping`` can be used with."""


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
        shaping: float = 0.0,
        render_mode: str | None = None,
        **base_kwargs: Any,
    ) -> None:
        """Wrap the Gymnasium task ``base_id``.

        Args:
            base_id: The Gymnasium id of the task, e.g. ``"CartPole-v1"``.
            termination: What happens when the task terminates (see the module docstring).
            termination_penalty: Added to the true reward on a failure (``"penalty"`` only).
            keep_termination: Shorthand for ``termination="keep"``.
            shaping: Weight of the potential-based shaping added to the true reward
                (tasks in ``POTENTIALS`` only; see the module docstring).
            render_mode: ``"rgb_array"`` for frames, ``"human"`` for a window, or None.
            **base_kwargs: Passed on to the task's constructor.
        """
        if termination not in TERMINATIONS:
            raise ValueError(f"termination must be one of {TERMINATIONS}, got {termination!r}")
        self.termination: Termination = "keep" if keep_termination else termination
        self.termination_penalty = float(termination_penalty)
        if shaping and base_id not in POTENTIALS:
            raise ValueError(
                f"shaping={shaping} needs a progress potential, and {base_id!r} has none; "
                f"leave shaping at 0 or use one of {sorted(POTENTIALS)}"
            )
        self.shaping = float(shaping)
        self._potential = POTENTIALS.get(base_id)
        self._last_potential = 0.0
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
        self._last_potential = self._potential_of(observation)
        return observation, info

    def _potential_of(self, observation: Any) -> float:
        if not self.shaping or self._potential is None:
            return 0.0
        return self.shaping * self._potential(np.asarray(observation))

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the task; the reward is 0 and the true reward is in ``info``."""
        if self._absorbed_observation is not None:
            info = {TRUE_REWARD_KEY: 0.0, "absorbed": True}
            return copy.deepcopy(self._absorbed_observation), 0.0, False, False, info
        if self._failed:  # the step after a failure: pay the penalty, start again in place
            self._failed = False
            observation, _ = self.base.reset()
            self._last_potential = self._potential_of(observation)
            info = {TRUE_REWARD_KEY: self.termination_penalty, "failure": True}
            return observation, 0.0, False, False, info
        observation, true_reward, terminated, truncated, info = self.base.step(action)
        potential = self._potential_of(observation)
        true_reward = float(true_reward) + potential - self._last_potential
        self._last_potential = potential
        info = {**info, TRUE_REWARD_KEY: true_reward}
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
