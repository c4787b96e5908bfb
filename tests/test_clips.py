"""What a segment looks like in the labeling window: text, frames, a replay, or a plot."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import prefgym  # noqa: F401  (registers the environments)
from prefgym.clips import clip_for
from prefgym.segments import Segment


def make_segment(rng: np.random.Generator, length: int = 6, frames: bool = True) -> Segment:
    return Segment(
        observations=rng.normal(size=(length, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=length),
        true_rewards=rng.normal(size=length),
        frames=rng.integers(0, 256, size=(length, 6, 8, 3), dtype=np.uint8) if frames else None,
        env_id="prefgym/CartPole-v1",
    )


def test_clips_prefer_text_then_frames(rng: np.random.Generator) -> None:
    text = Segment(
        np.zeros((1, 2)), np.zeros(1), np.zeros(1), info={"prompt": "Hi", "response": "Hello"}
    )
    clip = clip_for(text)
    assert (clip.kind, clip.prompt, clip.response) == ("text", "Hi", "Hello")
    clip = clip_for(make_segment(rng))
    assert clip.kind == "frames" and clip.frames is not None and clip.frames.shape == (6, 6, 8, 3)


def cartpole_segment(seed: int, prefix: int, length: int) -> Segment:
    env = gym.make("prefgym/CartPole-v1")
    observation, _ = env.reset(seed=seed)
    actions = [i % 2 for i in range(prefix + length)]
    observations, rewards = [], []
    for t, action in enumerate(actions):
        if t >= prefix:
            observations.append(observation)
        observation, _, _, _, info = env.step(action)
        if t >= prefix:
            rewards.append(info["true_reward"])
    return Segment(
        np.array(observations),
        np.array(actions[prefix:]),
        np.array(rewards),
        env_id="prefgym/CartPole-v1",
        info={"seed": seed, "prefix_actions": actions[:prefix]},
    )


def test_segments_without_frames_are_replayed_from_their_seed() -> None:
    segment = cartpole_segment(seed=5, prefix=4, length=6)
    clip = clip_for(segment)
    assert clip.kind == "frames" and "re-simulated" in clip.note
    env = gym.make("prefgym/CartPole-v1", render_mode="rgb_array")
    env.reset(seed=5)
    for action in segment.info["prefix_actions"]:
        env.step(action)
    assert clip.frames is not None and np.array_equal(clip.frames[0], env.render())


def test_a_replay_that_diverges_is_not_trusted() -> None:
    segment = cartpole_segment(seed=5, prefix=4, length=6)
    wrong = Segment(
        segment.observations,
        segment.actions,
        segment.true_rewards,
        env_id=segment.env_id,
        info={"seed": 6, "prefix_actions": segment.info["prefix_actions"]},
    )
    clip = clip_for(wrong)
    assert clip.kind == "observations" and "replay diverged" in clip.note


def test_without_frames_the_observations_are_plotted_with_names(rng: np.random.Generator) -> None:
    clip = clip_for(make_segment(rng, frames=False))
    assert clip.kind == "observations" and "no frames stored" in clip.note
    assert clip.names == ("cart position", "cart velocity", "pole angle", "pole angular velocity")
    other = Segment(rng.normal(size=(3, 2, 3)), np.zeros(3), np.zeros(3), env_id="x/Other-v0")
    clip = clip_for(other)
    assert clip.observations is not None and clip.observations.shape == (3, 6)
    assert clip.names[5] == "observation 5"


def test_image_observations_are_shown_as_frames(rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(4, 10, 12), dtype=np.uint8)
    clip = clip_for(Segment(pixels, np.zeros(4), np.zeros(4)))
    assert clip.kind == "frames" and clip.frames is not None and clip.frames.shape == (4, 10, 12, 3)
