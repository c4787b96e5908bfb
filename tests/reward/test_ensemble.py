from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefgym  # noqa: F401  (registers the environments)
from prefgym.reward import (
    METADATA_FILE,
    WEIGHTS_FILE,
    MlpRewardNet,
    RewardEnsemble,
    RewardModelConfig,
    build_reward_net,
)
from prefgym.segments import Segment, make_vector_env, random_policy, rollout_segments

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _segments(
    rng: np.random.Generator, n: int = 20, length: int = 6, obs_dim: int = 4
) -> list[Segment]:
    return [
        Segment(
            rng.normal(size=(length, obs_dim)),
            rng.integers(0, 2, size=length),
            rng.normal(size=length),
        )
        for _ in range(n)
    ]


def _env_segments(env_id: str, n: int = 8, length: int = 5) -> tuple[RewardEnsemble, list[Segment]]:
    env = make_vector_env(env_id, 2)
    env.action_space.seed(0)
    segments = rollout_segments(env, random_policy(env.action_space), n, length, seed=0)
    ensemble = RewardEnsemble(
        env.single_observation_space, env.single_action_space, generator=_generator()
    )
    env.close()
    return ensemble, segments


def test_pixel_observations_get_a_cnn_and_dicts_an_error() -> None:
    from prefgym.reward import CnnRewardNet

    pixels = gym.spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8)
    net = build_reward_net(pixels, gym.spaces.Discrete(4), RewardModelConfig())
    assert isinstance(net, CnnRewardNet)
    with pytest.raises(NotImplementedError, match="FlattenObservation"):
        build_reward_net(gym.spaces.Dict({"x": BOX4}), gym.spaces.Discrete(4), RewardModelConfig())


def test_generator_makes_initialisation_reproducible() -> None:
    a = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator(1))
    b = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator(1))
    c = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator(2))
    for key, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[key])
    first = [m.state_dict()["mlp.0.weight"] for m in (a.members[0], a.members[1], c.members[0])]
    assert not torch.equal(first[0], first[2])
    assert not torch.equal(first[0], first[1])  # members of one ensemble start different


def test_normalise_gives_zero_mean_unit_std_per_member(rng: np.random.Generator) -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    segments = _segments(rng, n=30)
    observations = np.stack([s.observations for s in segments])
    actions = np.stack([s.actions for s in segments])
    raw = ensemble.member_step_rewards(observations, actions, normalised=False).detach()
    assert raw.std() < 0.5  # a fresh net is far from unit scale, so the test can fail
    ensemble.normalise(segments)
    rewards = ensemble.member_step_rewards(observations, actions).detach().double()
    flat = rewards.reshape(ensemble.n_members, -1)
    np.testing.assert_allclose(flat.mean(1).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(1, unbiased=False).numpy(), 1.0, atol=1e-4)
    np.testing.assert_allclose(
        ensemble.scale.numpy(), raw.reshape(3, -1).std(1, unbiased=False), rtol=1e-4
    )


def test_normalise_handles_segments_of_different_lengths(rng: np.random.Generator) -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    segments = _segments(rng, n=5, length=3) + _segments(rng, n=5, length=8)
    ensemble.normalise(segments)
    steps = ensemble.step_rewards(
        np.concatenate([s.observations for s in segments]),
        np.concatenate([s.actions for s in segments]),
    )
    assert abs(float(steps.mean())) < 1e-5
    returns = ensemble.segment_returns(segments)
    assert returns.shape == (3, 10)
    expected = ensemble.member_returns(segments[7].observations[None], segments[7].actions[None])
    np.testing.assert_allclose(returns[:, 7], expected[:, 0].detach().numpy(), rtol=1e-5)


def test_constant_member_keeps_unit_scale(rng: np.random.Generator) -> None:
    config = RewardModelConfig(n_members=1, hidden_sizes=())
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), config, generator=_generator())
    with torch.no_grad():
        for parameter in ensemble.parameters():
            parameter.zero_()
    ensemble.normalise(_segments(rng, n=3))
    assert ensemble.scale.tolist() == [1.0]
    assert np.isfinite(ensemble.step_rewards(np.ones((2, 4)), np.zeros(2))).all()


def test_step_rewards_match_member_returns_summed(rng: np.random.Generator) -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    segments = _segments(rng, n=12, length=6)
    ensemble.normalise(segments[:6])  # non-trivial offset and scale
    observations = np.stack([s.observations for s in segments])  # (12, 6, 4)
    actions = np.stack([s.actions for s in segments])
    steps = ensemble.step_rewards(observations.reshape(-1, 4), actions.reshape(-1))
    assert steps.dtype == np.float32
    assert steps.shape == (72,)
    returns = ensemble.member_returns(observations, actions).detach().mean(0).numpy()
    np.testing.assert_allclose(steps.reshape(12, 6).sum(1), returns, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        ensemble.segment_returns(segments).mean(0), returns, rtol=1e-5, atol=1e-5
    )


def test_step_rewards_name_a_wrong_shape() -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    with pytest.raises(ValueError, match=r"got observations \(3, 5\)"):
        ensemble.step_rewards(np.zeros((3, 5)), np.zeros(3))


