"""A convolutional reward network for pixel observations (Christiano et al. 2017).

The reward of a step is a function of one observation, a stack of grayscale
frames ``(H, W, k)`` uint8 (channel-last, as the pixel environments give
them; channel-first ``(k, H, W)`` works too), and, with
``RewardModelConfig.use_actions``, the action taken there.
Christiano et al.'s Atari predictor is four convolutions (7x7, 5x5, 3x3, 3x3
kernels, strides 3, 2, 1, 1, 16 filters each), each followed by batch norm,
dropout 0.5 and a leaky ReLU, then a fully connected layer of 64 units and a
scalar. Here the fully connected part is ``RewardModelConfig.hidden_sizes``
with its activation, so the defaults give two layers of 64.

Batch norm and dropout act only while the network trains with gradients
(``module.train()`` and ``torch.is_grad_enabled()``); without gradients the
network is deterministic and uses its running statistics, whatever its mode,
so scoring segments or paying rewards never perturbs it. Dropout draws from
torch's default generator; weights are drawn from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from prefgym.reward._nets import RewardNet, activation
from prefgym.reward._spaces import encode, encoded_size, is_image_space
from prefgym.reward.config import RewardModelConfig


@dataclass(frozen=True)
class CnnTrunk:
    """The convolutional layers of a reward network."""

    channels: tuple[int, ...]
    """Filters of each convolution."""
    kernels: tuple[int, ...]
    """Kernel size of each convolution."""
    strides: tuple[int, ...]
    """Stride of each convolution."""
    batch_norm: bool = True
    """Batch norm after each convolution."""
    dropout: float = 0.5
    """Dropout probability after each convolution (0 for none)."""
    channel_dropout: bool = False
    """Drop whole feature maps (``nn.Dropout2d``) instead of single activations. On a CPU
    drawing one random number per activation costs as much as the convolutions."""

    def __post_init__(self) -> None:
        n = len(self.channels)
        if n == 0 or len(self.kernels) != n or len(self.strides) != n:
            raise ValueError(
                f"channels, kernels and strides need one entry per layer, got {self.channels}, "
                f"{self.kernels} and {self.strides}"
            )
        if min(self.channels + self.kernels + self.strides) < 1:
            raise ValueError(f"layer sizes must be positive integers, got {self}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Height and width of the last feature map for an input of ``height`` x ``width``."""
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        return height, width


CHRISTIANO = CnnTrunk(channels=(16, 16, 16, 16), kernels=(7, 5, 3, 3), strides=(3, 2, 1, 1))
"""The reward predictor of Christiano et al. 2017 for Atari."""

COMPACT = CnnTrunk(
    channels=(16, 16), kernels=(8, 4), strides=(4, 2), dropout=0.2, channel_dropout=True
)
"""Two convolutions with feature-map dropout: several times cheaper, for the arcade games on a
CPU."""


def _reset(layer: nn.Conv2d | nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's default initialisation (uniform in +-1/sqrt(fan_in)), drawn from ``generator``."""
    fan_in = layer.weight[0].numel()
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)


class CnnRewardNet(RewardNet):
    """Per-step rewards of frame stacks: a convolutional trunk, then an MLP head."""

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        config: RewardModelConfig,
        *,
        trunk: CnnTrunk = CHRISTIANO,
        generator: torch.Generator | None = None,
    ) -> None:
        """Build the network.

        Args:
            observation_space: A uint8 Box of ``k`` stacked frames, ``(H, W, k)`` or
                ``(k, H, W)`` (the channels are the smallest dimension).
            action_space: Space of one action; encoded one-hot (discrete) or flat.
            config: Head widths and activation, and whether actions are inputs.
            trunk: The convolutions; Christiano et al.'s by default.
            generator: Source of the initial weights; None uses torch's default generator.
        """
        super().__init__()
        if not is_image_space(observation_space):
            raise ValueError(
                f"CnnRewardNet reads uint8 image stacks (H, W, k), got {observation_space}; "
                "use MlpRewardNet for vector observations"
            )
        shape = tuple(observation_space.shape or ())
        self.channels_first = shape[0] < shape[-1]
        """Whether frames come ``(k, H, W)``; the channels are the smallest dimension."""
        depth, height, width = shape if self.channels_first else (shape[2], shape[0], shape[1])
        out_height, out_width = trunk.output_size(height, width)
        if min(out_height, out_width) < 1:
            raise ValueError(
                f"frames of {height}x{width} are too small for the trunk {trunk}; "
                "use larger frames or a trunk with smaller kernels and strides"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.use_actions = config.use_actions
        layers: list[nn.Module] = []
        channels = depth
        for out, kernel, stride in zip(trunk.channels, trunk.kernels, trunk.strides, strict=True):
            layers.append(nn.Conv2d(channels, out, kernel, stride))
            if trunk.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            if trunk.dropout > 0:
                dropout = nn.Dropout2d if trunk.channel_dropout else nn.Dropout
                layers.append(dropout(trunk.dropout))
            layers.append(nn.LeakyReLU(0.01))
            channels = out
        layers.append(nn.Flatten())
        self.trunk = nn.Sequential(*layers)
        width_in = channels * out_height * out_width
        if config.use_actions:
            width_in += encoded_size(action_space)
        head: list[nn.Module] = []
        for size in config.hidden_sizes:
            head += [nn.Linear(width_in, size), activation(config.activation)]
            width_in = size
        head.append(nn.Linear(width_in, 1))
        self.head = nn.Sequential(*head)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                _reset(module, generator)

    def frames(self, observations: Tensor) -> Tensor:
        """The trunk's input ``(B * T, k, H, W)``, floats in [0, 1], of stacks ``(B, T, H, W, k)``.

        Stacks may also come channel-first, ``(B, T, k, H, W)``. Members of one ensemble share
        it (:meth:`prepare`).
        """
        frames = observations.reshape(-1, *observations.shape[2:])
        if not self.channels_first:
            # channel-last bytes read as NCHW without a copy: the fastest layout on a CPU
            frames = frames.permute(0, 3, 1, 2)
        return frames.float().div_(255.0)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Per-step rewards ``(B, T)`` of stacks ``(B, T, H, W, k)`` and actions ``(B, T, ...)``."""
        return self.score(self.frames(observations), actions)

    def shares_input_with(self, other: RewardNet) -> bool:
        """CNNs of one kind that read their stacks in the same layout."""
        return (
            isinstance(other, CnnRewardNet)
            and type(other) is type(self)
            and other.channels_first == self.channels_first
        )

    def prepare(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, ...]:
        """The trunk's input (:meth:`frames`), bytes to floats once for every member."""
        return self.frames(observations), actions

    def score_prepared(self, prepared: tuple[Tensor, ...]) -> Tensor:
        """Per-step rewards ``(B, T)`` of the prepared frames and actions."""
        return self.score(*prepared)

    def score(self, frames: Tensor, actions: Tensor) -> Tensor:
        """Per-step rewards ``(B, T)`` of :meth:`frames` ``(B * T, k, H, W)`` and actions."""
        if self.training and not torch.is_grad_enabled():
            self.train(False)
            try:
                return self.score(frames, actions)
            finally:
                self.train(True)
        lead = actions.shape[:2]
        features = self.trunk(frames).reshape(*lead, -1)
        if self.use_actions:
            features = torch.cat([features, encode(self.action_space, actions)], dim=-1)
        return self.head(features).squeeze(-1)
