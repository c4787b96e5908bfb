"""Group relative policy optimisation (GRPO, Shao et al. 2024) for language models.

GRPO needs no value network: each prompt is answered ``G`` times, each response
is scored (by a learned reward model or an oracle's true score), and a
response's advantage is its score standardised within its group, shared by all
its tokens. The policy then follows PPO's clipped surrogate, optionally with a
per-token KL penalty to a frozen reference through the k3 estimator
``exp(ref - logp) - (ref - logp) - 1`` (unbiased and always >= 0).

Prompts are left-padded ``(B, P)`` token ids with a mask; responses are
right-padded ``(B, R)`` with ``pad_id`` after their first ``eos_id``, which
belongs to the response.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from prefgym.agents.text._checkpoints import CheckpointedTrainer
from prefgym.agents.text.config import GRPOConfig
from prefgym.lm import response_logprobs, response_mask, sample_responses

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``reward_fn(prompt_ids (B, P), prompt_mask (B, P), response_ids (B, R)) -> scores (B,)``."""


def group_advantages(scores: Tensor, *, scale: bool = True, eps: float = 1e-4) -> Tensor:
    """Scores relative to their group: ``(s - mean) / (std + eps)`` per prompt.

    Args:
        scores: Scores of ``G`` responses to each of ``P`` prompts, ``(P, G)``.
        scale: Divide by the group's (unbiased) standard deviation, as in DeepSeekMath's
            GRPO; False keeps only the mean baseline (Dr. GRPO).
        eps: Added to the standard deviation, so groups of equal scores get 0.

    Returns:
        Advantages ``(P, G)``, zero-mean within each group.
    """
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"scores must be (prompts, group_size) with group_size >= 2, got "
            f"{tuple(scores.shape)}; a group of one has no baseline"
        )
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    centred = scores - scores.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (scores.std(dim=1, keepdim=True) + eps)