@pytest.mark.parametrize("env_id", ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"])
def test_real_env_spaces_score_vector_env_batches(env_id: str) -> None:
    ensemble, segments = _env_segments(env_id)
    observations = np.stack([s.observations[0] for s in segments])
    actions = np.stack([s.actions[0] for s in segments])
    rewards = ensemble.step_rewards(observations, actions)
    assert rewards.shape == (len(segments),)
    assert np.isfinite(rewards).all()
    assert len(np.unique(rewards)) > 1
    assert ensemble.segment_returns(segments).shape == (3, len(segments))


@pytest.mark.parametrize("env_id", ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"])
def test_save_load_round_trip_gives_identical_rewards(env_id: str, tmp_path: Path) -> None:
    ensemble, segments = _env_segments(env_id)
    ensemble.normalise(segments)
    ensemble.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(
        [METADATA_FILE, WEIGHTS_FILE]
    )
    metadata = json.loads((tmp_path / "model" / METADATA_FILE).read_text())
    assert metadata["config"]["n_members"] == 3
    loaded = RewardEnsemble.load(tmp_path / "model")
    assert loaded.config == ensemble.config
    assert loaded.observation_space == ensemble.observation_space
    assert loaded.action_space == ensemble.action_space
    np.testing.assert_array_equal(loaded.scale.numpy(), ensemble.scale.numpy())
    np.testing.assert_array_equal(
        loaded.segment_returns(segments), ensemble.segment_returns(segments)
    )


def test_load_names_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no reward model"):
        RewardEnsemble.load(tmp_path)


def test_shared_encoding_gives_each_members_own_rewards() -> None:
    env = gym.make("prefgym/CartPole-v1")
    ensemble = RewardEnsemble(env.observation_space, env.action_space)
    obs = torch.randn(5, 7, 4)
    act = torch.randint(0, 2, (5, 7))
    together = ensemble.member_step_rewards(obs, act, normalised=False)
    one_by_one = torch.stack([member(obs, act) for member in ensemble.members])
    torch.testing.assert_close(together, one_by_one)


def _scaled_segments(rng: np.random.Generator, n: int = 30) -> list[Segment]:
    """Segments whose observation parts differ in scale and offset, as Acrobot's do."""
    scale, offset = np.array([1.0, 0.1, 12.0, 30.0]), np.array([0.0, 5.0, -3.0, 0.0])
    return [
        Segment(
            rng.normal(size=(6, 4)) * scale + offset,
            rng.integers(0, 2, size=6),
            rng.normal(size=6),
        )
        for _ in range(n)
    ]


def test_standardise_inputs_gives_the_first_layer_zero_mean_unit_std(
    rng: np.random.Generator,
) -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    segments = _scaled_segments(rng)
    before = [m.state_dict()["mlp.0.weight"].clone() for m in ensemble.members]
    ensemble.standardise_inputs(segments)
    observations = torch.as_tensor(np.concatenate([s.observations for s in segments])[None])
    actions = torch.as_tensor(np.concatenate([s.actions for s in segments])[None])
    for member, weight in zip(ensemble.members, before, strict=True):
        assert isinstance(member, MlpRewardNet) and member.standardised
        features = member.features(observations, actions)[0]
        standardised = (features - member.input_offset) / member.input_scale
        np.testing.assert_allclose(standardised.mean(0).numpy(), 0.0, atol=1e-5)
        np.testing.assert_allclose(standardised.std(0, correction=0).numpy(), 1.0, atol=1e-4)
        torch.testing.assert_close(member.state_dict()["mlp.0.weight"], weight)  # as initialised


def test_standardising_again_keeps_every_reward(rng: np.random.Generator) -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    ensemble.standardise_inputs(_scaled_segments(rng))
    probe = _scaled_segments(rng, n=5)
    before = ensemble.segment_returns(probe, normalised=False)
    shifted = [
        Segment(s.observations * 3.0 + 7.0, s.actions, s.true_rewards)
        for s in _scaled_segments(rng)
    ]
    ensemble.standardise_inputs(shifted)
    scales = [m.input_scale for m in ensemble.members if isinstance(m, MlpRewardNet)]
    assert all(s[2] > 30 for s in scales)  # the statistics did move
    np.testing.assert_allclose(ensemble.segment_returns(probe, normalised=False), before, rtol=1e-5)


def test_a_constant_input_is_only_centred() -> None:
    ensemble = RewardEnsemble(BOX4, gym.spaces.Discrete(2), generator=_generator())
    segments = [Segment(np.full((4, 4), 2.5), np.array([0, 1, 0, 1]), np.zeros(4))]
    ensemble.standardise_inputs(segments)
    member = ensemble.members[0]
    assert isinstance(member, MlpRewardNet)
    np.testing.assert_allclose(member.input_offset.numpy()[:4], 2.5)
    np.testing.assert_allclose(member.input_scale.numpy()[:4], 1.0)
    np.testing.assert_allclose(member.input_scale.numpy()[4:], 0.5)  # the one-hot actions


def test_a_model_saved_before_inputs_were_standardised_loads(tmp_path: Path) -> None:
    ensemble, segments = _env_segments("prefgym/CartPole-v1")
    ensemble.save(tmp_path / "model")
    weights = tmp_path / "model" / WEIGHTS_FILE
    from safetensors.torch import load_file, save_file

    old = {k: v for k, v in load_file(str(weights)).items() if "input_" not in k}
    save_file(old, str(weights))
    loaded = RewardEnsemble.load(tmp_path / "model")
    np.testing.assert_array_equal(
        loaded.segment_returns(segments), ensemble.segment_returns(segments)
    )
