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

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from prefgym.files import (
    atomic_directory,
    readable_directory,
    write_json,
)
from prefgym.reward._cnn import CHRISTIANO, COMPACT, CnnRewardNet
from prefgym.reward._nets import MlpRewardNet, RewardNet
from prefgym.reward._spaces import (
    is_image_space,
    read_model_metadata,
    space_to_json,
)
from prefgym.reward.config import RewardModelConfig
from prefgym.segments import Segment
from prefgym.tensors import load_state_dict, load_tensors

WEIGHTS_FILE = "reward_model.safetensors"
METADATA_FILE = "reward_model.json"
_FORMAT = "prefgym.reward_model"
_FORMAT_VERSION = 1
_CHUNK = 1024
"""Segments per forward pass when scoring many segments without gradients."""


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

    @property
    def nets(self) -> list[RewardNet]:
        """The members, typed as reward nets."""
        return cast(list[RewardNet], list(self.members))

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
        obs, act = self._tensor(observations), self._tensor(actions)
        first, *_ = nets = self.nets
        if all(first.shares_input_with(m) for m in nets):  # prepare the input once
            prepared = first.prepare(obs, act)
            rewards = torch.stack([m.score_prepared(prepared) for m in nets])
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
        if not segments:
            return
        obs = self._tensor(np.concatenate([s.observations for s in segments])[None])
        act = self._tensor(np.concatenate([s.actions for s in segments])[None])
        for member in self.nets:
            member.standardise_input(obs, act)

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
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        metadata = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
        }
        with atomic_directory(directory) as new:  # weights and metadata replaced together
            save_file(state, str(new / WEIGHTS_FILE))
            write_json(new / METADATA_FILE, metadata)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> RewardEnsemble:
        """Load an ensemble written by :meth:`save`."""
        path = readable_directory(directory)
        if not (path / METADATA_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(
                f"{path} holds no reward model: expected {METADATA_FILE} and {WEIGHTS_FILE} "
                "written by RewardEnsemble.save"
            )
        _, config, observation_space, action_space = read_model_metadata(
            path / METADATA_FILE,
            "the reward model's metadata",
            format=_FORMAT,
            version=_FORMAT_VERSION,
            config=RewardModelConfig,
        )
        ensemble = cls(observation_space, action_space, config)
        state = load_tensors(path / WEIGHTS_FILE, "the reward model's weights")
        expected = ensemble.state_dict()
        for key in expected.keys() - state.keys():  # written before inputs were standardised
            if key.endswith((".input_offset", ".input_scale")):
                state[key] = expected[key]
        fix = f"restore it and {METADATA_FILE} from a copy"
        load_state_dict(ensemble, state, path / WEIGHTS_FILE, fix)
        return ensemble.to(device)
