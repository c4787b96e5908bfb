"""Token-level PPO for causal language models (Ziegler et al. 2019), straight-line.

One :meth:`TokenPPO.step` is one PPO iteration:

1. sample one response per prompt with the KV cache, keeping each token's log-prob
   (these are the "old" log-probs: no second forward of the policy);
2. score the responses with ``reward_fn``, take the frozen reference's log-probs and
   the value model's estimates;
3. per-token rewards: ``-beta * (logp - logp_ref)`` on every token, the score added at the
   last real token (the eos, or the last token of a response that never ended);
4. GAE advantages, whitened over the batch;
5. ``ppo_epochs`` passes of shuffled minibatches: one forward each, the clipped policy loss
   plus ``vf_coef`` times the clipped value loss (plus the PPO-ptx language-model loss),
   gradient clipping, an Adam step;
6. the KL controller updates ``beta``.

Details from "The N Implementation Details of RLHF with PPO": dropout off everywhere
(every model in eval mode), the value head zero-initialised, logits divided by the sampling
temperature in every forward, rewards optionally whitened (keeping their mean), an optional
penalty for responses that never ended, Adam's epsilon 1e-5.

One module, longer than most: the algorithm reads top to bottom in ``step``, each numbered
stage a method beside it; the records passed between stages are ``_ppo_batch``.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from prefgym.agents.text._checkpoints import CheckpointedTrainer
from prefgym.agents.text._losses import (
    AdaptiveKLController,
    FixedKLController,
    ScoreFn,
    gae,
    kl_penalised_rewards,
    masked_mean,
    policy_loss,
    value_loss,
    whiten,
)
from prefgym.agents.text._ppo_batch import PPOBatch, Rollout, Scoring, ppo_statistics
from prefgym.agents.text.config import TokenPPOConfig
from prefgym.lm import (
    fuse_gelu,
    position_ids,
    response_hidden,
    response_logits,
    response_logits_and_hidden,
    response_logprobs,
    response_mask,
    sample_with_logprobs,
    token_logprobs,
    trim_left_padding,
)

_KL_FILE = "kl_controller.json"


class TokenPPO(CheckpointedTrainer):
    """PPO with a per-token KL penalty to a frozen reference, for any Hugging Face causal LM.

    Every model is kept in eval mode (dropout off). The reference is a frozen copy of
    ``policy`` when none is given. The value model is a copy of the policy's trunk
    (``policy.base_model``) with a zero-initialised scalar head, or only that head on the
    policy's trunk when ``config.value_model == "shared"``. With ``config.fused_gelu`` the
    models' ``gelu_new`` modules are swapped for a cheaper form of the same function
    (:class:`~prefgym.lm.TanhGELU`).

    Args:
        policy: the causal LM trained in place (e.g. ``GPT2LMHeadModel``).
        config: the trainer's settings.
        reward_fn: ``(prompt_ids (B, P), prompt_mask (B, P), response_ids (B, R)) -> (B,)``
            scores, called without grad; None until an agent (``TokenAgent``) scores for it.
        eos_id: the token that ends a response.
        pad_id: the token written after a response's eos.
        generator: the source of randomness (sampling and shuffling), on the policy's device.
        ref_policy: the frozen reference; None copies ``policy``.
    """

    kind = "token_ppo"

    def __init__(
        self,
        policy: PreTrainedModel,
        config: TokenPPOConfig,
        *,
        reward_fn: ScoreFn | None = None,
        eos_id: int,
        pad_id: int,
        generator: torch.Generator,
        ref_policy: PreTrainedModel | None = None,
    ) -> None:
        if config.fused_gelu:
            fuse_gelu(policy)
            if ref_policy is not None:
                fuse_gelu(ref_policy)
        self.policy = policy.eval()
        self.config = config
        self.reward_fn = reward_fn
        """Scores responses; None until an agent puts its own in place."""
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.generator = generator
        self._owns_ref = ref_policy is None
        self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy
        self.ref_policy.eval().requires_grad_(False)

        head = nn.Linear(policy.config.hidden_size, 1)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        device = next(policy.parameters()).device
        self.value_model = nn.ModuleDict({"head": head})
        if config.value_model == "separate":
            self.value_model["trunk"] = copy.deepcopy(policy.base_model)
        self.value_model.to(device).eval()
        # Policy and value model train as one module, with one optimizer, one gradient clip.
        self._trained = nn.ModuleDict({"policy": policy, "value": self.value_model})
        self._params = [p for p in self._trained.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            self._params, lr=config.lr, eps=config.adam_eps, fused=device.type in ("cpu", "cuda")
        )
        self.kl_controller: AdaptiveKLController | FixedKLController = (
            AdaptiveKLController(config.kl_coef, config.kl_target, config.kl_horizon)
            if config.kl == "adaptive"
            else FixedKLController(config.kl_coef)
        )
        self.steps = 0

    def _logits_and_values(
        self, prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(B, R, V)`` policy logits (over the temperature) and ``(B, R)`` values."""
        temperature, head = self.config.temperature, self.value_model["head"]
        args = (prompt_ids, prompt_mask, response_ids)
        if self.config.value_model == "shared":
            logits, hidden = response_logits_and_hidden(
                self.policy, *args, eos_id=self.eos_id, temperature=temperature
            )
        else:
            logits = response_logits(
                self.policy, *args, eos_id=self.eos_id, temperature=temperature
            )
            hidden = response_hidden(self.value_model["trunk"], *args, eos_id=self.eos_id)
        return logits, head(hidden).squeeze(-1).float()

    @torch.no_grad()
    def _values(self, prompt_ids: Tensor, prompt_mask: Tensor, response_ids: Tensor) -> Tensor:
        """``(B, R)`` value estimates, without the policy's LM head."""
        trunk = self.policy.base_model if self.config.value_model == "shared" else None
        trunk = self.value_model["trunk"] if trunk is None else trunk
        hidden = response_hidden(trunk, prompt_ids, prompt_mask, response_ids, eos_id=self.eos_id)
        return self.value_model["head"](hidden).squeeze(-1).float()

    def _ptx_loss(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Mean next-token negative log-likelihood of ``(N, L)`` ids under the policy."""
        logits = self.policy(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask))
        logits = logits.logits[:, :-1].float()
        both_real = (mask[:, 1:] * mask[:, :-1]).float()
        return masked_mean(-token_logprobs(logits, ids[:, 1:]), both_real)

    def step(
        self,
        prompt_ids: Tensor,
        prompt_mask: Tensor,
        ptx_batch: Tensor | None = None,
        ptx_mask: Tensor | None = None,
    ) -> dict[str, float]:
        """One PPO iteration on a batch of prompts.

        Args:
            prompt_ids: ``(batch_size, P)`` long, left-padded, on the policy's device.
            prompt_mask: ``(batch_size, P)``, 1 on real tokens.
            ptx_batch: ``(N, L)`` pretraining token ids for PPO-ptx (``N >= 1``), split over
                the minibatches; required exactly when ``config.ptx_coef > 0``.
            ptx_mask: ``(N, L)`` mask of ``ptx_batch``; None when every token is real.

        Returns:
            Statistics: ``score`` (mean, before any missing-eos penalty), ``reward`` (score
            minus the KL penalty, per response), ``kl`` (to the reference, summed over a
            response's tokens), ``kl_coef`` (the beta used), ``entropy`` (per token, while
            sampling), ``value``; means over the minibatch steps of ``policy_loss``,
            ``value_loss``, ``clip_fraction``, ``value_clip_fraction``, ``approx_kl``,
            ``grad_norm`` (and ``ptx_loss``); ``response_length``, ``fraction_ended``,
            ``tokens_generated`` (real response tokens), ``tokens_per_second``,
            ``optimizer_steps``, ``seconds_sampling``, ``seconds_scoring``,
            ``seconds_optimisation``.
        """
        self._check_step_inputs(prompt_ids, ptx_batch)
        self.policy.eval()
        self.value_model.eval()
        started = time.perf_counter()

        # 1. Rollout: sample, keeping the sampler's log-probs as the old log-probs.
        rollout = self._rollout(prompt_ids, prompt_mask)
        sampled = time.perf_counter()

        # 2. Score, reference log-probs, values.
        scoring = self._score(prompt_ids, prompt_mask, rollout)

        # 3. Per-token rewards with the KL penalty, and 4. whitened GAE advantages.
        kl_coef = self.kl_controller.value
        rewards, kl = self._rewards(rollout, scoring, kl_coef)
        advantages, returns = self._advantages(rewards, scoring.values, rollout.real)
        scored = time.perf_counter()

        # 5. PPO epochs over shuffled minibatches.
        ptx_parts = self._ptx_parts(ptx_batch, ptx_mask)
        batch = PPOBatch.of(rollout, scoring.values, advantages, returns)
        updates = self._ppo_epochs(batch, ptx_parts)
        optimised = time.perf_counter()

        # 6. The KL controller sees this batch's KL per response.
        kl_per_response = kl.sum(-1)
        self.kl_controller.update(float(kl_per_response.mean()), self.config.batch_size)
        self.steps += 1

        clock = (started, sampled, scored, optimised)
        return ppo_statistics(rollout, scoring, kl_per_response, kl_coef, updates, clock)

    def _check_step_inputs(self, prompt_ids: Tensor, ptx_batch: Tensor | None) -> None:
        """Refuse a batch of the wrong size, or a PPO-ptx batch that ``ptx_coef`` disagrees with."""
        cfg = self.config
        if prompt_ids.shape[0] != cfg.batch_size:
            raise ValueError(
                f"step takes config.batch_size={cfg.batch_size} prompts, got {prompt_ids.shape[0]}"
            )
        if (ptx_batch is None) != (cfg.ptx_coef == 0):
            raise ValueError(
                f"pass ptx_batch exactly when ptx_coef > 0; got ptx_coef={cfg.ptx_coef} and "
                f"ptx_batch={'None' if ptx_batch is None else tuple(ptx_batch.shape)}"
            )

    def _rollout(self, prompt_ids: Tensor, prompt_mask: Tensor) -> Rollout:
        """Stage 1: one response per ``(B, P)`` prompt, sampled with the KV cache.

        The sampler's log-probs serve as the old log-probs, so the policy needs no second
        forward pass before the update.
        """
        ids, mask = trim_left_padding(prompt_ids, prompt_mask)
        samples = sample_with_logprobs(
            self.policy,
            ids,
            mask,
            max_new_tokens=self.config.max_new_tokens,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            temperature=self.config.temperature,
            generator=self.generator,
        )
        responses = samples.response_ids
        real = response_mask(responses, self.eos_id)  # (B, R)
        targets = responses.masked_fill(real == 0, 0)  # pad ids may lie outside the vocab
        old_logprobs = samples.logprobs * real
        return Rollout(ids, mask, responses, targets, real, old_logprobs, samples.entropy)

    def _score(self, prompt_ids: Tensor, prompt_mask: Tensor, rollout: Rollout) -> Scoring:
        """Stage 2: ``reward_fn``'s scores, the reference's log-probs and the values.

        Args:
            prompt_ids: ``(B, P)`` the prompts as given to :meth:`step` (``reward_fn`` sees
                them untrimmed).
            prompt_mask: ``(B, P)`` their mask.
            rollout: the responses sampled for them.
        """
        cfg, real, responses = self.config, rollout.real, rollout.responses
        if self.reward_fn is None:
            raise RuntimeError(
                f"{type(self).__name__} has no reward_fn: pass one, or train it as the "
                "preference loop's agent (prefgym.agents.text.TokenAgent), which scores for it"
            )
        with torch.no_grad():
            scores = self.reward_fn(prompt_ids, prompt_mask, responses)
        scores = scores.to(device=real.device, dtype=torch.float32).reshape(-1)
        if scores.shape != (cfg.batch_size,):
            raise ValueError(
                f"reward_fn must return ({cfg.batch_size},) scores, got {tuple(scores.shape)}"
            )
        ids, mask = rollout.prompt_ids, rollout.prompt_mask
        with torch.inference_mode():  # constants of the update, computed once per rollout
            ref_logprobs = response_logprobs(
                self.ref_policy,
                ids,
                mask,
                responses,
                eos_id=self.eos_id,
                temperature=cfg.temperature,
            )
            values = self._values(ids, mask, responses) * real
        ended = (responses == self.eos_id).any(-1)
        penalised = scores
        if cfg.missing_eos_penalty is not None:
            penalised = scores - cfg.missing_eos_penalty * (~ended).float()
        return Scoring(scores, penalised, ended, ref_logprobs, values)

    def _rewards(self, rollout: Rollout, scoring: Scoring, kl_coef: float) -> tuple[Tensor, Tensor]:
        """Stage 3: ``(B, R)`` per-token rewards and the ``(B, R)`` KL they were penalised by.

        ``-kl_coef * (logp - logp_ref)`` on every token, the (penalised) score added at the
        last real one; whitened over the batch, keeping their mean, when
        ``config.whiten_rewards``.
        """
        rewards, kl = kl_penalised_rewards(
            rollout.logprobs, scoring.ref_logprobs, scoring.penalised, rollout.real, kl_coef
        )
        if self.config.whiten_rewards:
            rewards = whiten(rewards, rollout.real, shift_mean=False) * rollout.real
        return rewards, kl

    def _advantages(self, rewards: Tensor, values: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        """Stage 4: GAE advantages whitened over the batch, and the returns; all ``(B, R)``."""
        advantages, returns = gae(rewards, values, real, self.config.gamma, self.config.lam)
        return whiten(advantages, real) * real, returns

    def _ptx_parts(
        self, ptx_batch: Tensor | None, ptx_mask: Tensor | None
    ) -> list[tuple[Tensor, Tensor]]:
        """The ``(N, L)`` PPO-ptx batch and mask cut into one part per minibatch; [] without."""
        if ptx_batch is None:
            return []
        ptx_mask = torch.ones_like(ptx_batch) if ptx_mask is None else ptx_mask
        n_minibatches = self.config.batch_size // self.config.minibatch_size
        return list(zip(ptx_batch.chunk(n_minibatches), ptx_mask.chunk(n_minibatches), strict=True))

    def _ppo_epochs(
        self, batch: PPOBatch, ptx_parts: list[tuple[Tensor, Tensor]]
    ) -> tuple[dict[str, list[Tensor]], int]:
        """Stage 5: ``config.ppo_epochs`` passes over ``batch`` in shuffled minibatches.

        Args:
            batch: the rollout with its old values, advantages and returns.
            ptx_parts: PPO-ptx ids and masks, used in turn by the minibatch steps; [] for none.

        Returns:
            Each minibatch step's scalars (see :meth:`_minibatch_step`), by name, and the
            number of optimizer steps taken.
        """
        cfg = self.config
        logged: dict[str, list[Tensor]] = {}
        n_updates = 0
        lengths = batch.real.sum(-1).long()  # (B,) real response tokens
        pads = (batch.prompt_mask.cumsum(-1) == 0).sum(-1)  # (B,) leading pad columns
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(
                cfg.batch_size, generator=self.generator, device=self.generator.device
            ).to(batch.real.device)
            batches = order.view(-1, cfg.minibatch_size)
            # One host sync per epoch: drop the columns that are padding in every row of a
            # minibatch (response columns on the right, prompt columns on the left).
            widths = lengths[batches].amax(-1).tolist()
            starts = pads[batches].amin(-1).tolist()
            for index, width, start in zip(batches, widths, starts, strict=True):
                ptx = ptx_parts[n_updates % len(ptx_parts)] if ptx_parts else None
                for name, value in self._minibatch_step(batch.minibatch(index, width, start), ptx):
                    logged.setdefault(name, []).append(value)
                n_updates += 1
        return logged, n_updates

    def _minibatch_step(
        self, mb: PPOBatch, ptx: tuple[Tensor, Tensor] | None
    ) -> list[tuple[str, Tensor]]:
        """One forward, loss, gradient clip and Adam step on a minibatch.

        The loss is the clipped policy loss plus ``vf_coef`` times the clipped value loss,
        plus ``ptx_coef`` times the language-model loss on the ``(n, L)`` ids and mask ``ptx``
        when given.

        Returns:
            The step's detached scalars, in logging order: ``ptx_loss`` (with ``ptx``),
            ``policy_loss``, ``value_loss``, ``clip_fraction``, ``value_clip_fraction``,
            ``approx_kl``, ``grad_norm``.
        """
        cfg = self.config
        logits, new_values = self._logits_and_values(mb.prompt_ids, mb.prompt_mask, mb.responses)
        new_logprobs = token_logprobs(logits, mb.targets)
        pg_loss, clip_fraction, approx_kl = policy_loss(
            new_logprobs, mb.logprobs, mb.advantages, mb.real, cfg.clip_range
        )
        vf_loss, vf_clip_fraction = value_loss(
            new_values, mb.values, mb.returns, mb.real, cfg.clip_range_value
        )
        loss = pg_loss + cfg.vf_coef * vf_loss
        logged: list[tuple[str, Tensor]] = []
        if ptx is not None:
            ptx_loss = self._ptx_loss(*ptx)
            loss = loss + cfg.ptx_coef * ptx_loss
            logged.append(("ptx_loss", ptx_loss.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm)
        self.optimizer.step()
        return [
            *logged,
            ("policy_loss", pg_loss.detach()),
            ("value_loss", vf_loss.detach()),
            ("clip_fraction", clip_fraction),
            ("value_clip_fraction", vf_clip_fraction),
            ("approx_kl", approx_kl),
            ("grad_norm", grad_norm),
        ]

    def _checkpointed(self) -> tuple[nn.Module, nn.Module | None]:
        # policy and value model train together, so the checkpoint keeps both
        return self._trained, self.ref_policy if self._owns_ref else None

    def save(self, directory: str | Path) -> Path:
        """Write policy and value weights, the owned reference, optimizer, generator and KL state.

        Returns:
            The directory.
        """
        path = super().save(directory)
        (path / _KL_FILE).write_text(json.dumps({"kl_coef": self.kl_controller.value}))
        return path

    def load(self, directory: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save` (see :meth:`CheckpointedTrainer.load`)."""
        super().load(directory)
        self.kl_controller.value = float(
            json.loads((Path(directory) / _KL_FILE).read_text())["kl_coef"]
        )
