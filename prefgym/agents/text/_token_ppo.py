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
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from prefgym.agents.text._checkpoints import CheckpointedTrainer
from prefgym.agents.text._losses import (
    AdaptiveKLController,
    FixedKLController,
    gae,
    kl_penalised_rewards,
    masked_mean,
    policy_loss,
    value_loss,
    whiten,
)
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

RewardFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(prompt_ids (B, P), prompt_mask (B, P), response_ids (B, R)) -> scores (B,)``."""

_KL_FILE = "kl_controller.json"


class TokenPPO(CheckpointedTrainer):
    """PPO with a per-token KL penalty to a frozen reference, for any Hugging Face causal LM.

    Every model is kept in eval mode (dropout off). The reference is a frozen copy of
    ``policy`` when none is given. The value model is a copy of the policy's trunk
    (``policy.base_model``) with a zero-initialised scalar head, or only that head on the
    policy's trunk when ``config.value_model == "shared"``. With ``config.fused_gelu`` the
    models' ``gelu_new`` modules are swapped for a cheaper form of the same function
    (:class:`~prefgym.lm._gpt2_fast.TanhGELU`).

    Args:
        policy: the causal LM trained in place (e.g. ``GPT2LMHeadModel``).
        config: the trainer's settings.
        reward_fn: ``(prompt_ids (B, P), prompt_mask (B, P), response_ids (B, R)) -> (B,)``
            scores, called without grad.
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
        reward_fn: RewardFn,
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
        self.policy.eval()
        self.value_model.eval()
        started = time.perf_counter()

        # 1. Rollout: sample, keeping the sampler's log-probs as the old log-probs.
        ids, mask = trim_left_padding(prompt_ids, prompt_mask)
        samples = sample_with_logprobs(
            self.policy,
            ids,
            mask,
            max_new_tokens=cfg.max_new_tokens,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            temperature=cfg.temperature,
            generator=self.generator,
        )
        responses = samples.response_ids
        real = response_mask(responses, self.eos_id)  # (B, R)
        targets = responses.masked_fill(real == 0, 0)  # pad ids may lie outside the vocab
        old_logprobs = samples.logprobs * real
        sampled = time.perf_counter()

        # 2. Score, reference log-probs, values.
        with torch.no_grad():
            scores = self.reward_fn(prompt_ids, prompt_mask, responses)
        scores = scores.to(device=real.device, dtype=torch.float32).reshape(-1)
        if scores.shape != (cfg.batch_size,):
            raise ValueError(
                f"reward_fn must return ({cfg.batch_size},) scores, got {tuple(scores.shape)}"
            )
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

        # 3. Per-token rewards with the KL penalty, and 4. whitened GAE advantages.
        kl_coef = self.kl_controller.value
        rewards, kl = kl_penalised_rewards(old_logprobs, ref_logprobs, penalised, real, kl_coef)
        if cfg.whiten_rewards:
            rewards = whiten(rewards, real, shift_mean=False) * real
        advantages, returns = gae(rewards, values, real, cfg.gamma, cfg.lam)
        advantages = whiten(advantages, real) * real
        scored = time.perf_counter()

        # 5. PPO epochs over shuffled minibatches.
        ptx_parts: list[tuple[Tensor, Tensor]] = []
        if ptx_batch is not None:
            ptx_mask = torch.ones_like(ptx_batch) if ptx_mask is None else ptx_mask
            n_minibatches = cfg.batch_size // cfg.minibatch_size
            ptx_parts = list(
                zip(ptx_batch.chunk(n_minibatches), ptx_mask.chunk(n_minibatches), strict=True)
            )
        logged: dict[str, list[Tensor]] = {}
        n_updates = 0
        lengths = real.sum(-1).long()  # (B,) real response tokens
        pads = (mask.cumsum(-1) == 0).sum(-1)  # (B,) leading pad columns of each prompt
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(
                cfg.batch_size, generator=self.generator, device=self.generator.device
            ).to(real.device)
            batches = order.view(-1, cfg.minibatch_size)
            # One host sync per epoch: drop the columns that are padding in every row of a
            # minibatch (response columns on the right, prompt columns on the left).
            widths = lengths[batches].amax(-1).tolist()
            starts = pads[batches].amin(-1).tolist()
            for index, width, start in zip(batches, widths, starts, strict=True):
                m = real[index, :width]
                mb_ids, mb_mask = ids[index, start:], mask[index, start:]
                mb_responses = responses[index, :width]
                logits, new_values = self._logits_and_values(mb_ids, mb_mask, mb_responses)
                new_logprobs = token_logprobs(logits, targets[index, :width])
                pg_loss, clip_fraction, approx_kl = policy_loss(
                    new_logprobs,
                    old_logprobs[index, :width],
                    advantages[index, :width],
                    m,
                    cfg.clip_range,
                )
                vf_loss, vf_clip_fraction = value_loss(
                    new_values,
                    values[index, :width],
                    returns[index, :width],
                    m,
                    cfg.clip_range_value,
                )
                loss = pg_loss + cfg.vf_coef * vf_loss
                if ptx_parts:
                    ptx_ids, ptx_m = ptx_parts[n_updates % len(ptx_parts)]
                    ptx_loss = self._ptx_loss(ptx_ids, ptx_m)
                    loss = loss + cfg.ptx_coef * ptx_loss
                    logged.setdefault("ptx_loss", []).append(ptx_loss.detach())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm)
                self.optimizer.step()
                n_updates += 1
                for name, value in (
                    ("policy_loss", pg_loss.detach()),
                    ("value_loss", vf_loss.detach()),
                    ("clip_fraction", clip_fraction),
                    ("value_clip_fraction", vf_clip_fraction),
                    ("approx_kl", approx_kl),
                    ("grad_norm", grad_norm),
                ):
                    logged.setdefault(name, []).append(value)
        optimised = time.perf_counter()

        # 6. The KL controller sees this batch's KL per response.
        kl_per_response = kl.sum(-1)
        self.kl_controller.update(float(kl_per_response.mean()), cfg.batch_size)
        self.steps += 1

        tokens = float(real.sum())
        stats = {name: float(torch.stack(series).mean()) for name, series in logged.items()}
        stats.update(
            score=float(scores.mean()),
            reward=float((penalised - kl_coef * kl_per_response).mean()),
            kl=float(kl_per_response.mean()),
            kl_coef=kl_coef,
            entropy=float(masked_mean(samples.entropy, real)),
            value=float(masked_mean(values, real)),
            response_length=float(real.sum(-1).mean()),
            fraction_ended=float(ended.float().mean()),
            tokens_generated=tokens,
            tokens_per_second=tokens / max(sampled - started, 1e-9),
            optimizer_steps=float(n_updates),
            seconds_sampling=sampled - started,
            seconds_scoring=scored - sampled,
            seconds_optimisation=optimised - scored,
        )
        return stats

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
