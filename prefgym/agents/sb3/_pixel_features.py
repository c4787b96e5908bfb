"""A small convolutional features extractor for Stable-Baselines3 on the arcade games.

SB3's ``NatureCNN`` (three convolutions, 32-64-64 filters, 512 features) suits
Atari on a GPU; on a CPU it trains PPO at under a hundred steps per second.
The arcade games show a handful of flat-coloured objects, and
:class:`CompactCNN` (two convolutions, 16 and 32 filters, 128 features) is
enough for them at several times the speed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import Tensor, nn


class CompactCNN(BaseFeaturesExtractor):
    """Convolutions of 8x8 (stride 4) and 4x4 (stride 2), then one linear layer.

    Observations reach it channel-first ``(k, H, W)`` in ``[0, 1]`` (SB3
    transposes and scales uint8 images itself).
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128) -> None:
        """Build the extractor for ``observation_space`` ``(k, H, W)``.

        Args:
            observation_space: The (transposed) image space SB3 hands over.
            features_dim: Width of the output features.
        """
        super().__init__(observation_space, features_dim)
        depth, height, width = observation_space.shape
        if min(height, width) < 20:
            raise ValueError(f"CompactCNN needs frames of at least 20x20, got {height}x{width}")
        self.cnn = nn.Sequential(
            nn.Conv2d(depth, 16, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            size = self.cnn(torch.zeros(1, depth, height, width)).shape[1]
        self.linear = nn.Sequential(nn.Linear(size, features_dim), nn.ReLU())

    def forward(self, observations: Tensor) -> Tensor:
        """Features ``(N, features_dim)`` of observations ``(N, k, H, W)``."""
        return self.linear(self.cnn(observations))


def policy_kwargs_for(cnn: str, net_arch: tuple[int, ...]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for ``CnnPolicy`` with the extractor ``nature`` or ``compact``."""
    if cnn == "compact":
        return {"features_extractor_class": CompactCNN, "net_arch": list(net_arch)}
    if cnn == "nature":
        return {"net_arch": list(net_arch)}
    raise ValueError(f"cnn must be 'nature' or 'compact', got {cnn!r}")
