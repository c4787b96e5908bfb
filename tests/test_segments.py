from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import given
from hypothesis import strategies as st

import prefgym  # noqa: F401
from prefgym.segments import (
    Segment,
    SegmentCutter,
    make_vector_env,
    random_policy,
    rollout_segments,
    sample_pairs,
)


def _segment(rewards: list[float]) -> Segment:
    n = len(rewards)
    return Segment(np.zeros((n, 2)), np.zeros(n, dtype=np.int64), np.asarray(rewards))


def test_segment_reports_its_length_and_true_return() -> None:
    segment = _segment([1.0, 2.0, -0.5])
    assert segment.length == 3
    assert segment.true_return == pytest.approx(2.5)


def test_segment_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="one row per step"):
        Segment(np.zeros((3, 2)), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="at least one step"):
        Segment(np.zeros((0, 2)), np.zeros(0), np.zeros(0))


def test_cutter_never_crosses_an_episode_boundary() -> None:
    cutter = SegmentCutter(n_envs=2, length=3)
    segments: list[Segment] = []
    for t in range(10):
        observations = np.array([[t], [100 + t]], dtype=np.float64)
        dones = np.array([t == 4, False])  # env 0 ends its episode after step 4
        segments += cutter.add(observations, np.zeros(2), np.ones(2), dones)
    env0 = [s.observations[:, 0].tolist() for s in segments if s.observations[0, 0] < 100]
    env1 = [s.observations[:, 0].tolist() for s in segments if s.observations[0, 0] >= 100]
    assert env0 == [[0, 1, 2], [5, 6, 7]]  # steps 3-4 were a partial segment, dropped
    assert env1 == [[100, 101, 102], [103, 104, 105], [106, 107, 108]]


def test_cutter_skips_invalid_steps() -> None:
    cutter = SegmentCutter(n_envs=1, length=2)
    out = cutter.add(np.zeros((1, 1)), np.zeros(1), np.ones(1), np.array([False]))
    out += cutter.add(
        np.ones((1, 1)), np.zeros(1), np.ones(1), np.array([False]), valid=np.array([False])
    )
    out += cutter.add(np.full((1, 1), 2.0), np.zeros(1), np.ones(1), np.array([False]))
    assert [s.observations[:, 0].tolist() for s in out] == [[0.0, 2.0]]


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_rollout_segments_match_the_true_rewards(mode: AutoresetMode) -> None:
    env = gym.make_vec("prefgym/CartPole-v1", num_envs=2, vector_kwargs={"autoreset_mode": mode})
    segments = rollout_segments(env, random_policy(env.action_space), 12, 50, seed=0)
    assert len(segments) == 12
    assert all(s.length == 50 and s.env_id == "prefgym/CartPole-v1" for s in segments)
    returns = [s.true_return for s in segments]
    falls = [(50 - r) / 11 for r in returns]  # +1 a step; a fall's next step pays -10 instead
    assert all(f == int(f) and f >= 0 for f in falls)
    assert max(falls) >= 1  # random play falls: the penalty shows up


def test_rollout_is_deterministic_under_a_seed() -> None:
    def returns(seed: int) -> list[float]:
        env = make_vector_env("prefgym/CartPole-v1", 2)
        env.action_space.seed(seed)
        segs = rollout_segments(env, random_policy(env.action_space), 6, 25, seed=seed)
        return [s.true_return for s in segs]

    assert returns(1) == returns(1)


def test_rollout_keeps_frames_when_asked() -> None:
    env = make_vector_env("prefgym/Pendulum-v1", 1, frames=True)
    (segment,) = rollout_segments(env, random_policy(env.action_space), 1, 5, seed=0, frames=True)
    assert segment.frames is not None
    assert segment.frames.shape[0] == 5 and segment.frames.dtype == np.uint8


