"""Reward networks (``prefgym.reward._nets``): the base's protocol and the MLP."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from prefgym.reward import ACTIVATIONS, CnnRewardNet, MlpRewardNet, RewardModelConfig, RewardNet
from prefgym.reward._nets import activation, reset_linear

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)
PIXELS = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class SumNet(RewardNet):
    """The smallest concrete net: the sum of each step's observation, with one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        return self.weight * observations.sum(-1)


def _mlp(seed: int, **config: object) -> MlpRewardNet:
    return MlpRewardNet(
        BOX4,
        gym.spaces.Discrete(3),
        RewardModelConfig(**config),  # type: ignore[arg-type]
        generator=_generator(seed),
    )


def _batch(b: int = 3, t: int = 5, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    generator = _generator(42)
    observations = torch.randn(b, t, 4, generator=generator) * scale + 2.0
    actions = torch.randint(0, 3, (b, t), generator=generator)
    return observations, actions


@pytest.mark.parametrize(
    "action_space",
    [gym.spaces.Discrete(3), gym.spaces.Box(-1, 1, (2,)), gym.spaces.MultiBinary(3)],
    ids=["discrete", "box", "multibinary"],
)
def test_mlp_reward_net_gives_one_reward_per_step(action_space: gym.Space) -> None:
    net = MlpRewardNet(BOX4, action_space, RewardModelConfig(), generator=_generator())
    observations = torch.randn(5, 7, 4)
    actions = torch.as_tensor(
        np.stack([[action_space.sample() for _ in range(7)] for _ in range(5)])
    )
    rewards = net(observations, actions)
    assert rewards.shape == (5, 7)
    assert rewards.dtype == torch.float32
    # Per-step: a step's reward does not depend on the other steps of its segment.
    shuffled = net(observations[:, [6, 5, 4, 3, 2, 1, 0]], actions[:, [6, 5, 4, 3, 2, 1, 0]])
    torch.testing.assert_close(shuffled, rewards.flip(1))


def test_actions_are_ignored_when_not_inputs() -> None:
    config = RewardModelConfig(use_actions=False)
    net = MlpRewardNet(BOX4, gym.spaces.Discrete(2), config, generator=_generator())
    observations = torch.randn(3, 4, 4)
    zeros, ones = torch.zeros(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)
    torch.testing.assert_close(net(observations, zeros), net(observations, ones))
    with_actions = MlpRewardNet(
        BOX4, gym.spaces.Discrete(2), RewardModelConfig(), generator=_generator()
    )
    assert not torch.allclose(with_actions(observations, zeros), with_actions(observations, ones))


def test_the_base_scores_its_raw_input_and_shares_nothing() -> None:
    net = SumNet()
    observations, actions = _batch()
    prepared = net.prepare(observations, actions)
    assert prepared[0] is observations and prepared[1] is actions
    torch.testing.assert_close(net.score_prepared(prepared), observations.sum(-1))
    assert not net.shares_input_with(net) and not net.shares_input_with(SumNet())
    assert not net.scores_alone
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.standardise_input(observations.reshape(1, -1, 4), actions.reshape(1, -1))
    assert net.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # a no-op


def test_mlp_members_sharing_input_score_prepared_as_alone() -> None:
    nets = [_mlp(seed) for seed in range(3)]
    fit, _ = _batch(1, 40, scale=5.0)
    nets[1].standardise_input(fit, torch.zeros(1, 40, dtype=torch.long))
    assert nets[1].standardised and not nets[0].standardised
    assert all(a.shares_input_with(b) for a in nets for b in nets)
    observations, actions = _batch()
    prepared = nets[0].prepare(observations, actions)  # once, for every member
    assert len(prepared) == 1 and prepared[0].shape == (3, 5, 4 + 3)
    with torch.no_grad():
        rewards = [net.score_prepared(prepared) for net in nets]
        alone = [net(observations, actions) for net in nets]
    for shared, own in zip(rewards, alone, strict=True):
        assert shared.shape == (3, 5)
        torch.testing.assert_close(shared, own)
    assert not torch.allclose(rewards[0], rewards[1])  # each member its own function


def test_inputs_are_shared_only_by_mlps_of_one_kind_reading_the_same_features() -> None:
    class WiderMlp(MlpRewardNet):
        pass

    mlp = _mlp(0)
    without_actions = _mlp(1, use_actions=False)
    assert mlp.shares_input_with(_mlp(2, hidden_sizes=(8,)))  # the widths do not matter
    assert without_actions.shares_input_with(_mlp(3, use_actions=False))
    assert not mlp.shares_input_with(without_actions)
    assert not without_actions.shares_input_with(mlp)
    sub = WiderMlp(BOX4, gym.spaces.Discrete(3), RewardModelConfig(), generator=_generator())
    assert not mlp.shares_input_with(sub) and not sub.shares_input_with(mlp)
    cnn = CnnRewardNet(PIXELS, gym.spaces.Discrete(3), RewardModelConfig(), generator=_generator())
    assert not mlp.shares_input_with(cnn) and not cnn.shares_input_with(mlp)
    assert not mlp.shares_input_with(SumNet()) and not SumNet().shares_input_with(mlp)


def test_only_the_mlp_scores_segments_alone() -> None:
    assert MlpRewardNet.scores_alone and _mlp(0).scores_alone
    assert not RewardNet.scores_alone and not SumNet().scores_alone
    cnn = CnnRewardNet(PIXELS, gym.spaces.Discrete(3), RewardModelConfig(), generator=_generator())
    assert not cnn.scores_alone  # dropout and batch norm: scores depend on the batch


def test_standardise_input_fits_the_features_then_keeps_every_reward() -> None:
    net = _mlp(0)
    first, _ = _batch(1, 60, scale=10.0)
    first_actions = torch.randint(0, 3, (1, 60), generator=_generator(1))
    net.standardise_input(first, first_actions)
    features = net.features(first, first_actions)[0].double()
    torch.testing.assert_close(net.input_offset.double(), features.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        net.input_scale.double(), features.std(0, correction=0), rtol=1e-5, atol=1e-6
    )
    probe, probe_actions = _batch(4, 6, scale=10.0)
    with torch.no_grad():
        before = net(probe, probe_actions).clone()
    second = torch.randn(1, 80, 4, generator=_generator(2)) * 40.0 - 7.0
    second_actions = torch.zeros(1, 80, dtype=torch.long)  # one action only: a constant column
    net.standardise_input(second, second_actions)
    assert net.input_offset[0] < -3 and net.input_scale[0] > 20  # the statistics moved
    with torch.no_grad():
        after = net(probe, probe_actions)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_the_first_standardisation_keeps_the_initial_weights() -> None:
    net, twin = _mlp(0), _mlp(0)
    assert not net.standardised
    observations, actions = _batch(1, 50, scale=3.0)
    net.standardise_input(observations, actions)
    assert net.standardised
    for name, value in twin.mlp.state_dict().items():
        torch.testing.assert_close(net.mlp.state_dict()[name], value)


def test_the_layers_follow_the_config() -> None:
    linear = [m for m in _mlp(0, hidden_sizes=(16, 8)).mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(7, 16), (16, 8), (8, 1)]
    assert [type(m) for m in _mlp(0, hidden_sizes=(5,), activation="tanh").mlp] == [
        nn.Linear,
        nn.Tanh,
        nn.Linear,
    ]
    (only,) = _mlp(0, hidden_sizes=(), use_actions=False).mlp
    assert isinstance(only, nn.Linear) and only.in_features == 4


def test_the_same_generator_gives_the_same_net() -> None:
    a, b, c = _mlp(5), _mlp(5), _mlp(6)
    for name, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[name], value)
    assert not torch.equal(a.state_dict()["mlp.0.weight"], c.state_dict()["mlp.0.weight"])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gives_a_fresh_module_of_its_name(name: str) -> None:
    kinds = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
    module = activation(name)  # type: ignore[arg-type]
    assert type(module) is kinds[name]
    assert activation(name) is not module  # type: ignore[arg-type]
    x = torch.linspace(-3, 3, 13)
    expected = {
        "leaky_relu": torch.where(x > 0, x, 0.01 * x),
        "relu": x.clamp(min=0),
        "tanh": torch.tanh(x),
        "gelu": torch.nn.functional.gelu(x),
    }
    torch.testing.assert_close(module(x), expected[name])


@pytest.mark.parametrize("bias", [True, False])
def test_reset_linear_draws_pytorchs_default_from_the_generator(bias: bool) -> None:
    layers = [nn.Linear(25, 30, bias=bias) for _ in range(3)]
    for layer, seed in zip(layers, (1, 1, 2), strict=True):
        reset_linear(layer, _generator(seed))
    bound = 1 / math.sqrt(25)
    for layer in layers:
        params = [layer.weight] + ([layer.bias] if bias else [])
        for param in params:
            assert param.abs().max() <= bound
            assert param.abs().max() > 0.8 * bound  # uniform over the whole range
    torch.testing.assert_close(layers[0].weight, layers[1].weight)
    assert not torch.equal(layers[0].weight, layers[2].weight)
    if bias:
        torch.testing.assert_close(layers[0].bias, layers[1].bias)
