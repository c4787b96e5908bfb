"""Reward models: an ensemble of per-step reward networks, summed over a segment.

Every member maps an observation (and, by default, the action taken there) to a
scalar reward; a segment's return under a member is the sum of its per-step
rewards. Members are normalised one by one (zero mean, unit standard deviation
of the per-step reward on recent segments) and the ensemble's reward is the mean
of the normalised members. The learner (:mod:`prefgym.reward._learner`) trains the raw,
unnormalised members; normalisation is an affine map fitted afterwards.

Checkpoints are a safetensors file of weights and a JSON file holding the
config and a description of the spaces, so a model loads without pickles.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from prefgym.reward.config import Activation, RewardModelConfig
from prefgym.segments import Segment
from prefgym.spaces import encode, encoded_size, is_image_space, space_from_json, space_to_json

WEIGHTS_FILE = "reward_model.safetensors"
METADATA_FILE = "reward_model.json"
_FORMAT = "prefgym.reward_model"
_FORMAT_VERSION = 1
_CHUNK = 1024
"""Segments per forward pass when scoring many segments without gradients."""


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


def _reset_linear(layer: nn.Linear, generator: torch.Generator | None) -> None:
    """PyTorch's default Linear initialisation, drawn from ``generator``."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)


def _activation(name: Activation) -> nn.Module:
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
            layers += [nn.Linear(width, size), _activation(config.activation)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                _reset_linear(layer, generator)

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


def build_reward_net(
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    config: RewardModelConfig,
    *,
    generator: torch.Generator | None = None,
) -> RewardNet:
    """The reward network suited to a pair of spaces.

    This is the one place that chooses an architecture: a CNN
    (:class:`prefgym.reward._cnn.CnnRewardNet`) for pixel observations, channel-last
    frame stacks ``(H, W, k)``, and an MLP for everything else.

    Raises:
        NotImplementedError: For spaces that cannot be encoded.
    """
    if is_image_space(observation_space):
        from prefgym.reward._cnn import CHRISTIANO, COMPACT, CnnRewardNet

        trunk = COMPACT if config.cnn == "compact" else CHRISTIANO
        return CnnRewardNet(
            observation_space, action_space, config, trunk=trunk, generator=generator
        )
    return MlpRewardNet(observation_space, action_space, config, generator=generator)


class RewardEnsemble(nn.Module):
    """Members plus per-member normalisation; the mean normalised member is the reward.

    Buffers ``offset`` and ``scale`` ``(members,)`` map a member's raw per-step
    reward ``r`` to ``(r - offset) / scale``; they start at 0 and 1.
    """

    offset: Tensor
    scale: Tensor

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        config: RewardModelConfig | None = None,
        *,
        generator: torch.Generator | None = None,
        members: Sequence[RewardNet] | None = None,
    ) -> None:
        """Build ``config.n_members`` freshly initialised members, or adopt ``members``.

        Args:
            observation_space: Space of one observation (a vector env's
                ``single_observation_space``).
            action_space: Space of one action.
            config: The ensemble's shape; None means the defaults.
            generator: Source of the initial weights; None uses torch's default generator.
            members: Networks built elsewhere (e.g. transformer reward models for
                text, :mod:`prefgym.lm._reward_model`), one per ``config.n_members``;
                None builds them with :func:`build_reward_net`.
        """
        super().__init__()
        self.config = config if config is not None else RewardModelConfig()
        self.observation_space = observation_space
        self.action_space = action_space
        if members is not None and len(members) != self.config.n_members:
            raise ValueError(
                f"config.n_members is {self.config.n_members} but {len(members)} members were "
                "given; pass one network per member"
            )
        self.members = nn.ModuleList(
            members
            if members is not None
            else [
                build_reward_net(observation_space, action_space, self.config, generator=generator)
                for _ in range(self.config.n_members)
            ]
        )
        self.register_buffer("offset", torch.zeros(self.config.n_members))
        self.register_buffer("scale", torch.ones(self.config.n_members))

    @property
    def n_members(self) -> int:
        """Number of members."""
        return len(self.members)

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.offset.device

    def _tensor(self, x: Tensor | np.ndarray) -> Tensor:
        return torch.as_tensor(x, device=self.device)

    def member_step_rewards(
        self,
        observations: Tensor | np.ndarray,
        actions: Tensor | np.ndarray,
        *,
        normalised: bool = True,
    ) -> Tensor:
        """Every member's per-step rewards.

        Args:
            observations: ``(B, T, *obs_shape)``.
            actions: ``(B, T, *act_shape)``.
            normalised: Apply each member's normalisation; False gives the raw outputs
                that the learner trains.

        Returns:
            Rewards ``(members, B, T)``.
        """
        from prefgym.reward._cnn import CnnRewardNet  # a module that builds on this one

        obs, act = self._tensor(observations), self._tensor(actions)
        mlps = [m for m in self.members if type(m) is MlpRewardNet]
        cnns = [m for m in self.members if type(m) is CnnRewardNet]
        if len(mlps) == self.n_members and len({m.use_actions for m in mlps}) == 1:
            features = mlps[0].features(obs, act)  # the same input for every member: encode once
            rewards = torch.stack([m.score(features) for m in mlps])
        elif len(cnns) == self.n_members and len({m.channels_first for m in cnns}) == 1:
            frames = cnns[0].frames(obs)  # bytes to floats once for every member
            rewards = torch.stack([m.score(frames, act) for m in cnns])
        else:
            rewards = torch.stack([member(obs, act) for member in self.members])
        if normalised:
            rewards = (rewards - self.offset[:, None, None]) / self.scale[:, None, None]
        return rewards

    def member_returns(
        self,
        observations: Tensor | np.ndarray,
        actions: Tensor | np.ndarray,
        *,
        normalised: bool = True,
    ) -> Tensor:
        """Member returns ``(members, B)`` of obs ``(B, T, ...)`` and actions ``(B, T, ...)``."""
        return self.member_step_rewards(observations, actions, normalised=normalised).sum(-1)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """The ensemble's per-step reward ``(B, T)``: the mean of the normalised members."""
        return self.member_step_rewards(observations, actions).mean(0)

    @torch.inference_mode()
    def step_rewards(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The reward of a batch of single steps, for the RL wrapper.

        Args:
            observations: ``(N, *obs_shape)``.
            actions: ``(N, *act_shape)``.

        Returns:
            Rewards ``(N,)``, float32.
        """
        obs, act = self._tensor(observations), self._tensor(actions)
        shape = tuple(self.observation_space.shape or ())
        if tuple(obs.shape[1:]) != shape or len(act) != len(obs):
            raise ValueError(
                f"step_rewards needs observations (N, *{shape}) and N actions, got observations "
                f"{tuple(obs.shape)} and actions {tuple(act.shape)}"
            )
        rewards = self.member_step_rewards(obs[None], act[None]).mean(0)[0]
        return rewards.to(torch.float32).cpu().numpy()

    @torch.inference_mode()
    def segment_returns(
        self, segments: Sequence[Segment], *, normalised: bool = True
    ) -> np.ndarray:
        """Every member's return of every segment, in batches; lengths may differ.

        Returns:
            Returns ``(members, len(segments))``, float64.
        """
        out = np.zeros((self.n_members, len(segments)))
        by_length: dict[int, list[int]] = {}
        for i, segment in enumerate(segments):
            by_length.setdefault(segment.length, []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), _CHUNK):
                chunk = indices[start : start + _CHUNK]
                obs = np.stack([segments[i].observations for i in chunk])
                act = np.stack([segments[i].actions for i in chunk])
                returns = self.member_returns(obs, act, normalised=normalised)
                out[:, chunk] = returns.cpu().numpy()
        return out

    @torch.no_grad()
    def standardise_inputs(self, segments: Sequence[Segment]) -> None:
        """Standardise each MLP member's input on every step of ``segments`` (others keep theirs).

        Rewards are unchanged after the first time (see :meth:`MlpRewardNet.standardise`);
        only the scale in which the members learn from here on changes.
        """
        mlps = [m for m in self.members if isinstance(m, MlpRewardNet)]
        if not mlps or not segments:
            return
        obs = self._tensor(np.concatenate([s.observations for s in segments])[None])
        act = self._tensor(np.concatenate([s.actions for s in segments])[None])
        for member in mlps:
            member.standardise(member.features(obs, act)[0])

    @torch.inference_mode()
    def normalise(self, segments: Sequence[Segment]) -> None:
        """Fit each member's offset and scale to zero mean, unit std of per-step reward.

        A member whose rewards are constant on ``segments`` keeps scale 1.

        Args:
            segments: Recent segments; every step of every segment counts once.
        """
        if not segments:
            raise ValueError("normalise needs at least one segment, got none")
        obs = np.concatenate([s.observations for s in segments])
        act = np.concatenate([s.actions for s in segments])
        total = torch.zeros(self.n_members, dtype=torch.float64, device=self.device)
        total_sq = torch.zeros_like(total)
        step = _CHUNK * 64
        for start in range(0, len(obs), step):
            raw = self.member_step_rewards(
                obs[None, start : start + step], act[None, start : start + step], normalised=False
            ).double()
            total += raw.sum((1, 2))
            total_sq += raw.square().sum((1, 2))
        mean = total / len(obs)
        std = (total_sq / len(obs) - mean.square()).clamp_min(0.0).sqrt()
        self.offset.copy_(mean)
        self.scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def save(self, directory: str | Path) -> Path:
        """Write ``reward_model.safetensors`` and ``reward_model.json`` into ``directory``.

        Returns:
            The directory.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        metadata = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
        }
        (path / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> RewardEnsemble:
        """Load an ensemble written by :meth:`save`."""
        path = Path(directory)
        if not (path / METADATA_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"{path} holds no reward model: expected {METADATA_FILE} and {WEIGHTS_FILE} "
                "written by RewardEnsemble.save"
            )
        metadata = json.loads((path / METADATA_FILE).read_text())
        if metadata.get("format") != _FORMAT or metadata.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path / METADATA_FILE} is format {metadata.get('format')!r} version "
                f"{metadata.get('version')!r}; this prefgym reads {_FORMAT!r} "
                f"version {_FORMAT_VERSION}"
            )
        config = RewardModelConfig(**metadata["config"])
        ensemble = cls(
            space_from_json(metadata["observation_space"]),
            space_from_json(metadata["action_space"]),
            config,
        )
        state = load_file(str(path / WEIGHTS_FILE))
        expected = ensemble.state_dict()
        for key in expected.keys() - state.keys():  # written before inputs were standardised
            if key.endswith((".input_offset", ".input_scale")):
                state[key] = expected[key]
        ensemble.load_state_dict(state)
        return ensemble.to(device)
