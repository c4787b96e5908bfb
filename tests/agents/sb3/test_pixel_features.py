"""The pixel features extractors of the SB3 agent (``prefgym.agents.sb3._pixel_features``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.torch_layers import NatureCNN
from torch import nn

from prefgym.agents.sb3 import AgentConfig, make_agent, make_vec_env
from prefgym.agents.sb3._pixel_features import CompactCNN, policy_kwargs_for

ARCADE = "prefgym/ArcadePong-v0"  # (84, 84, 2) uint8 frame stacks


def _space(depth: int, height: int, width: int) -> gym.spaces.Box:
    """The channel-first space SB3 hands an extractor, scaled to [0, 1]."""
    return gym.spaces.Box(0.0, 1.0, (depth, height, width), np.float32)


def test_policy_kwargs_name_the_extractor_and_the_widths() -> None:
    assert policy_kwargs_for("compact", (32, 16)) == {
        "features_extractor_class": CompactCNN,
        "net_arch": [32, 16],
    }
    assert policy_kwargs_for("nature", (64,)) == {"net_arch": [64]}  # SB3's default extractor
    with pytest.raises(ValueError, match="cnn must be 'nature' or 'compact', got 'huge'"):
        policy_kwargs_for("huge", (64,))


def test_compact_cnn_is_two_convolutions_and_a_linear_layer() -> None:
    extractor = CompactCNN(_space(2, 84, 84), features_dim=96)
    convolutions = [m for m in extractor.cnn if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convolutions] == [(2, 16), (16, 32)]
    assert [(c.kernel_size, c.stride) for c in convolutions] == [((8, 8), (4, 4)), ((4, 4), (2, 2))]
    (linear,) = [m for m in extractor.linear if isinstance(m, nn.Linear)]
    assert (linear.in_features, linear.out_features) == (32 * 9 * 9, 96)  # 84 -> 20 -> 9
    assert extractor.features_dim == 96


@pytest.mark.parametrize(("height", "width"), [(84, 84), (20, 20), (60, 100)])
def test_compact_cnn_gives_non_negative_features_per_observation(height: int, width: int) -> None:
    torch.manual_seed(0)
    extractor = CompactCNN(_space(3, height, width))
    observations = torch.rand(5, 3, height, width)
    features = extractor(observations)
    assert features.shape == (5, 128) and (features >= 0).all() and features.abs().sum() > 0
    torch.testing.assert_close(extractor(observations[2:3]), features[2:3])  # row by row


def test_compact_cnn_needs_frames_of_at_least_20_pixels() -> None:
    """The second convolution needs a 4x4 map; a 19-pixel side gives it 3x3."""
    for height in (15, 19):
        with pytest.raises(ValueError, match=f"at least 20x20, got {height}x84"):
            CompactCNN(_space(2, height, 84))


@pytest.mark.parametrize(("cnn", "extractor"), [("compact", CompactCNN), ("nature", NatureCNN)])
def test_ppo_on_pixels_reads_frames_through_the_chosen_extractor(
    cnn: str, extractor: type[nn.Module]
) -> None:
    config = AgentConfig(n_envs=1, n_steps=8, batch_size=8, n_epochs=1, cnn=cnn, net_arch=(32,))  # type: ignore[arg-type]
    model = make_agent(config, make_vec_env(ARCADE, 1, seed=0), seed=0)
    assert type(model.policy.features_extractor) is extractor
    first = model.policy.mlp_extractor.policy_net[0]
    assert first.out_features == 32
    assert first.in_features == (128 if cnn == "compact" else 512)
    model.learn(8)  # the frames go through: (84, 84, 2) uint8 moved channel-first by SB3
