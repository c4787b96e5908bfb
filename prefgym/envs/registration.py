"""Registration of every prefgym environment under the ``prefgym/`` namespace.

Entry points are strings, so registering imports nothing heavy: the task's own
module (and its optional dependency) is imported by ``gymnasium.make``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym

NAMESPACE = "prefgym"
_PREFERENCE_ENV = "prefgym.envs.preference_env:PreferenceEnv"
_MUJOCO_ENV = "prefgym.envs.preference_env:MujocoPreferenceEnv"
_ARCADE_ENV = "prefgym.envs.arcade:ArcadeEnv"
_ATARI_ENV = "prefgym.envs.atari:AtariPreferenceEnv"
_TEXT_ENV = "prefgym.envs.text_env:TextEnv"
_TOKEN_TEXT_ENV = "prefgym.envs.text_env:TokenTextEnv"
TEXT_RESPONSE_LENGTH = 16
"""Tokens of a text-game response."""
ARCADE_HORIZON = 500
"""Steps of an arcade episode."""
ATARI_HORIZON = 27_000
"""Agent steps of an Atari episode: 108,000 emulator frames at frame skip 4 (ALE v5's cap)."""
ActionKind = Literal["discrete", "continuous"]
"""How a task acts: a ``Discrete``/``MultiDiscrete`` space, or a ``Box``."""


@dataclass(frozen=True)
class EnvInfo:
    """What the suite knows about one registered task."""

    id: str
    """The registered id, ``prefgym/Name-vN``."""
    entry_point: str
    """Where ``gymnasium.make`` finds the class."""
    horizon: int
    """Fixed episode length."""
    extra: str | None
    """The pip extra the task needs (``prefgym[extra]``), or None."""
    family: str
    """``classic``, ``box2d``, ``mujoco``, ``arcade`` (pixels, ours), ``atari`` (pixels, ALE)
    or ``text`` (the text game; trained with ``prefgym text train``)."""
    actions: ActionKind
    """The action space's kind, known without building the env: SAC needs ``continuous``."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments."""


def _control(
    base_id: str, horizon: int, family: str, actions: ActionKind, termination: str, **kw: Any
) -> EnvInfo:
    extra = None if family == "classic" else family
    entry_point = _MUJOCO_ENV if family == "mujoco" else _PREFERENCE_ENV
    kwargs = {"base_id": base_id, "termination": termination, **kw}
    return EnvInfo(f"{NAMESPACE}/{base_id}", entry_point, horizon, extra, family, actions, kwargs)


def _arcade(name: str, game: str) -> EnvInfo:
    kwargs = {"game": game}
    return EnvInfo(
        f"{NAMESPACE}/{name}", _ARCADE_ENV, ARCADE_HORIZON, None, "arcade", "discrete", kwargs
    )


def _atari(name: str, rom: str) -> EnvInfo:
    kwargs = {"game": rom, "termination": "penalty"}
    return EnvInfo(
        f"{NAMESPACE}/{name}", _ATARI_ENV, ATARI_HORIZON, "atari", "atari", "discrete", kwargs
    )


def _text(name: str, task: str, *, tokens: bool = False) -> EnvInfo:
    kwargs = {"task": task, "response_length": TEXT_RESPONSE_LENGTH}
    entry_point, horizon = (_TOKEN_TEXT_ENV, TEXT_RESPONSE_LENGTH) if tokens else (_TEXT_ENV, 1)
    return EnvInfo(f"{NAMESPACE}/{name}", entry_point, horizon, None, "text", "discrete", kwargs)


ENVS: tuple[EnvInfo, ...] = (
    _control("CartPole-v1", 500, "classic", "discrete", "penalty"),
    _control("Acrobot-v1", 500, "classic", "discrete", "absorb", shaping=0.1),
    _control("MountainCarContinuous-v0", 999, "classic", "continuous", "absorb"),
    _control("Pendulum-v1", 200, "classic", "continuous", "keep"),
    _control("LunarLander-v3", 1000, "box2d", "discrete", "absorb", continuous=False),
    _control("Hopper-v5", 1000, "mujoco", "continuous", "penalty"),
    _control("Walker2d-v5", 1000, "mujoco", "continuous", "penalty"),
    _control("HalfCheetah-v5", 1000, "mujoco", "continuous", "keep"),
    _control("Swimmer-v5", 1000, "mujoco", "continuous", "keep"),
    _control("Ant-v5", 1000, "mujoco", "continuous", "penalty"),
    _control("Reacher-v5", 50, "mujoco", "continuous", "keep"),
    _control("InvertedPendulum-v5", 1000, "mujoco", "continuous", "penalty"),
    _control("InvertedDoublePendulum-v5", 1000, "mujoco", "continuous", "penalty"),
    _arcade("ArcadePong-v0", "pong"),
    _arcade("ArcadeBreakout-v0", "breakout"),
    _arcade("ArcadeEnduro-v0", "enduro"),
    _atari("Pong-v5", "pong"),
    _atari("Breakout-v5", "breakout"),
    _atari("Enduro-v5", "enduro"),
    _atari("BeamRider-v5", "beam_rider"),
    _atari("Qbert-v5", "qbert"),
    _atari("Seaquest-v5", "seaquest"),
    _atari("SpaceInvaders-v5", "space_invaders"),
)
"""Every control and pixel environment, in the order of the README's table."""

TEXT_ENVS: tuple[EnvInfo, ...] = (
    _text("TextSentiment-v0", "sentiment"),
    _text("TextArithmetic-v0", "arithmetic"),
    _text("TextHarmless-v0", "harmless"),
    _text("TextSentimentTokens-v0", "sentiment", tokens=True),
    _text("TextArithmeticTokens-v0", "arithmetic", tokens=True),
    _text("TextHarmlessTokens-v0", "harmless", tokens=True),
)
"""The text game: single-step ids, then the same tasks one token per step."""

ALL_ENVS: tuple[EnvInfo, ...] = ENVS + TEXT_ENVS
"""Every environment the suite registers."""


def register_envs() -> None:
    """Register every prefgym environment; calling it again changes nothing."""
    for env in ALL_ENVS:
        if env.id in gym.registry:
            continue
        gym.register(
            id=env.id,
            entry_point=env.entry_point,
            max_episode_steps=env.horizon,
            kwargs=env.kwargs,
        )
