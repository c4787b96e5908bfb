"""Direct preference optimisation (DPO, Rafailov et al. 2023) and IPO for language models.

DPO fits a policy to pairwise judgments without a reward model: the policy's
log-probability ratio to a frozen reference, scaled by ``beta``, plays the part
of the Bradley-Terry reward. With ``h = (log pi(y_c) - log ref(y_c)) - (log
pi(y_r) - log ref(y_r))`` the sigmoid loss is ``-log sigmoid(beta h)`` and the
IPO loss (Azar et al. 2023) is ``(h - 1 / (2 beta))^2``.

Log-probabilities are **summed** over a response's tokens (up to and including
the first ``eos_id``) for both losses, as in both papers' sequence-level
formulation. TRL's IPO averages them per token instead; with sums, ``beta`` for
IPO should be read per sequence.

Prompts are left-padded ``(N, P)`` token ids with a mask; responses are
right-padded ``(N, R)`` with ``pad_id`` after their first ``eos_id``. A pair of
responses judged equal (target 0.5) says nothing about which one to raise, so
:func:`dataset_from_judgments` leaves ties out.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from prefgym.agents.text._checkpoints import CheckpointedTrainer
from prefgym.agents.text.config import DPOConfig
from prefgym.lm import response_logprobs


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float,
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pair DPO or IPO losses and the implicit rewards of both responses.

    Args:
        policy_chosen_logps: Summed log-probabilities of the chosen responses under the
            policy, ``(B,)``.
        policy_rejected_logps: The same for the rejected responses, ``(B,)``.
        ref_chosen_logps: Chosen responses under the reference, ``(B,)``.
        ref_rejected_logps: Rejected responses under the reference, ``(B,)``.
        beta: Strength of the implicit KL penalty; larger keeps the policy nearer the reference.
        loss_type: ``"sigmoid"`` for DPO's Bradley-Terry loss, ``"ipo"`` for IPO's squared loss.
        label_smoothing: Sigmoid only: the probability ``eps`` that a label is flipped
            (conservative DPO), giving ``-(1 - eps) log s(beta h) - eps log s(-beta h)``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; the rewards
        ``beta (log pi - log ref)`` carry no gradient.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}; try 0.1")
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if loss_type == "ipo" and label_smoothing != 0:
        raise ValueError(
            f"label_smoothing applies to the sigmoid loss only, got {label_smoothing} with "
            "loss_type='ipo'; set it to 0"
        )
    chosen_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_ratio = policy_rejected_logps - ref_rejected_logps
    if chosen_ratio.shape != rejected_ratio.shape:
        raise ValueError(
            f"chosen and rejected log-probabilities must have one shape, got "
            f"{tuple(chosen_ratio.shape)} and {tuple(rejected_ratio.shape)}"
        )
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * logits)
        if label_smoothing:
            losses = losses - label_smoothing * F.logsigmoid(-beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)).square()
    else:
        raise ValueError(f"loss_type must be 'sigmoid' or 'ipo', got {loss_type!r}")
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


@dataclass(frozen=True)
class PreferenceDataset:
    """Prompts, each with a chosen and a rejected response, for DPO.

    ``ref_chosen_logps`` and ``ref_rejected_logps`` hold the reference model's
    summed log-probabilities once :meth:`DPOTrainer.with_reference` has filled them.
    """

    prompt_ids: Tensor
    """Left-padded prompt tokens, ``(N, P)`` long."""
    prompt_mask: Tensor
    """1 on prompt tokens, 0 on left padding, ``(N, P)``."""
    chosen_ids: Tensor
    """Preferred responses, right-padded after the first ``eos_id``, ``(N, R)`` long."""
    rejected_ids: Tensor
    """Dispreferred responses, padded like ``chosen_ids``, ``(N, R)`` long."""
    ref_chosen_logps: Tensor | None = None
    """Reference log-probabilities of the chosen responses, ``(N,)``, or None."""
    ref_rejected_logps: Tensor | None = None
    """Reference log-probabilities of the rejected responses, ``(N,)``, or None."""

    def __post_init__(self) -> None:
        n = self.prompt_ids.shape[0]
        if self.prompt_ids.ndim != 2 or self.prompt_mask.shape != self.prompt_ids.shape:
            raise ValueError(
                f"prompt_ids and prompt_mask must both be (N, P), got "
                f"{tuple(self.prompt_ids.shape)} and {tuple(self.prompt_mask.shape)}"
            )
        if self.chosen_ids.ndim != 2 or self.rejected_ids.shape != self.chosen_ids.shape:
            raise ValueError(
                f"chosen_ids and rejected_ids must both be (N, R) with one R (pad the shorter "
                f"with pad_id), got {tuple(self.chosen_ids.shape)} and "
                f"{tuple(self.rejected_ids.shape)}"
            )
        if self.chosen_ids.shape[0] != n:
            raise ValueError(f"{n} prompts but {self.chosen_ids.shape[0]} response pairs")
        if (self.ref_chosen_logps is None) != (self.ref_rejected_logps is None):
            raise ValueError("give both reference log-probabilities or neither")
        for ref in (self.ref_chosen_logps, self.ref_rejected_logps):
            if ref is not None and ref.shape != (n,):
                raise ValueError(f"reference log-probabilities must be ({n},), got {ref.shape}")

    def __len__(self) -> int:
        return int(self.prompt_ids.shape[0])

    def select(self, index: Tensor) -> PreferenceDataset:
        """The pairs at ``index`` (a ``(K,)`` long tensor), reference log-probs included."""
        parts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        picked: dict[str, Any] = {
            k: None if t is None else t[index.to(t.device)] for k, t in parts.items()
        }
        return dataclasses.replace(self, **picked)


def _trim_response(ids: Tensor, eos_id: int) -> Tensor:
    eos = (ids == eos_id).nonzero()
    return ids[: int(eos[0]) + 1] if len(eos) else ids


def dataset_from_judgments(
    judgments: Sequence[tuple[Tensor, Tensor, Tensor, float]],
    *,
    eos_id: int,
    pad_id: int,
) -> PreferenceDataset:
    """Build a DPO dataset from pairwise judgments of two responses to a prompt.

    Each judgment is ``(prompt_ids, response_a_ids, response_b_ids, target)`` with
    1-D unpadded token ids and ``target`` the probability that ``a`` is preferred.
    Targets above 0.5 make ``a`` the chosen response, below 0.5 ``b``; ties
    (exactly 0.5) are skipped, since DPO has nothing to learn from them.
    Responses are cut after their first ``eos_id``.

    Args:
        judgments: The judgments, in any order.
        eos_id: End-of-sequence token.
        pad_id: Token to pad prompts (left) and responses (right) with.

    Returns:
        The dataset of the non-tied judgments, prompts left-padded to the longest
        and responses right-padded to the longest.
    """
    rows: list[tuple[Tensor, Tensor, Tensor]] = []
    for i, (prompt, a, b, target) in enumerate(judgments):
        if not 0 <= target <= 1:
            raise ValueError(
                f"judgments[{i}] has target {target}; targets are the probability that "
                "response a is preferred, in [0, 1]"
            )
        if prompt.ndim != 1 or a.ndim != 1 or b.ndim != 1 or min(len(prompt), len(a), len(b)) < 1:
            raise ValueError(
                f"judgments[{i}] must hold non-empty 1-D token ids, got shapes "
                f"{tuple(prompt.shape)}, {tuple(a.shape)}, {tuple(b.shape)}"
            )
        if target == 0.5:
            continue
        a, b = _trim_response(a, eos_id), _trim_response(b, eos_id)
        rows.append((prompt, a, b) if target > 0.5 else (prompt, b, a))
    if not rows:
        raise ValueError(
            f"all {len(judgments)} judgments are ties (target 0.5); DPO needs a preference"
        )
    width_p = max(len(p) for p, _, _ in rows)
    width_r = max(max(len(c), len(r)) for _, c, r in rows)
    n = len(rows)
    prompt_ids = torch.full((n, width_p), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((n, width_p), dtype=torch.long)
    responses = torch.full((2, n, width_r), pad_id, dtype=torch.long)
    for i, (prompt, chosen, rejected) in enumerate(rows):
        prompt_ids[i, width_p - len(prompt) :] = prompt
        prompt_mask[i, width_p - len(prompt) :] = 1
        for side, response in enumerate((chosen, rejected)):
            if len(response) < width_r and not bool((response == eos_id).any()):
                raise ValueError(
                    f"a response of length {len(response)} has no eos_id {eos_id} and is "
                    f"shorter than the longest ({width_r}), so its padding would count as "
                    "tokens; end finished responses with eos_id"
                )
            responses[side, i, : len(response)] = response
    return PreferenceDataset(prompt_ids, prompt_mask, responses[0], responses[1])


def _sequence_logps(model: nn.Module, batch: PreferenceDataset, eos_id: int) -> Tensor:
    """Summed log-probabilities of chosen then rejected responses, ``(2B,)``."""
    prompts = torch.cat([batch.prompt_ids, batch.prompt_ids])
    masks = torch.cat([batch.prompt_mask, batch.prompt_mask])
    responses = torch.cat([batch.chosen_ids, batch.rejected_ids])
    return response_logprobs(model, prompts, masks, responses, eos_id=eos_id).sum(-1)


class DPOTrainer(CheckpointedTrainer):
    """Fits a causal language model to chosen/rejected pairs with the DPO or IPO loss.

    Dropout is switched off (the model is put in eval mode at every step), so the
    policy and reference agree exactly before training. The reference is a frozen
    copy of ``policy`` when none is given. A :class:`PreferenceDataset` holds no
    ties: pairs judged equal carry no preference and :func:`dataset_from_judgments`
    skips them.

    Args:
        policy: A causal LM (e.g. ``GPT2LMHeadModel``) that is trained in place.
        config: The trainer's settings.
        eos_id: End-of-sequence token of the responses.
        pad_id: Padding token.
        generator: Source of randomness for shuffling, on the policy's device.
        ref_policy: The frozen reference; None copies ``policy``.
    """

    kind = "dpo"

    def __init__(
        self,
        policy: nn.Module,
        config: DPOConfig,
        *,
        eos_id: int,
        pad_id: int,
        generator: torch.Generator,
        ref_policy: nn.Module | None = None,
    ) -> None:
        self.policy = policy.eval()
        self.config = config
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.generator = generator
        self._owns_ref = ref_policy is None
        self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy
        self.ref_policy.eval().requires_grad_(False)
        self.device = next(policy.parameters()).device
        self.optimizer = torch.optim.AdamW(
            [p for p in policy.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        self.steps = 0

    @torch.no_grad()
    def with_reference(self, dataset: PreferenceDataset) -> PreferenceDataset:
        """The dataset with the reference's summed log-probabilities filled in.

        Computed once per dataset; pass the result to :meth:`fit_epoch` on every
        epoch to avoid recomputing them.
        """
        if dataset.ref_chosen_logps is not None:
            return dataset
        parts = []
        for start in range(0, len(dataset), self.config.ref_batch_size):
            index = torch.arange(start, min(start + self.config.ref_batch_size, len(dataset)))
            batch = _to(dataset.select(index), self.device)
            parts.append(_sequence_logps(self.ref_policy, batch, self.eos_id).view(2, -1))
        logps = torch.cat(parts, dim=1).to(dataset.prompt_ids.device)
        return dataclasses.replace(dataset, ref_chosen_logps=logps[0], ref_rejected_logps=logps[1])

    def _loss(self, batch: PreferenceDataset) -> tuple[Tensor, dict[str, float]]:
        batch = _to(self.with_reference(batch), self.device)
        policy_chosen, policy_rejected = _sequence_logps(self.policy, batch, self.eos_id).chunk(2)
        assert batch.ref_chosen_logps is not None and batch.ref_rejected_logps is not None
        losses, chosen, rejected = dpo_loss(
            policy_chosen,
            policy_rejected,
            batch.ref_chosen_logps,
            batch.ref_rejected_logps,
            beta=self.config.beta,
            loss_type=self.config.loss_type,
            label_smoothing=self.config.label_smoothing,
        )
        loss = losses.mean()
        stats = {
            "loss": float(loss.detach()),
            "reward_accuracy": float((chosen > rejected).float().mean()),
            "reward_margin": float((chosen - rejected).mean()),
            "chosen_reward": float(chosen.mean()),
            "rejected_reward": float(rejected.mean()),
            "logp_chosen": float(policy_chosen.detach().mean()),
            "logp_rejected": float(policy_rejected.detach().mean()),
            "pairs": float(len(batch)),
        }
        return loss, stats

    def _checkpointed(self) -> tuple[nn.Module, nn.Module | None]:
        return self.policy, self.ref_policy if self._owns_ref else None

    def step(self, batch: PreferenceDataset) -> dict[str, float]:
        """One gradient step on a batch of pairs.

        Returns:
            Batch means of ``loss``, ``reward_accuracy`` (chosen reward above
            rejected), ``reward_margin``, ``chosen_reward``, ``rejected_reward``,
            ``logp_chosen``, ``logp_rejected``, with ``grad_norm`` and ``pairs``.
        """
        self.policy.eval()
        loss, stats = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        norm = self.config.max_grad_norm
        grad_norm = nn.utils.clip_grad_norm_(params, norm if norm is not None else float("inf"))
        self.optimizer.step()
        self.steps += 1
        stats["grad_norm"] = float(grad_norm)
        return stats

    @torch.no_grad()
    def evaluate(self, dataset: PreferenceDataset) -> dict[str, float]:
        """The statistics of :meth:`step` over ``dataset``, without updating the policy."""
        self.policy.eval()
        dataset = self.with_reference(dataset)
        index = torch.arange(len(dataset))
        return _mean_stats(
            [
                self._loss(dataset.select(chunk))[1]
                for chunk in index.split(self.config.ref_batch_size)
            ]
        )

    def fit_epoch(self, dataset: PreferenceDataset) -> dict[str, float]:
        """One pass over ``dataset`` in shuffled batches of ``config.batch_size``.

        Returns:
            The statistics of :meth:`step`, averaged over pairs.
        """
        dataset = self.with_reference(dataset)
        order = torch.randperm(len(dataset), generator=self.generator, device=self.generator.device)
        return _mean_stats(
            [self.step(dataset.select(b)) for b in order.cpu().split(self.config.batch_size)]
        )

    def fit(self, dataset: PreferenceDataset) -> list[dict[str, float]]:
        """``config.epochs`` passes over ``dataset``, reference log-probs computed once.

        Returns:
            One :meth:`fit_epoch` summary per epoch.
        """
        dataset = self.with_reference(dataset)
        return [self.fit_epoch(dataset) for _ in range(self.config.epochs)]


def _to(batch: PreferenceDataset, device: torch.device) -> PreferenceDataset:
    moved: dict[str, Any] = {
        f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name).to(device)
        for f in dataclasses.fields(batch)
    }
    return dataclasses.replace(batch, **moved)


def _mean_stats(parts: list[dict[str, float]]) -> dict[str, float]:
    """Means of per-batch statistics weighted by each batch's ``pairs``; ``pairs`` is summed."""
    total = sum(p["pairs"] for p in parts)
    out = {k: sum(p[k] * p["pairs"] for p in parts) / total for k in parts[0] if k != "pairs"}
    out["pairs"] = total
    return out
