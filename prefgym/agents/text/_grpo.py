"""Group relative policy optimisation (GRPO, Shao et al. 2024) for language models.

GRPO needs no value network: each prompt is answered ``G`` times, each response
is scored (by a learned reward model or an oracle's true score), and a
response's advantage is its score standardised within its group, shared by all
its tokens. The policy then follows PPO's clipped surrogate, optionally with a
per-token KL penalty to a frozen reference through the k3 estimator
``exp(ref - logp) - (ref - logp) - 1`` (unbiased and always >= 0).

One :meth:`GRPOTrainer.step` is one GRPO iteration:

1. sample ``G`` responses to each prompt;
2. score every response with ``reward_fn``;
3. group-relative advantages, one per response, shared by all its tokens;
4. without grad, the old log-probs (only when the policy moves before the last
   minibatch: several iterations or several minibatches) and the reference's
   (only when ``kl_coef > 0``);
5. ``num_iterations`` passes over the responses in minibatches (shuffled when
   there are several): one forward each, the clipped surrogate plus the KL
   penalty, gradient clipping, an AdamW step.

Prompts are left-padded ``(B, P)`` token ids with a mask; responses are
right-padded ``(B, R)`` with ``pad_id`` after their first ``eos_id``, which
belongs to the response.
"""

from __future__ import annotations

import copy
import math
import time
from typing import NamedTuple

import torch
from torch import Tensor, nn

from prefgym.agents.text._checkpoints import CheckpointedTrainer
from prefgym.agents.text._losses import ScoreFn
from prefgym.agents.text.config import GRPOConfig
from prefgym.lm import response_logprobs, response_mask, sample_responses


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


class _Batch(NamedTuple):
    """What the update reads of ``n = prompts x G`` responses."""

    prompts: Tensor  # (n, P) long, left-padded, each prompt repeated G times
    masks: Tensor  # (n, P), 1 on prompt tokens
    responses: Tensor  # (n, R) long, right-padded
    mask: Tensor  # (n, R), 1 on real response tokens
    advantages: Tensor  # (n, 1), one per response
    old: Tensor | None  # (n, R) old log-probs; None when they are the current ones, detached
    ref: Tensor | None  # (n, R) the reference's log-probs; None without a KL penalty

    def rows(self, index: Tensor) -> _Batch:
        """The responses ``index`` ``(b,)``."""
        return _Batch(
            self.prompts[index],
            self.masks[index],
            self.responses[index],
            self.mask[index],
            self.advantages[index],
            None if self.old is None else self.old[index],
            None if self.ref is None else self.ref[index],
        )


