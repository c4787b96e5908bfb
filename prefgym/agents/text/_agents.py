"""The text trainers as the loop's learners, and the text game's query source.

Token-level PPO and GRPO are online agents: each step is one update on a fresh
batch of prompts, scored by the learned reward model (GRPO may score by the
oracle's true score instead, an ablation). DPO is an offline trainer: each step
is one pass over the stored judgments. The query source asks K responses of
the current policy to each prompt, judged together as a pair or a K-wise ranking
(InstructGPT).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from prefgym.agents.text._dpo import DPOTrainer, PreferenceDataset, dataset_from_judgments
from prefgym.agents.text._grpo import GRPOTrainer
from prefgym.agents.text._rollouts import (
    Prompts,
    draw_prompts,
    judged_segments,
    measure,
    pad_responses,
    sample_segments,
)
from prefgym.agents.text._token_ppo import TokenPPO
from prefgym.envs.text_env import TextEnv
from prefgym.loop import SegmentCache
from prefgym.reward import RewardEnsemble
from prefgym.segments import Segment
from prefgym.store import PreferenceStore, TrainingData
from prefgym.text import TextCodec, corpus

if TYPE_CHECKING:
    from transformers import PreTrainedModel

IterationHook = Callable[[int, dict[str, float]], None]
"""Called after each update with the updates done so far and the update's statistics
(``train_*`` and ``batch_*`` columns)."""


class TokenAgent:
    """Token-level PPO or GRPO against the learned reward; one step is one update."""

    def __init__(
        self,
        trainer: TokenPPO | GRPOTrainer,
        env: TextEnv,
        rng: np.random.Generator,
        *,
        iteration: int,
        on_iteration: IterationHook,
        oracle_reward: bool = False,
        ptx_docs: int = 0,
    ) -> None:
        """Train ``trainer``'s policy on ``env``'s prompts.

        Args:
            trainer: The update rule; its ``reward_fn`` is replaced by this agent's.
            env: Draws prompts and scores responses (true score, fluency).
            rng: Draws prompts (and PPO-ptx's pretraining documents).
            iteration: Updates done so far (a resumed run's count).
            on_iteration: Called after each update; the run logs, evaluates and checkpoints.
            oracle_reward: Score by the true score, not the reward model (GRPO's ablation).
            ptx_docs: Pretraining documents mixed into each PPO update (PPO-ptx); 0 for none.
        """
        self.trainer, self.env, self.rng = trainer, env, rng
        self.iteration, self.on_iteration = iteration, on_iteration
        self.oracle_reward, self.ptx_docs = oracle_reward, ptx_docs
        self.model: RewardEnsemble | None = None
        self._last_batch: list[Segment] = []
        trainer.reward_fn = self._scores

    @property
    def steps(self) -> int:
        """Updates done."""
        return self.iteration

    def set_reward(self, model: RewardEnsemble | None) -> None:
        """Score responses with ``model`` from now on (None: score 0, only the KL penalty)."""
        self.model = model

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        """Run ``steps`` updates, each on freshly drawn prompts."""
        for _ in range(steps):
            stats = self._update()
            self.iteration += 1
            self.on_iteration(self.iteration, stats)
            if progress is not None:
                progress(1)

    def recent_metrics(self) -> dict[str, float]:
        """Nothing: the run measures the policy on its evaluation prompts."""
        return {}

    def _update(self) -> dict[str, float]:
        trainer = self.trainer
        if isinstance(trainer, TokenPPO):
            n = trainer.config.batch_size
        else:
            n = trainer.config.prompts_per_step
        prompts = draw_prompts(self.env, n, self.rng)
        if isinstance(trainer, TokenPPO) and self.ptx_docs > 0:
            stats = trainer.step(prompts.ids, prompts.mask, *self._ptx_batch())
        else:
            stats = trainer.step(prompts.ids, prompts.mask)
        out = {f"train_{k}": v for k, v in stats.items()}
        if self._last_batch:
            on_policy = measure(self._last_batch)
            out.update(batch_true_score=on_policy["true_score"], batch_fluency=on_policy["fluency"])
        return out

    def _scores(self, prompt_ids: Tensor, prompt_mask: Tensor, responses: Tensor) -> Tensor:
        """Scores of one batch ``(B,)``; keeps the batch's true scores for the metrics."""
        codec = self.env.codec
        prompts = Prompts(
            [
                codec.decode([int(i) for i in row[m.bool()]])
                for row, m in zip(prompt_ids, prompt_mask, strict=True)
            ],
            prompt_ids,
            prompt_mask,
        )
        padded = pad_responses(responses, self.env.response_length, codec.pad_id)
        self._last_batch = judged_segments(self.env, prompts, padded)
        if self.oracle_reward:
            scores = [s.info["true_score"] for s in self._last_batch]
            return torch.as_tensor(scores, dtype=torch.float32)
        if self.model is None:
            return torch.zeros(len(responses), dtype=torch.float32)
        with torch.no_grad():
            return self.model(prompt_ids[:, None], padded[:, None]).squeeze(1)

    def _ptx_batch(self) -> tuple[Tensor, Tensor]:
        """Pretraining documents for PPO-ptx: the grammar's corpus, right-padded, ``(N, L)``."""
        codec = self.env.codec
        docs = [codec.encode(d) + [codec.eos_id] for d in corpus(self.rng, self.ptx_docs)]
        width = max(len(d) for d in docs)
        ids = torch.full((len(docs), width), codec.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, doc in enumerate(docs):
            ids[i, : len(doc)], mask[i, : len(doc)] = torch.as_tensor(doc), 1
        return ids, mask


class DPOAgent:
    """DPO on the stored judgments; one step is one pass over them."""

    def __init__(
        self, trainer: DPOTrainer, codec: TextCodec, *, iteration: int, on_iteration: IterationHook
    ) -> None:
        """Train ``trainer``'s policy; ``iteration`` passes are done already."""
        self.trainer, self.codec = trainer, codec
        self.iteration, self.on_iteration = iteration, on_iteration
        self.dataset: PreferenceDataset | None = None

    @property
    def steps(self) -> int:
        """Passes done."""
        return self.iteration

    def set_judgments(self, data: TrainingData, segments: Sequence[Segment]) -> None:
        """Train on every pairwise judgment (a ranking as its C(K, 2) pairs) from now on."""
        self.dataset = self.trainer.with_reference(preference_dataset(data, segments, self.codec))

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        """Run ``steps`` passes over the judgments."""
        if self.dataset is None:
            raise RuntimeError("DPO trains on judgments: the loop hands them over before training")
        for _ in range(steps):
            stats = self.trainer.fit_epoch(self.dataset)
            self.iteration += 1
            self.on_iteration(self.iteration, {f"train_{k}": v for k, v in stats.items()})
            if progress is not None:
                progress(1)

    def recent_metrics(self) -> dict[str, float]:
        """Nothing: the run measures the policy on its evaluation prompts."""
        return {}


def preference_dataset(
    data: TrainingData, segments: Sequence[Segment], codec: TextCodec
) -> PreferenceDataset:
    """Every pairwise judgment (rankings as their C(K, 2) pairs) as chosen/rejected responses."""
    rows: list[tuple[Tensor, Tensor, Tensor, float]] = []

    def add(a: int, b: int, target: float) -> None:
        prompt = torch.as_tensor(segments[a].observations[0])
        prompt = prompt[prompt != codec.pad_id]
        rows.append(
            (
                prompt,
                torch.as_tensor(segments[a].actions[0]),
                torch.as_tensor(segments[b].actions[0]),
                target,
            )
        )

    for (a, b), target in zip(data.pairs.tolist(), data.targets.tolist(), strict=True):
        add(a, b, target)
    for ranking in data.rankings:
        for a, b in itertools.combinations(ranking, 2):
            add(a, b, 1.0)
    return dataset_from_judgments(rows, eos_id=codec.eos_id, pad_id=codec.pad_id)


class ResponseGroups:
    """The text game's query source: K responses of the current policy to each prompt."""

    def __init__(
        self,
        policy: PreTrainedModel,
        env: TextEnv,
        store: PreferenceStore,
        rng: np.random.Generator,
        generator: torch.Generator,
        *,
        k: int,
        temperature: float,
        round_of: Callable[[int], int],
    ) -> None:
        """Ask about ``policy``'s responses to ``env``'s prompts.

        Args:
            policy: The policy being trained.
            env: Draws prompts and scores responses.
            store: Where the responses and queries go.
            rng: Draws prompts.
            generator: Samples responses.
            k: Responses per prompt: 2 asks pairs, 3 to 9 rankings.
            temperature: Sampling temperature.
            round_of: The labelling round that progress falls in (stored with each response).
        """
        self.policy, self.env, self.store, self.rng, self.generator = (
            policy,
            env,
            store,
            rng,
            generator,
        )
        self.k, self.temperature, self.round_of = k, temperature, round_of

    def start(self, segments: SegmentCache) -> None:
        """Nothing: the first labelling round samples the starting policy."""

    def collect(self, segments: SegmentCache) -> None:
        """Nothing: the updates' responses are not asked about."""

    def ask(self, n: int, progress: int, segments: SegmentCache) -> None:
        """Sample K responses to each of ``n`` new prompts; each prompt's K are one query."""
        round_index = self.round_of(progress)
        prompts = draw_prompts(self.env, n, self.rng).repeat(self.k)
        responses = sample_segments(
            self.policy,
            self.env,
            prompts,
            generator=self.generator,
            temperature=self.temperature,
            round=round_index,
        )
        ids = segments.add(responses, round=round_index)
        groups = [tuple(ids[i : i + self.k]) for i in range(0, len(ids), self.k)]
        self.store.add_queries(groups, round=round_index)

    def reference(self) -> list[int]:
        """The first round's responses (the starting policy's): its samples score mean 0, std 1."""
        return self.store.segment_ids(round=0)