def test_rollout_needs_an_rgb_env_for_frames() -> None:
    env = make_vector_env("prefgym/Pendulum-v1", 1)
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        rollout_segments(env, random_policy(env.action_space), 1, 5, frames=True)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_rollout_gives_up_when_no_episode_is_long_enough(mode: AutoresetMode) -> None:
    env = gym.make_vec("prefgym/Pendulum-v1", num_envs=2, vector_kwargs={"autoreset_mode": mode})
    with pytest.raises(
        ValueError,
        match=r"prefgym/Pendulum-v1: no segment of 201 steps in 4 episodes in a row, the longest "
        r"had 200 steps; use a segment length of at most 200",
    ):
        rollout_segments(env, random_policy(env.action_space), 1, 201, seed=0, patience=3)
    segments = rollout_segments(env, random_policy(env.action_space), 2, 200, seed=0, patience=1)
    assert [s.length for s in segments] == [200, 200]  # a whole episode is a segment
    with pytest.raises(ValueError, match="patience must be >= 1 episode, got 0"):
        rollout_segments(env, random_policy(env.action_space), 1, 5, patience=0)


@given(n_segments=st.integers(2, 50), n_pairs=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_sampled_pairs_are_distinct_and_in_range(n_segments: int, n_pairs: int, seed: int) -> None:
    pairs = sample_pairs(n_segments, n_pairs, np.random.default_rng(seed))
    assert pairs.shape == (n_pairs, 2)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert pairs.min(initial=0) >= 0 and pairs.max(initial=0) < n_segments


def test_sampled_pairs_cover_all_ordered_pairs_uniformly(rng: np.random.Generator) -> None:
    pairs = sample_pairs(4, 12_000, rng)
    counts = np.zeros((4, 4))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    off_diagonal = counts[~np.eye(4, dtype=bool)]
    assert np.all(np.abs(off_diagonal - 1000) < 150)


def test_pairs_need_two_segments(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="need at least 2 segments"):
        sample_pairs(1, 3, rng)


def test_rollout_keeps_the_true_reward_of_the_final_step() -> None:
    env = make_vector_env("prefgym/Pendulum-v1", 2)  # all envs end together at step 200
    segments = rollout_segments(env, random_policy(env.action_space), 16, 25, seed=0)
    assert len(segments) == 16
    assert all(np.all(s.true_rewards < 0) for s in segments)  # Pendulum's reward is never 0


def test_first_non_finite_finds_the_first_bad_element_and_counts_them() -> None:
    from prefgym.segments import NonFinite, first_non_finite

    segment = Segment(
        observations=np.zeros((3, 2), dtype=np.float32),
        actions=np.array([0, 1, 1]),  # integers are always finite
        true_rewards=np.array([1.0, np.inf, np.nan], dtype=np.float32),
    )
    assert first_non_finite(segment) == NonFinite("true_rewards", (1,), np.inf, 2)
    assert first_non_finite(segment, ("observations", "actions")) is None


@pytest.mark.parametrize("env_id", ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"])
def test_a_replayable_rollout_records_how_to_re_simulate_every_segment(env_id: str) -> None:
    """Seed and prefix actions reproduce each segment, in later episodes too."""
    import gymnasium as gym

    env = make_vector_env(env_id, 2, replayable=True)
    env.action_space.seed(3)
    segments = rollout_segments(env, random_policy(env.action_space), 30, 50, seed=7)
    env.close()  # 750 steps an env: past the fixed horizon (500, 200), into later episodes
    seeds = {s.info["seed"] for s in segments}
    assert len(seeds) > 2  # segments of later episodes, each episode seeded on its own
    assert any(s.info["prefix_actions"] for s in segments)
    single = gym.make(env_id)
    for segment in segments:
        observation, _ = single.reset(seed=segment.info["seed"])
        for action in segment.info["prefix_actions"]:
            observation, *_ = single.step(np.asarray(action, dtype=segment.actions.dtype))
        for t, action in enumerate(segment.actions):
            np.testing.assert_allclose(observation, segment.observations[t], atol=1e-6)
            observation, *_ = single.step(action)
    single.close()
    plain = make_vector_env(env_id, 2)  # not replayable: nothing recorded
    assert all(
        s.info == {}
        for s in rollout_segments(plain, random_policy(plain.action_space), 4, 10, seed=7)
    )


def test_a_replayable_rollout_needs_a_seed() -> None:
    env = make_vector_env("prefgym/CartPole-v1", 1, replayable=True)
    with pytest.raises(ValueError, match="first reset needs a seed"):
        rollout_segments(env, random_policy(env.action_space), 1, 5)
    env.close()
