"""Reward networks: the base every member of an ensemble derives from, and the MLP.

A net scores every step of a batch of segments. The ensemble asks each member
how to share work (``prepare``/``score_prepared``, ``shares_input_with``) and
the learner whether a member scores segments alone (``scores_alone``), so
neither branches on a member's class.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from prefgym.reward._spaces import encode, encoded_size
from prefgym.reward.config import Activation, RewardModelConfig


class RewardNet(nn.Module, abc.ABC):
    """A network that gives every step of a batch of segments a scalar reward."""

    @abc.abstractmethod
    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Per-step rewards.

        Args:
            observations: ``(B, T, *obs_shape)``.
            actions: ``(B, T, *act_shape)``.

        Returns:
            Rewards ``(B, T)``, float32.
        """

    scores_alone: bool = False
    """Whether the net scores each segment on its own and deterministically, so each
    ensemble member may score its own subset of a minibatch (no dropout, no batch statistics)."""

    def shares_input_with(self, other: RewardNet) -> bool:
        """Whether ``other`` reads the same prepared input (:meth:`prepare`) as this net.

        An ensemble whose members all share one input prepares it once for all of them.
        """
        return False

    def prepare(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, ...]:
        """The input :meth:`score_prepared` reads; by default the raw batch."""
        return observations, actions

    def score_prepared(self, prepared: tuple[Tensor, ...]) -> Tensor:
        """Per-step rewards ``(B, T)`` from :meth:`prepare`'s output."""
        return self(*prepared)

    def standardise_input(self, observations: Tensor, actions: Tensor) -> None:
        """Standardise the net's input on ``(1, N, ...)`` steps; a no-op for most nets."""


def reset_linear(layer: nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's default Linear initialisation, drawn from ``generator``."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)


def activation(name: Activation) -> nn.Module:
    """A fresh activation module of this name."""
    modules: dict[Activation, nn.Module] = {
        "leaky_relu": nn.LeakyReLU(0.01),
        "relu": nn.ReLU(),
        "tanh": nn.Tanh(),
        "gelu": nn.GELU(),
    }
    return modules[name]


class MlpRewardNet(RewardNet):
    """An MLP reward for vector observations; discrete actions one-hot, Box actions flat.

    Its input is standardised: buffers ``input_offset`` and ``input_scale`` ``(width,)``
    map the encoded features ``x`` to ``(x - input_offset) / input_scale`` before the
    first layer. They start at 0 and 1, which leaves the input as it is; :meth:`standardise`
    fits them to data (the learner does so before each fit with
    ``LearnerConfig(standardise_inputs=True)``, off by default).
    """

    input_offset: Tensor
    input_scale: Tensor
    scores_alone = True

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        config: RewardModelConfig,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        """Build the network.

        Args:
            observation_space: Space of one observation.
            action_space: Space of one action.
            config: Hidden sizes, activation and whether actions are inputs.
            generator: Source of the initial weights; None uses torch's default generator.
        """
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.use_actions = config.use_actions
        width = encoded_size(observation_space)
        if config.use_actions:
            width += encoded_size(action_space)
        self.register_buffer("input_offset", torch.zeros(width))
        self.register_buffer("input_scale", torch.ones(width))
        layers: list[nn.Module] = []
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), activation(config.activation)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                reset_linear(layer, generator)

    def features(self, observations: Tensor, actions: Tensor) -> Tensor:
        """The encoded input ``(B, T, width)``, not yet standardised: observations (and actions)."""
        features = encode(self.observation_space, observations)
        if self.use_actions:
            features = torch.cat([features, encode(self.action_space, actions)], dim=-1)
        return features

    def score(self, features: Tensor) -> Tensor:
        """Per-step rewards ``(B, T)`` of encoded features ``(B, T, width)``."""
        return self.mlp((features - self.input_offset) / self.input_scale).squeeze(-1)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Per-step rewards ``(B, T)`` of obs ``(B, T, *obs)`` and actions ``(B, T, *act)``."""
        return self.score(self.features(observations, actions))

    def shares_input_with(self, other: RewardNet) -> bool:
        """MLPs of one kind that read the same encoded features."""
        return (
            isinstance(other, MlpRewardNet)
            and type(other) is type(self)
            and other.use_actions == self.use_actions
        )

    def prepare(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, ...]:
        """The encoded features ``(B, T, width)``."""
        return (self.features(observations, actions),)

    def score_prepared(self, prepared: tuple[Tensor, ...]) -> Tensor:
        """Per-step rewards ``(B, T)`` of the encoded features."""
        return self.score(prepared[0])

    def standardise_input(self, observations: Tensor, actions: Tensor) -> None:
        """Standardise the input on the features of ``(1, N, ...)`` steps (:meth:`standardise`)."""
        self.standardise(self.features(observations, actions)[0])

    @property
    def standardised(self) -> bool:
        """Whether :meth:`standardise` has fitted the input (the buffers are not 0 and 1)."""
        return bool(self.input_offset.any() or (self.input_scale != 1).any())

    @torch.no_grad()
    def standardise(self, features: Tensor) -> None:
        """Standardise the input to zero mean, unit std on ``features`` ``(N, width)``.

        Once the input has been standardised, the first layer's weights and bias absorb
        any later change, so every reward the net gives stays what it was. The first
        time, they are left as initialised: the random initial function is not worth
        keeping, and the initialisation is meant for unit-scale inputs. A feature that
        is constant on ``features`` is only centred.
        """
        mean = features.double().mean(0)
        std = features.double().std(0, correction=0)
        scale = torch.where(std > 1e-6, std, torch.ones_like(std))
        if self.standardised:
            first = next(layer for layer in self.mlp if isinstance(layer, nn.Linear))
            old_offset, old_scale = self.input_offset.double(), self.input_scale.double()
            weight = first.weight.double()
            first.bias.add_(weight @ ((mean - old_offset) / old_scale))
            first.weight.copy_(weight * (scale / old_scale))
        self.input_offset.copy_(mean)
        self.input_scale.copy_(scale)