def _statistics(
    scores: Tensor,
    group_size: int,
    updates: dict[str, float],
    mask: Tensor,
    clock: tuple[float, float, float, float],
) -> dict[str, float]:
    """The statistics of one :meth:`GRPOTrainer.step` (its docstring lists them).

    Args:
        scores: ``(n,)`` the scores of the responses, group by group.
        group_size: the responses to each prompt, ``G``.
        updates: the mean over the minibatch steps of each of their scalars.
        mask: ``(n, R)`` 1 on real response tokens.
        clock: ``time.perf_counter()`` at the start, after sampling, scoring and optimising.
    """
    start, sampled, scored, done = clock
    grouped = scores.view(-1, group_size)  # (prompts, G)
    return {
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "zero_std_fraction": float((grouped.max(1).values == grouped.min(1).values).float().mean()),
        **updates,
        "response_length": float(mask.sum(1).mean()),
        "tokens_generated": float(mask.sum()),
        "seconds_sampling": sampled - start,
        "seconds_scoring": scored - sampled,
        "seconds_optimising": done - scored,
    }


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
            Called without gradients; None until an agent (``TokenAgent``) scores for it.
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
        reward_fn: ScoreFn | None = None,
        eos_id: int,
        pad_id: int,
        generator: torch.Generator,
        ref_policy: nn.Module | None = None,
    ) -> None:
        self.policy = policy.eval()
        self.config = config
        self.reward_fn = reward_fn
        """Scores responses; None until an agent puts its own in place."""
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
        """``(n, R)`` log-probs of the response tokens under ``model`` (logits / temperature)."""
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

        # 1. Sample G responses to each prompt.
        start = time.perf_counter()
        responses = self._sample(prompts, masks)
        sampled = time.perf_counter()

        # 2. Score every response.
        scores = self._score(prompts, masks, responses)
        scored = time.perf_counter()

        # 3. Group-relative advantages, one per response.
        advantages = group_advantages(
            scores.view(n_prompts, cfg.group_size),
            scale=cfg.scale_advantages,
            eps=cfg.advantage_eps,
        ).view(n, 1)
        mask = response_mask(responses, self.eos_id)  # (n, R) real response tokens

        # 4. Old and reference log-probs, without grad.
        minibatch = min(cfg.minibatch_size or n, n)
        old, ref = self._old_and_ref_logprobs(prompts, masks, responses, minibatch)

        # 5. num_iterations passes over the responses in minibatches.
        batch = _Batch(prompts, masks, responses, mask, advantages, old, ref)
        updates = self._optimise(batch, minibatch)
        self.steps += 1
        done = time.perf_counter()

        clock = (start, sampled, scored, done)
        return _statistics(scores, cfg.group_size, updates, mask, clock)

    def _sample(self, prompts: Tensor, masks: Tensor) -> Tensor:
        """Stage 1: one ``(n, R)`` response to each of the ``(n, P)`` (repeated) prompts."""
        return sample_responses(
            self.policy,
            prompts,
            masks,
            max_new_tokens=self.config.max_new_tokens,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            temperature=self.config.temperature,
            generator=self.generator,
        )

    def _score(self, prompts: Tensor, masks: Tensor, responses: Tensor) -> Tensor:
        """Stage 2: ``reward_fn``'s ``(n,)`` scores, as float on the policy's device."""
        n = prompts.shape[0]
        if self.reward_fn is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward_fn: pass one, or train it as the "
                "preference loop's agent (prefgym.agents.text.TokenAgent), which scores for it"
            )
        with torch.no_grad():
            scores = self.reward_fn(prompts, masks, responses)
        if scores.shape != (n,):
            raise ValueError(
                f"reward_fn must return one score per response, shape ({n},), "
                f"got {tuple(scores.shape)}"
            )
        return scores.detach().float().to(self.device)

    @torch.no_grad()
    def _old_and_ref_logprobs(
        self, prompts: Tensor, masks: Tensor, responses: Tensor, minibatch: int
    ) -> tuple[Tensor | None, Tensor | None]:
        """Stage 4: the ``(n, R)`` old log-probs and the reference's, when they are needed.

        With one pass over one minibatch the policy has not moved since sampling, so the old
        log-probs are the current ones, detached (None here). Without a KL penalty there is
        no reference (None).
        """
        cfg = self.config
        old = None
        if cfg.num_iterations > 1 or minibatch < prompts.shape[0]:
            old = self._logprobs(self.policy, prompts, masks, responses)
        ref = None
        if cfg.kl_coef > 0:
            assert self.ref_policy is not None
            ref = self._logprobs(self.ref_policy, prompts, masks, responses)
        return old, ref

    def _optimise(self, batch: _Batch, minibatch: int) -> dict[str, float]:
        """Stage 5: ``num_iterations`` passes over ``batch`` in minibatches of ``minibatch``.

        The minibatches are shuffled (from ``generator``) only when there are several.

        Returns:
            The mean over the minibatch steps of ``loss``, ``grad_norm``, ``kl`` (NaN without
            a reference) and ``clip_fraction``.
        """
        n = batch.prompts.shape[0]
        totals = {"loss": 0.0, "grad_norm": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        updates = 0
        for _ in range(self.config.num_iterations):
            order = torch.arange(n, device=self.device)
            if minibatch < n:
                order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            for index in order.to(self.device).split(minibatch):
                for key, value in self._update(batch.rows(index)).items():
                    totals[key] += value
                updates += 1
        means = {k: v / updates for k, v in totals.items()}
        return means | ({"kl": math.nan} if batch.ref is None else {})

    def _update(self, batch: _Batch) -> dict[str, float]:
        """One gradient step on a minibatch of ``b`` responses (``advantages`` is ``(b, 1)``)."""
        cfg = self.config
        prompts, masks, responses, mask, advantages, old, ref = batch
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
