"""What a segment looks like in the labeling window: text, frames, a replay, or a plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import pytest

import prefgym  # noqa: F401  (registers the environments)
from prefgym.label import clip_for
from prefgym.label._clips import DEFAULT_FPS, make_registered, render_fps, replay_frames
from prefgym.segments import Segment

if TYPE_CHECKING:  # fixtures hand these over at run time
    from conftest import SegmentFactory


def test_clips_prefer_text_then_frames(
    rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
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


def test_without_frames_the_observations_are_plotted_with_names(
    rng: np.random.Generator, make_segment: SegmentFactory
) -> None:
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


@pytest.mark.parametrize("depth", [2, 4, 8])
def test_a_frame_stack_shows_its_newest_frame_in_gray(rng: np.random.Generator, depth: int) -> None:
    stacks = rng.integers(0, 256, size=(5, 84, 84, depth), dtype=np.uint8)
    clip = clip_for(Segment(stacks, np.zeros(5), np.zeros(5), env_id="prefgym/Pong-v5"))
    assert clip.kind == "frames" and clip.frames is not None
    assert clip.frames.shape == (5, 84, 84, 3) and clip.frames.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(clip.frames[..., channel], stacks[..., -1])
    assert "newest frame" in clip.note


def test_one_channel_is_gray_and_three_are_rgb(rng: np.random.Generator) -> None:
    gray = rng.integers(0, 256, size=(3, 84, 84, 1), dtype=np.uint8)
    clip = clip_for(Segment(gray, np.zeros(3), np.zeros(3)))
    assert clip.frames is not None and clip.frames.shape == (3, 84, 84, 3)
    np.testing.assert_array_equal(clip.frames, np.repeat(gray, 3, axis=-1))
    rgb = rng.integers(0, 256, size=(3, 84, 84, 3), dtype=np.uint8)
    clip = clip_for(Segment(rgb, np.zeros(3), np.zeros(3)))
    assert clip.frames is not None and np.array_equal(clip.frames, rgb)
    assert clip.note == "observations"


def test_float_image_shaped_observations_are_plotted(rng: np.random.Generator) -> None:
    stacks = rng.random(size=(2, 8, 8, 4)).astype(np.float32)
    clip = clip_for(Segment(stacks, np.zeros(2), np.zeros(2)))
    assert clip.kind == "observations" and clip.frames is None


def test_an_arcade_segment_without_frames_shows_what_the_agent_saw() -> None:
    env = gym.make("prefgym/ArcadePong-v0")
    observation, _ = env.reset(seed=0)
    observations = []
    for _ in range(4):
        observations.append(observation)
        observation, *_ = env.step(env.action_space.sample())
    env.close()
    stacks = np.stack(observations)
    assert stacks.dtype == np.uint8 and stacks.shape[1:3] == (84, 84) and stacks.shape[3] > 1
    segment = Segment(stacks, np.zeros(4), np.zeros(4), env_id="prefgym/ArcadePong-v0")
    clip = clip_for(segment)
    assert clip.kind == "frames" and clip.frames is not None
    np.testing.assert_array_equal(clip.frames[..., 0], stacks[..., -1])


def test_a_crafted_env_id_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "payload_module.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    segment = Segment(
        observations=np.zeros((2, 4), dtype=np.float32),
        actions=np.zeros(2, dtype=np.int64),
        true_rewards=np.zeros(2, dtype=np.float32),
        env_id="payload_module:Payload-v0",
        info={"seed": 0},
    )
    assert replay_frames(segment) is None
    assert render_fps(segment.env_id) == DEFAULT_FPS
    with pytest.raises(ValueError, match="not a registered prefgym environment"):
        make_registered("payload_module:Payload-v0")
    with pytest.raises(ValueError, match="not a registered prefgym environment"):
        make_registered("CartPole-v1")  # gymnasium's own, not a preference task
    assert not marker.exists()
    assert make_registered("prefgym/CartPole-v1").spec is not None


def test_a_person_s_clip_is_replayed_sharp_at_full_size_rather_than_from_small_frames() -> None:
    """A human run's segments carry small stored frames and how to replay them."""
    from prefgym.segments import make_vector_env, random_policy, rollout_segments

    env = make_vector_env("prefgym/CartPole-v1", 2, frames=True, replayable=True)
    env.action_space.seed(0)
    segments = rollout_segments(
        env, random_policy(env.action_space), 2, 8, seed=1, frames=True, frame_stride=3
    )
    env.close()
    clip = clip_for(segments[1])
    assert clip.kind == "frames" and "re-simulated" in clip.note
    assert clip.frames is not None and clip.frames.shape == (8, 400, 600, 3)  # full size
    small = segments[1].frames
    assert small is not None and small.shape == (8, 134, 200, 3)
    assert np.array_equal(clip.frames[:, ::3, ::3], small)  # the same picture, sharper
    assert "stored frames" in clip_for(segments[1], replay=False).note


def test_an_env_that_renders_too_slowly_is_shown_from_its_stored_frames() -> None:
    from prefgym.label._clips import Replayer
    from prefgym.segments import make_vector_env, random_policy, rollout_segments

    env = make_vector_env("prefgym/CartPole-v1", 1, frames=True, replayable=True)
    segments = rollout_segments(env, random_policy(env.action_space), 2, 8, seed=1, frames=True)
    env.close()
    ticks = iter(range(1000))
    slow = Replayer(budget=1.0, clock=lambda: float(next(ticks)))  # 1 s a frame: too slow
    try:
        assert clip_for(segments[0], replayer=slow).note == "stored frames"  # no "diverged"
        assert slow.slow == {"prefgym/CartPole-v1"}
        assert slow.frames(segments[1]) is None and slow.clips(segments) is None  # not tried
    finally:
        slow.close()
    fast = Replayer()
    try:
        clips = fast.clips(segments)
        assert clips is not None and all("re-simulated" in c.note for c in clips)
    finally:
        fast.close()
