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
    instructions: str = ""
    """What the hidden reward rewards, as one question a person judging two clips answers
    (the labeling window shows it above the clips)."""


def _control(
    base_id: str,
    horizon: int,
    family: str,
    actions: ActionKind,
    termination: str,
    instructions: str,
    **kw: Any,
) -> EnvInfo:
    extra = None if family == "classic" else family
    entry_point = _MUJOCO_ENV if family == "mujoco" else _PREFERENCE_ENV
    kwargs = {"base_id": base_id, "termination": termination, **kw}
    return EnvInfo(
        f"{NAMESPACE}/{base_id}",
        entry_point,
        horizon,
        extra,
        family,
        actions,
        kwargs,
        instructions,
    )


def _arcade(name: str, game: str, instructions: str) -> EnvInfo:
    kwargs = {"game": game}
    return EnvInfo(
        f"{NAMESPACE}/{name}",
        _ARCADE_ENV,
        ARCADE_HORIZON,
        None,
        "arcade",
        "discrete",
        kwargs,
        instructions,
    )


def _atari(name: str, rom: str, instructions: str) -> EnvInfo:
    kwargs = {"game": rom, "termination": "penalty"}
    return EnvInfo(
        f"{NAMESPACE}/{name}",
        _ATARI_ENV,
        ATARI_HORIZON,
        "atari",
        "atari",
        "discrete",
        kwargs,
        instructions,
    )


_TEXT_INSTRUCTIONS = {
    "sentiment": "which response makes the review more positive overall (in plain, well-formed "
    "sentences)?",
    "arithmetic": "which response gives an answer closer to the right result, as a short "
    "well-formed reply?",
    "harmless": "which response stays on the asked topic and stays polite (no rude words)?",
}


def _text(name: str, task: str, *, tokens: bool = False) -> EnvInfo:
    kwargs = {"task": task, "response_length": TEXT_RESPONSE_LENGTH}
    entry_point, horizon = (_TOKEN_TEXT_ENV, TEXT_RESPONSE_LENGTH) if tokens else (_TEXT_ENV, 1)
    return EnvInfo(
        f"{NAMESPACE}/{name}",
        entry_point,
        horizon,
        None,
        "text",
        "discrete",
        kwargs,
        _TEXT_INSTRUCTIONS[task],
    )


_FORWARD = "(to the right)"


ENVS: tuple[EnvInfo, ...] = (
    _control(
        "CartPole-v1",
        500,
        "classic",
        "discrete",
        "penalty",
        "which cart keeps its pole from falling over and stays on the track longer?",
    ),
    _control(
        "Acrobot-v1",
        500,
        "classic",
        "discrete",
        "absorb",
        "which swings its free end higher, sooner (bigger and bigger swings, up above the bar)?",
        shaping=0.1,
    ),
    _control(
        "MountainCarContinuous-v0",
        999,
        "classic",
        "continuous",
        "absorb",
        "which car gets up to the flag on the right hill, sooner and with less pushing?",
    ),
    _control(
        "Pendulum-v1",
        200,
        "classic",
        "continuous",
        "keep",
        "which keeps the pendulum closer to straight up and still, with less effort?",
    ),
    _control(
        "LunarLander-v3",
        1000,
        "box2d",
        "discrete",
        "absorb",
        "which lander comes down closer to the pad between the flags, slowly and upright, "
        "and lands without crashing (firing less)?",
        continuous=False,
    ),
    _control(
        "Hopper-v5",
        1000,
        "mujoco",
        "continuous",
        "penalty",
        f"which hopper hops forward {_FORWARD} faster without falling over?",
    ),
    _control(
        "Walker2d-v5",
        1000,
        "mujoco",
        "continuous",
        "penalty",
        f"which walker moves forward {_FORWARD} faster without falling over?",
    ),
    _control(
        "HalfCheetah-v5",
        1000,
        "mujoco",
        "continuous",
        "keep",
        f"which cheetah runs forward {_FORWARD} faster (flipped or not)?",
    ),
    _control(
        "Swimmer-v5",
        1000,
        "mujoco",
        "continuous",
        "keep",
        "which swimmer moves forward faster?",
    ),
    _control(
        "Ant-v5",
        1000,
        "mujoco",
        "continuous",
        "penalty",
        "which ant walks forward faster without flipping over or kicking wildly?",
    ),
    _control(
        "Reacher-v5",
        50,
        "mujoco",
        "continuous",
        "keep",
        "which arm gets its fingertip onto the target sooner and keeps it there, moving less?",
    ),
    _control(
        "InvertedPendulum-v5",
        1000,
        "mujoco",
        "continuous",
        "penalty",
        "which cart keeps its pole upright longer without it falling?",
    ),
    _control(
        "InvertedDoublePendulum-v5",
        1000,
        "mujoco",
        "continuous",
        "penalty",
        "which keeps the two-part pole upright, its tip high and steady, without falling?",
    ),
    _arcade(
        "ArcadePong-v0",
        "pong",
        "which green paddle (right) wins more points: the opponent misses, it does not?",
    ),
    _arcade(
        "ArcadeBreakout-v0",
        "breakout",
        "which breaks more bricks (the top rows count most)?",
    ),
    _arcade(
        "ArcadeEnduro-v0",
        "enduro",
        "which car overtakes more cars and is overtaken less?",
    ),
    _atari("Pong-v5", "pong", "which green paddle (right) wins more points and loses fewer?"),
    _atari("Breakout-v5", "breakout", "which breaks more bricks (higher rows count more)?"),
    _atari("Enduro-v5", "enduro", "which car passes more cars and is passed less?"),
    _atari("BeamRider-v5", "beam_rider", "which ship destroys more enemies?"),
    _atari("Qbert-v5", "qbert", "which Q*bert changes more cubes' colour and scores more?"),
    _atari(
        "Seaquest-v5", "seaquest", "which submarine shoots more sharks and subs and rescues divers?"
    ),
    _atari("SpaceInvaders-v5", "space_invaders", "which cannon shoots down more invaders?"),
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


def instructions_for(env_id: str) -> str:
    """What a person judging clips of ``env_id`` looks for ("" for an id the suite lacks)."""
    for env in ALL_ENVS:
        if env.id == env_id:
            return env.instructions
    return ""


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
