from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefgym.reward import (
    CHRISTIANO,
    COMPACT,
    CnnRewardNet,
    CnnTrunk,
    Learner,
    LearnerConfig,
    RewardEnsemble,
    RewardModelConfig,
    build_reward_net,
)
from prefgym.segments import Segment

PIXELS = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
ACTIONS = gym.spaces.Discrete(3)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _frames(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=_generator(seed))


def test_pixel_spaces_get_a_cnn_of_the_configured_kind() -> None:
    net = build_reward_net(PIXELS, ACTIONS, RewardModelConfig())
    assert isinstance(net, CnnRewardNet)
    convolutions = [m for m in net.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convolutions] == list(CHRISTIANO.kernels)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.trunk)
    assert any(isinstance(m, torch.nn.Dropout) for m in net.trunk)
    assert not any(isinstance(m, torch.nn.Dropout2d) for m in net.trunk)
    compact = build_reward_net(PIXELS, ACTIONS, RewardModelConfig(cnn="compact"))
    convolutions = [m for m in compact.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convolutions] == list(COMPACT.kernels)
    assert any(isinstance(m, torch.nn.Dropout2d) for m in compact.trunk)  # feature-map dropout


def test_rejects_an_unknown_cnn() -> None:
    with pytest.raises(ValueError, match="cnn must be 'christiano' or 'compact'"):
        RewardModelConfig(cnn="resnet")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(84, 84, 4), (4, 84, 84), (84, 84, 1)])
def test_gives_one_reward_per_step_channel_last_or_first(shape: tuple[int, ...]) -> None:
    space = gym.spaces.Box(0, 255, shape, np.uint8)
    net = CnnRewardNet(space, ACTIONS, RewardModelConfig(), generator=_generator())
    rewards = net(_frames((2, 3, *shape)), torch.zeros(2, 3, dtype=torch.long))
    assert rewards.shape == (2, 3) and rewards.dtype == torch.float32