class GRPOTrainer(CheckpointedTrainer):
    """Trains a causal language model on group-relative advantages of sampled responses.

    Dropout is switched off (eval mode at every step), so that at the first pass
    the probability ratio is exactly 1. With ``kl_coef == 0`` no reference is
    made and a given one is never run.

    Args:
        policy: A causal LM (e.g. ``GPT2LMHeadModel``) that is trained in place.
        config: The trainer's settings.
        reward_fn: Scores responses: ``(prompt_ids (B, P), prompt_mask (B, P),
            response_ids (B, R)) -> (B,)``; a learned reward model or a true score.
            Called without gradients.
        eos_id: End-of-sequence token.
        pad_id: Token written after a response's eos.
        generator: Source of randomness for sampling and shuffling, on the policy's device.
        ref_policy: The frozen reference for the KL; None copies ``policy`` (if ``kl_coef > 0``).
    """

    kind = "grpo"

    def __init__(
        self,
        policy: nn.Module,
        config: GRPOConfig,
        *,
        reward_fn: RewardFn,
        eos_id: int,
        pad_id: int,
        generator: torch.Generator,
        ref_policy: nn.Module | None = None,
    ) -> None:
        self.policy = policy.eval()
        self.config = config
        self.reward_fn = reward_fn
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.generator = generator
        self._owns_ref = ref_policy is None and config.kl_coef > 0
        if self._owns_ref:
            ref_policy = copy.deepcopy(policy)
        if ref_policy is not None:
            ref_policy.eval().requires_grad_(False)
        self.ref_policy = ref_policy
        self.device = next(policy.parameters()).device
        self.optimizer = torch.optim.AdamW(
            [p for p in policy.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        self.steps = 0

    def _logprobs(
        self, model: nn.Module, prompts: Tensor, masks: Tensor, responses: Tensor
    ) -> Tensor:
        return response_logprobs(
            model,
            prompts,
            masks,
            responses,
            eos_id=self.eos_id,
            temperature=self.config.temperature,
        )

    def _checkpointed(self) -> tuple[nn.Module, nn.Module | None]:
        return self.policy, self.ref_policy if self._owns_ref else None

    def step(self, prompt_ids: Tensor, prompt_mask: Tensor) -> dict[str, float]:
        """Sample ``G`` responses per prompt, score them, and update the policy.

        Args:
            prompt_ids: Left-padded prompts, ``(B, P)`` long.
            prompt_mask: 1 on prompt tokens, ``(B, P)``.

        Returns:
            ``score_mean``, ``score_std``, ``zero_std_fraction`` (groups whose scores
            are all equal, which teach nothing), ``kl`` (mean per-token k3 to the
            reference; NaN when ``kl_coef == 0``), ``clip_fraction`` (tokens whose
            clipping removed the gradient), ``loss``, ``grad_norm``, ``response_length``
            (mean tokens per response), ``tokens_generated``, ``seconds_sampling``,
            ``seconds_scoring`` and ``seconds_optimising``.
        """
        cfg = self.config
        self.policy.eval()
        n_prompts = prompt_ids.shape[0]
        prompts = prompt_ids.to(self.device).repeat_interleave(cfg.group_size, dim=0)
        masks = prompt_mask.to(self.device).repeat_interleave(cfg.group_size, dim=0)
        n = prompts.shape[0]

        start = time.perf_counter()
        responses = sample_responses(
            self.policy,
            prompts,
            masks,
            max_new_tokens=cfg.max_new_tokens,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            temperature=cfg.temperature,
            generator=self.generator,
        )
        sampled = time.perf_counter()
        with torch.no_grad():
            scores = self.reward_fn(prompts, masks, responses)
        if scores.shape != (n,):
            raise ValueError(
                f"reward_fn must return one score per response, shape ({n},), "
                f"got {tuple(scores.shape)}"
            )
        scores = scores.detach().float().to(self.device)
        scored = time.perf_counter()

        advantages = group_advantages(
            scores.view(n_prompts, cfg.group_size),
            scale=cfg.scale_advantages,
            eps=cfg.advantage_eps,
        ).view(n, 1)
        mask = response_mask(responses, self.eos_id)
        minibatch = min(cfg.minibatch_size or n, n)
        with torch.no_grad():
            # With one pass over one minibatch the policy has not moved since sampling,
            # so the old log-probs are the current ones, detached.
            old = None
            if cfg.num_iterations > 1 or minibatch < n:
                old = self._logprobs(self.policy, prompts, masks, responses)
            ref = None
            if cfg.kl_coef > 0:
                assert self.ref_policy is not None
                ref = self._logprobs(self.ref_policy, prompts, masks, responses)

        totals = {"loss": 0.0, "grad_norm": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        updates = 0
        for _ in range(cfg.num_iterations):
            order = torch.arange(n, device=self.device)
            if minibatch < n:
                order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            for index in order.to(self.device).split(minibatch):
                stats = self._update(
                    prompts[index],
                    masks[index],
                    responses[index],
                    mask[index],
                    advantages[index],
                    None if old is None else old[index],
                    None if ref is None else ref[index],
                )
                for key, value in stats.items():
                    totals[key] += value
                updates += 1
        self.steps += 1
        done = time.perf_counter()

        groups = scores.view(n_prompts, cfg.group_size)
        return {
            "score_mean": float(scores.mean()),
            "score_std": float(scores.std()),
            "zero_std_fraction": float(
                (groups.max(1).values == groups.min(1).values).float().mean()
            ),
            **{k: v / updates for k, v in totals.items()},
            **({"kl": math.nan} if ref is None else {}),
            "response_length": float(mask.sum(1).mean()),
            "tokens_generated": float(mask.sum()),
            "seconds_sampling": sampled - start,
            "seconds_scoring": scored - sampled,
            "seconds_optimising": done - scored,
        }

    def _update(
        self,
        prompts: Tensor,
        masks: Tensor,
        responses: Tensor,
        mask: Tensor,
        advantages: Tensor,
        old: Tensor | None,
        ref: Tensor | None,
    ) -> dict[str, float]:
        """One gradient step on a minibatch of ``b`` responses (``advantages`` is ``(b, 1)``)."""
        cfg = self.config
        logp = self._logprobs(self.policy, prompts, masks, responses)  # (b, R)
        ratio = torch.exp(logp - (logp.detach() if old is None else old))
        clipped = ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
        per_token = -torch.min(ratio * advantages, clipped * advantages)
        kl = torch.zeros(())
        if ref is not None:
            diff = ref - logp
            k3 = torch.exp(diff) - diff - 1
            per_token = per_token + cfg.kl_coef * k3
            kl = (k3.detach() * mask).sum() / mask.sum()
        if cfg.loss_normalisation == "sequence":
            loss = ((per_token * mask).sum(1) / mask.sum(1)).mean()
        else:
            loss = (per_token * mask).sum() / mask.sum()

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        norm = cfg.max_grad_norm
        grad_norm = nn.utils.clip_grad_norm_(params, norm if norm is not None else math.inf)
        self.optimizer.step()

        with torch.no_grad():
            low = (ratio < 1 - cfg.clip_range) & (advantages < 0)
            high = (ratio > 1 + cfg.clip_range) & (advantages > 0)
            clip_fraction = ((low | high).float() * mask).sum() / mask.sum()
        return {
            "loss": float(loss.detach()),
            "grad_norm": float(grad_norm),
            "kl": float(kl),
            "clip_fraction": float(clip_fraction),
        }

    def fit(
        self, prompt_ids: Tensor, prompt_mask: Tensor, num_steps: int
    ) -> list[dict[str, float]]:
        """Run ``num_steps`` steps, each on ``config.prompts_per_step`` prompts drawn at random.

        Args:
            prompt_ids: The pool of left-padded prompts, ``(N, P)`` long.
            prompt_mask: Their mask, ``(N, P)``.
            num_steps: Steps to run.

        Returns:
            The statistics of each :meth:`step`.
        """
        k = self.config.prompts_per_step
        if prompt_ids.shape[0] < k:
            raise ValueError(
                f"prompts_per_step={k} but only {prompt_ids.shape[0]} prompts were given; "
                "lower prompts_per_step or give more prompts"
            )
        history = []
        for _ in range(num_steps):
            order = torch.randperm(
                prompt_ids.shape[0], generator=self.generator, device=self.generator.device
            )
            index = order[:k].to(prompt_ids.device)
            history.append(self.step(prompt_ids[index], prompt_mask[index]))
        return history
