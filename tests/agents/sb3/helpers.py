"""Stand-in reward functions and buffer readers that the SB3 agent tests share.

Import as ``from tests.agents.sb3.helpers import ...``.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3 import SAC

CARTPOLE = "prefgym/CartPole-v1"
PENDULUM = "prefgym/Pendulum-v1"


def obs_plus_action(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """A reward that depends on both arguments: obs[:, 0] + the action (summed over its axes)."""
    return observations[:, 0] + actions.reshape(len(actions), -1).sum(axis=1)


def pendulum_reward(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Pendulum's own reward, computed from the observation before the step and the action."""
    theta = np.arctan2(observations[:, 1], observations[:, 0])
    torque = np.clip(actions[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * observations[:, 2] ** 2 + 0.001 * torque**2)


def stored(model: SAC, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``rows`` Pendulum observations and (unscaled) actions of a SAC replay buffer."""
    buffer = model.replay_buffer
    assert buffer is not None
    observations = buffer.observations[:rows].reshape(-1, 3)
    actions = model.policy.unscale_action(buffer.actions[:rows].reshape(-1, 1))
    return observations, actions
