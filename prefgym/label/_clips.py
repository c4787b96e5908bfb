"""What a segment looks like in the labeling window: a clip.

:func:`clip_for` chooses, in this order:

1. ``info["prompt"]`` and ``info["response"]`` (the text game): the text.
2. ``info["seed"]`` (and ``info["prefix_actions"]``, the actions taken after that
   reset before the segment's first step, default none): the segment is
   re-simulated in ``gymnasium.make(env_id, render_mode="rgb_array")`` and its
   frames rendered at the environment's full resolution, sharp where the stored
   frames (kept small, every third pixel) would be scaled up; if the re-simulated
   observations differ from the stored ones the replay is not trusted and the
   next choice is used. The loop records both for a person's clips.
3. Stored frames ``(T, H, W, 3)``.
4. Image observations, uint8: ``(T, H, W)`` or ``(T, H, W, 1)`` grayscale and
   ``(T, H, W, 3)`` RGB are shown as they are; any other ``(T, H, W, k)`` is a
   stack of ``k`` grayscale frames, oldest first (the arcade games and Atari),
   of which the newest, ``observations[..., -1]``, is shown.
5. Otherwise the observations themselves, plotted over time, one row per
   dimension, clearly marked "no frames stored". This is what a person sees
   for segments the loop stored without frames (as it does by default).

Nothing here imports pygame.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from prefgym.label._state import ClipKind
from prefgym.segments import Segment

if TYPE_CHECKING:
    import gymnasium as gym

DEFAULT_FPS = 30.0
"""Playback rate when the environment declares no ``render_fps``."""

_OBSERVATION_NAMES: dict[str, tuple[str, ...]] = {
    "CartPole": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Pendulum": ("cos angle", "sin angle", "angular velocity"),
    "MountainCarContinuous": ("position", "velocity"),
    "Acrobot": ("cos th1", "sin th1", "cos th2", "sin th2", "th1 velocity", "th2 velocity"),
}


@dataclass(frozen=True, eq=False)
class Clip:
    """One segment as the window shows it."""

    kind: ClipKind
    """``frames``, ``observations`` (a plot: no frames) or ``text``."""
    length: int
    """Steps ``T`` (1 for text)."""
    frames: np.ndarray | None = None
    """``(T, H, W, 3)`` uint8 for ``kind="frames"``."""
    observations: np.ndarray | None = None
    """``(T, D)`` float64 for ``kind="observations"``."""
    names: tuple[str, ...] = ()
    """A name per observation dimension."""
    prompt: str = ""
    response: str = ""
    note: str = ""
    """Where the picture comes from, shown under the panel."""


def clip_for(segment: Segment, *, replay: bool = True, replayer: Replayer | None = None) -> Clip:
    """How ``segment`` is shown (see the module docstring for the order of choices).

    Args:
        segment: The segment.
        replay: Re-simulate it if it records how (choice 2); False skips that.
        replayer: Re-simulates it, keeping its environments (a labeling window's loader
            thread has one); None makes a fresh environment for this call.
    """
    info = segment.info
    if isinstance(info.get("prompt"), str) and isinstance(info.get("response"), str):
        return Clip("text", 1, prompt=info["prompt"], response=info["response"])
    note = ""
    if replay and "seed" in info and segment.env_id:
        own = replayer is None
        replayer = replayer or Replayer()
        try:
            frames = replayer.frames(segment)
        finally:
            if own:
                replayer.close()
        if frames is not None:
            return Clip("frames", segment.length, frames=frames, note="re-simulated from its seed")
        if segment.env_id not in replayer.slow:  # too slow to replay is no divergence
            note = "replay diverged; "
    if segment.frames is not None:
        return Clip(
            "frames", segment.length, frames=_rgb(segment.frames), note=note + "stored frames"
        )
    observations = np.asarray(segment.observations)
    images = _observation_frames(observations)
    if images is not None:
        frames, what = images
        return Clip("frames", segment.length, frames=frames, note=note + what)
    flat = observations.reshape(segment.length, -1).astype(np.float64)
    base = segment.env_id.split("/")[-1].split("-")[0]
    names = _OBSERVATION_NAMES.get(base, ())
    if len(names) != flat.shape[1]:
        names = tuple(f"observation {i}" for i in range(flat.shape[1]))
    return Clip(
        "observations",
        segment.length,
        observations=flat,
        names=names,
        note=note + "no frames stored: observations shown instead",
    )


def _observation_frames(observations: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Frames ``(T, H, W, 3)`` of uint8 image observations (rule 4 above) and what they are.

    None when the observations are not images.
    """
    if observations.dtype != np.uint8 or observations.ndim not in (3, 4):
        return None
    if observations.ndim == 4 and observations.shape[-1] not in (1, 3):
        return _rgb(observations[..., -1]), "observations: newest frame of each stack"
    return _rgb(observations), "observations"