def test_channel_first_and_last_read_the_same_frames() -> None:
    last = gym.spaces.Box(0, 255, (84, 84, 2), np.uint8)
    first = gym.spaces.Box(0, 255, (2, 84, 84), np.uint8)
    a = CnnRewardNet(last, ACTIONS, RewardModelConfig(), generator=_generator()).eval()
    b = CnnRewardNet(first, ACTIONS, RewardModelConfig(), generator=_generator()).eval()
    frames = _frames((1, 2, 84, 84, 2))
    actions = torch.zeros(1, 2, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(a(frames, actions), b(frames.permute(0, 1, 4, 2, 3), actions))


def test_without_gradients_it_is_deterministic_and_keeps_its_statistics() -> None:
    net = CnnRewardNet(PIXELS, ACTIONS, RewardModelConfig(), generator=_generator())
    net.train()
    frames, actions = _frames((2, 5, 84, 84, 4)), torch.zeros(2, 5, dtype=torch.long)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        first, second = net(frames, actions), net(frames, actions)
    torch.testing.assert_close(first, second)
    assert net.training
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_with_gradients_in_training_it_uses_dropout_and_batch_statistics() -> None:
    net = CnnRewardNet(PIXELS, ACTIONS, RewardModelConfig(), generator=_generator())
    net.train()
    frames, actions = _frames((2, 5, 84, 84, 4)), torch.zeros(2, 5, dtype=torch.long)
    assert not torch.allclose(net(frames, actions), net(frames, actions))


def test_same_generator_same_weights() -> None:
    a = CnnRewardNet(PIXELS, ACTIONS, RewardModelConfig(), generator=_generator(3))
    b = CnnRewardNet(PIXELS, ACTIONS, RewardModelConfig(), generator=_generator(3))
    c = CnnRewardNet(PIXELS, ACTIONS, RewardModelConfig(), generator=_generator(4))
    for (name, x), y, z in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(x, y)
        if name.endswith("weight") and x.ndim > 1:
            assert not torch.equal(x, z)


def test_actions_matter_only_when_used() -> None:
    frames = _frames((1, 4, 84, 84, 4))
    zeros, twos = torch.zeros(1, 4, dtype=torch.long), torch.full((1, 4), 2)
    for use_actions in (False, True):
        config = RewardModelConfig(use_actions=use_actions, cnn="compact")
        net = CnnRewardNet(PIXELS, ACTIONS, config, generator=_generator()).eval()
        with torch.no_grad():
            same = torch.allclose(net(frames, zeros), net(frames, twos))
        assert same != use_actions


def test_rejects_vector_observations_and_frames_too_small() -> None:
    with pytest.raises(ValueError, match="use MlpRewardNet"):
        CnnRewardNet(gym.spaces.Box(-1, 1, (4,)), ACTIONS, RewardModelConfig())
    tiny = gym.spaces.Box(0, 255, (24, 24, 2), np.uint8)
    with pytest.raises(ValueError, match="too small"):
        CnnRewardNet(tiny, ACTIONS, RewardModelConfig())
    with pytest.raises(ValueError, match="one entry per layer"):
        CnnTrunk(channels=(16,), kernels=(3, 3), strides=(1,))


def test_an_ensemble_of_cnns_pays_step_rewards_and_round_trips(tmp_path) -> None:
    space = gym.spaces.Box(0, 255, (84, 84, 2), np.uint8)
    config = RewardModelConfig(n_members=2, cnn="compact")
    ensemble = RewardEnsemble(space, ACTIONS, config, generator=_generator())
    observations = _frames((6, 84, 84, 2)).numpy()
    actions = np.arange(6) % 3
    rewards = ensemble.step_rewards(observations, actions)
    assert rewards.shape == (6,) and rewards.dtype == np.float32
    loaded = RewardEnsemble.load(ensemble.save(tmp_path))
    assert loaded.config == config
    np.testing.assert_allclose(loaded.step_rewards(observations, actions), rewards, rtol=1e-5)


def test_members_sharing_the_frames_score_as_each_would_alone() -> None:
    config = RewardModelConfig(n_members=3, cnn="compact")
    ensemble = RewardEnsemble(PIXELS, ACTIONS, config, generator=_generator())
    frames, actions = _frames((2, 5, 84, 84, 4)), torch.zeros(2, 5, dtype=torch.long)
    with torch.no_grad():
        alone = torch.stack([member(frames, actions) for member in ensemble.members])
        shared = ensemble.member_step_rewards(frames, actions, normalised=False)
    torch.testing.assert_close(shared, alone)
    ensemble.train()  # and with gradients each member still trains through its own trunk
    shared = ensemble.member_step_rewards(frames, actions, normalised=False)
    shared[1].sum().backward()
    assert ensemble.members[1].trunk[0].weight.grad.abs().sum() > 0
    other = ensemble.members[0].trunk[0].weight.grad
    assert other is None or not other.any()


def _blob_segments(n: int, length: int, rng: np.random.Generator) -> list[Segment]:
    """Frames (48, 48, 1) with a bright square (reward +1 in the top half, -1 below) and a
    dimmer distractor square that earns nothing."""
    segments = []
    for _ in range(n):
        frames = np.zeros((length, 48, 48, 1), np.uint8)
        rewards = np.zeros(length)
        for t in range(length):
            y, x, dy, dx = rng.integers(0, 44, size=4)
            frames[t, y : y + 4, x : x + 4] = 255
            frames[t, dy : dy + 4, dx : dx + 4] = 90
            rewards[t] = 1.0 if y + 2 < 24 else -1.0
        segments.append(Segment(frames, np.zeros(length, np.int64), rewards))
    return segments


@pytest.mark.parametrize("cnn", ["christiano", "compact"])
def test_recovers_a_known_pixel_reward(cnn: str, rng: np.random.Generator) -> None:
    segments = _blob_segments(300, 2, rng)
    pairs = rng.integers(0, 300, size=(500, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    returns = np.array([s.true_return for s in segments])
    gap = returns[pairs[:, 0]] - returns[pairs[:, 1]]
    targets = np.where(gap > 0, 1.0, np.where(gap < 0, 0.0, 0.5))
    space = gym.spaces.Box(0, 255, (48, 48, 1), np.uint8)
    ensemble = RewardEnsemble(
        space,
        gym.spaces.Discrete(2),
        RewardModelConfig(n_members=1, cnn=cnn),  # type: ignore[arg-type]
        generator=_generator(),
    )
    learner = Learner(LearnerConfig(max_epochs=15, lr=3e-3))
    report = learner.fit(ensemble, segments, pairs, targets, rng=rng)
    assert report.val_accuracy >= 0.9, report
    assert report.return_correlation > 0.7, report  # 0.81 to 0.89 over dropout seeds
    assert not math.isnan(report.val_loss)