def _rgb(images: np.ndarray) -> np.ndarray:
    """Gray ``(T, H, W)``, ``(T, H, W, 1)``, RGB or RGBA images as RGB ``(T, H, W, 3)`` uint8."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return np.ascontiguousarray(images[..., :3])


REPLAY_BUDGET = 0.5
"""Seconds a clip's replay may take; an environment whose renderer is slower (MuJoCo
through Mesa on a CPU) is shown from its stored frames from then on."""


class Replayer:
    """Re-simulates segments to render them at full size, keeping one environment per id.

    Not thread-safe: a labeling window's loader thread owns one and is the only
    thread that uses it (MuJoCo's GL contexts belong to the thread that made them).
    """

    def __init__(
        self, budget: float = REPLAY_BUDGET, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        """Replay clips whose rendering fits in ``budget`` seconds (timed with ``clock``)."""
        self.budget, self.clock = budget, clock
        self.slow: set[str] = set()
        """Environment ids found too slow to render within ``budget``."""
        self._envs: dict[str, gym.Env[Any, Any]] = {}

    def clips(self, segments: Sequence[Segment]) -> tuple[Clip, ...] | None:
        """The clips of ``segments`` with every replay that works; None if none can replay."""
        if not any("seed" in s.info and s.env_id not in ("", *self.slow) for s in segments):
            return None
        return tuple(clip_for(s, replayer=self) for s in segments)

    def frames(self, segment: Segment) -> np.ndarray | None:
        """Frames ``(T, H, W, 3)`` of ``segment`` re-simulated from ``info["seed"]``, or None.

        None when the environment cannot be made or render, renders too slowly
        (the second frame's render time, times the length, over the budget), or
        the re-simulated observations differ from the stored ones.
        """
        if segment.env_id in self.slow:
            return None
        try:
            env = self._env(segment.env_id)
            observation, _ = env.reset(seed=int(segment.info["seed"]))
            dtype = np.asarray(segment.actions).dtype
            for action in segment.info.get("prefix_actions", []):
                observation, *_ = env.step(np.asarray(action, dtype=dtype))
            frames = []
            for t, action in enumerate(segment.actions):
                if not np.allclose(observation, segment.observations[t], atol=1e-5):
                    return None
                started = self.clock()
                frames.append(np.asarray(env.render()))
                if t == 1 and (self.clock() - started) * segment.length > self.budget:
                    self.slow.add(segment.env_id)
                    return None
                observation, *_ = env.step(action)
            return _rgb(np.stack(frames))
        except Exception:  # unknown id, missing extra, a replay that cannot run: not trusted
            return None

    def close(self) -> None:
        """Close the environments kept."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def _env(self, env_id: str) -> gym.Env[Any, Any]:
        if env_id not in self._envs:
            self._envs[env_id] = make_registered(env_id, render_mode="rgb_array")
        return self._envs[env_id]


def replay_frames(segment: Segment) -> np.ndarray | None:
    """Frames of ``segment`` re-simulated in a fresh environment (see :meth:`Replayer.frames`)."""
    replayer = Replayer()
    try:
        return replayer.frames(segment)
    finally:
        replayer.close()


def render_fps(env_id: str) -> float:
    """The env's ``metadata["render_fps"]`` (it is made once), else :data:`DEFAULT_FPS`."""
    try:
        env = make_registered(env_id)
    except Exception:  # not a registered env (e.g. text): the default will do
        return DEFAULT_FPS
    fps = env.metadata.get("render_fps")
    env.close()
    return float(fps) if fps else DEFAULT_FPS


def make_registered(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """``gymnasium.make(env_id)`` for an id prefgym registered, and nothing else.

    A store's ``env_id`` is data from disk: gymnasium reads ``module:Env`` as
    "import ``module``", so an id from a crafted store could run code. Only ids
    of the ``prefgym/`` namespace that are in gymnasium's registry are made.

    Raises:
        ValueError: ``env_id`` is not a registered ``prefgym/`` id.
    """
    import gymnasium as gym

    if ":" in env_id or not env_id.startswith("prefgym/") or env_id not in gym.registry:
        raise ValueError(
            f"{env_id!r} is not a registered prefgym environment; a store naming it is "
            "damaged or crafted, and its clips are shown without replaying them"
        )
    return gym.make(env_id, **kwargs)
