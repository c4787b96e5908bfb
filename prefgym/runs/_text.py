"""One text RLHF run, from the SFT policy to a tuned one, resumable at every evaluation.

See :mod:`prefgym.runs._text_config` for the stages. The run directory holds
the store (every response judged and every judgment), the reward model, the
trainer's checkpoint (policy, value model, optimizer, KL coefficient, random
state), ``metrics.csv`` and ``samples.jsonl``; the store's meta records the
iteration and labelling round reached, so :meth:`TextRun.run` after a crash
carries on from the last checkpoint without asking any judgment twice.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from prefgym.agents.text import DPOTrainer, PreferenceDataset, dataset_from_judgments
from prefgym.agents.text import GRPOTrainer
from prefgym.lm import LanguageModel, load_language_model
from prefgym.runs._text_config import RLAIF, TextTrainConfig, queries_per_round, round_starts
from prefgym.agents.text import (
    Prompts,
    draw_prompts,
    judged_segments,
    kl_to_reference,
    measure,
    pad_responses,
    sample_segments,
    win_rate,
)
from prefgym.lm import (
    TextRewardEnsemble,
    load_text_reward_model,
    save_text_reward_model,
    text_reward_model,
)
from prefgym.agents.text import TokenPPO
from prefgym.envs.text_env import TextEnv
from prefgym.reward import Learner, LearnerConfig
from prefgym.runs._metrics import MetricsLog, truncate_metrics
from prefgym.judges import Oracle, SyntheticOracle
from prefgym.runs._run_dir import RunDir
from prefgym.segments import Segment
from prefgym.store import PreferenceStore, training_data

if TYPE_CHECKING:
    from transformers import PreTrainedModel

SAMPLES_FILE = "samples.jsonl"
POLICY_DIR = "policy"
"""The trainer's checkpoint inside the run directory."""
SFT_JUDGE = "oracle"
"""The deterministic preset that measures win rates against the SFT policy."""
_SAMPLES_SHOWN = 4
_PTX_DOCS = 16
"""Pretraining documents mixed into each PPO-ptx update."""
EVAL_COLUMNS = ("true_score", "fluency", "ended", "response_tokens", "rm_score", "kl")
"""Measured on the evaluation prompts every ``eval_every`` iterations."""
REWARD_COLUMNS = ("rm_val_accuracy", "rm_return_correlation", "rm_train_loss", "rm_val_loss")
"""Reported by each reward-model fit."""
TRAIN_COLUMNS = {
    "ppo": (
        "score",
        "reward",
        "kl",
        "kl_coef",
        "entropy",
        "policy_loss",
        "value_loss",
        "clip_fraction",
        "approx_kl",
        "response_length",
        "fraction_ended",
        "tokens_per_second",
        "seconds_sampling",
        "seconds_optimisation",
        "ptx_loss",
    ),
    "grpo": (
        "score_mean",
        "score_std",
        "kl",
        "clip_fraction",
        "loss",
        "response_length",
        "seconds_sampling",
        "seconds_optimising",
    ),
    "dpo": ("loss", "reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward"),
}
"""The trainer's own statistics kept per iteration, written as ``train_<name>``."""
BATCH_COLUMNS = ("batch_true_score", "batch_fluency")
"""True score and fluency of the responses a PPO or GRPO update was computed on."""


def metric_columns(algo: str) -> list[str]:
    """The columns of a text run's ``metrics.csv``."""
    train = [f"train_{name}" for name in TRAIN_COLUMNS[algo]]
    return ["iteration", "labels_judged", *EVAL_COLUMNS, *REWARD_COLUMNS, *train, *BATCH_COLUMNS]


def make_oracle(spec: str, task_rubric: str, rng: np.random.Generator) -> Oracle:
    """The run's judge: a B-Pref teacher from its spec, or ``rlaif`` (SmolLM2 by a rubric)."""
    if spec == RLAIF:
        from prefgym.judges import AIFeedbackOracle
        from prefgym.lm import load_smollm2

        judge = load_smollm2()
        return AIFeedbackOracle(judge.model, judge.codec.tokenizer, task_rubric, name=RLAIF)  # type: ignore[attr-defined]
    return SyntheticOracle.from_spec(spec, rng)


class TextRun:
    """Carries out a :class:`TextTrainConfig` in a run directory."""

    def __init__(self, run: RunDir, config: TextTrainConfig, *, progress: bool = True) -> None:
        """Load the models and open the store; resumes whatever the directory holds."""
        from prefgym.envs.text_env import text_task

        self.run_dir, self.config, self.progress = run, config, progress
        task = text_task_name(config.env_id)
        self.lm: LanguageModel = load_language_model(config.model, task=task, progress=progress)
        self.policy: PreTrainedModel = self.lm.model
        self.reference = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.codec = self.lm.codec
        self.env = TextEnv(task, codec=self.codec, response_length=config.max_new_tokens)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.store = PreferenceStore(run.store)
        self.oracle = make_oracle(config.oracle, text_task(task).rubric(), self.rng)
        self.judge = SyntheticOracle.from_spec(SFT_JUDGE, np.random.default_rng(config.seed + 1))
        self.eval_prompts = draw_prompts(
            self.env, config.eval_prompts, np.random.default_rng(config.seed + 2)
        )
        self.reward_model: TextRewardEnsemble | None = None
        self.learner = Learner(
            LearnerConfig(
                max_epochs=config.reward_epochs,
                batch_size=32,
                # one member: a bootstrap resample would only hide a third of the judgments
                bootstrap=config.reward.n_members > 1,
                ranking_loss="pairs",  # InstructGPT: a K-wise ranking as its C(K, 2) pairs
            )
        )
        self.iteration = int(self.store.get_meta("iteration", 0))
        self._last_batch: list[Segment] = []
        self.trainer = self._trainer()
        self._restore()

    @property
    def _checkpoint_dir(self) -> Path:
        return self.run_dir.path / POLICY_DIR

    # ------------------------------------------------------------ building
    def _reward_fn(self, prompt_ids: Tensor, prompt_mask: Tensor, responses: Tensor) -> Tensor:
        """Scores for PPO/GRPO; records the batch's true scores for the metrics."""
        prompts = Prompts(
            [
                self.codec.decode([int(i) for i in row[m.bool()]])
                for row, m in zip(prompt_ids, prompt_mask, strict=True)
            ],
            prompt_ids,
            prompt_mask,
        )
        padded = pad_responses(responses, self.env.response_length, self.codec.pad_id)
        self._last_batch = judged_segments(self.env, prompts, padded)
        if self.config.algo == "grpo" and self.config.grpo_reward == "oracle":
            scores = [s.info["true_score"] for s in self._last_batch]
            return torch.as_tensor(scores, dtype=torch.float32)
        if self.reward_model is None:
            raise RuntimeError("the reward model is fitted before the policy trains")
        with torch.no_grad():
            return self.reward_model(prompt_ids[:, None], padded[:, None]).squeeze(1)

    def _trainer(self) -> TokenPPO | DPOTrainer | GRPOTrainer:
        c, common = self.config, dict(eos_id=self.codec.eos_id, pad_id=self.codec.pad_id)
        if c.algo == "ppo":
            return TokenPPO(
                self.policy,
                c.ppo,
                reward_fn=self._reward_fn,
                generator=self.generator,
                ref_policy=self.reference,
                **common,
            )
        if c.algo == "grpo":
            return GRPOTrainer(
                self.policy,
                c.grpo,
                reward_fn=self._reward_fn,
                generator=self.generator,
                ref_policy=self.reference,
                **common,
            )
        return DPOTrainer(
            self.policy, c.dpo, generator=self.generator, ref_policy=self.reference, **common
        )

    def _restore(self) -> None:
        """Load the reward model and the trainer's checkpoint if the run has them."""
        directory = self.run_dir.reward_model
        if (directory / "reward_model.json").is_file():
            self.reward_model = load_text_reward_model(directory, self.codec)
        if self._checkpoint_dir.is_dir() and any(self._checkpoint_dir.iterdir()):
            self.trainer.load(self._checkpoint_dir)
        state = self.store.get_meta("rng_state")
        if state is not None:
            self.rng.bit_generator.state = state

    # ------------------------------------------------------------ labels and reward model
    def _label(self, round_index: int, n_queries: int) -> None:
        """Sample K responses to ``n_queries`` prompts from the policy, store and judge them."""
        asked = [q for q in self.store.queries() if q.round == round_index]
        if not asked and n_queries > 0:
            k = self.config.responses_per_prompt
            prompts = draw_prompts(self.env, n_queries, self.rng).repeat(k)
            segments = sample_segments(
                self.policy,
                self.env,
                prompts,
                generator=self.generator,
                temperature=self._temperature,
                round=round_index,
            )
            ids = self.store.add_segments(segments, round=round_index)
            groups = [tuple(ids[i : i + k]) for i in range(0, len(ids), k)]
            self.store.add_queries(groups, round=round_index)
        self._judge_pending()

    def _judge_pending(self) -> None:
        pending = self.store.pending_queries(judge=self.oracle.name)
        if not pending:
            return
        pairs = [q for q in pending if len(q.segment_ids) == 2]
        answers: list[tuple[int, Any]] = []
        if pairs:
            left = self.store.get_segments([q.segment_ids[0] for q in pairs], frames=False)
            right = self.store.get_segments([q.segment_ids[1] for q in pairs], frames=False)
            answers += list(zip([q.id for q in pairs], self.oracle.judge(left, right), strict=True))
        for query in (q for q in pending if len(q.segment_ids) > 2):
            order = self.oracle.rank(self.store.get_segments(list(query.segment_ids), frames=False))  # type: ignore[attr-defined]
            if order is not None:
                answers.append((query.id, [query.segment_ids[i] for i in order]))
        self.store.add_judgments(answers, self.oracle.name)

    def _fit_reward_model(self) -> dict[str, float]:
        """Fit the reward model on every judgment; normalise it on the SFT samples."""
        ids, pairs, targets, rankings = training_data(self.store)
        segments = self.store.get_segments(ids, frames=False)
        if self.reward_model is None:
            self.reward_model = text_reward_model(
                self.reference,
                self.codec,
                self.env.prompt_space,
                self.env.action_space,
                self.config.reward,
                generator=self.generator,
            )
        report = self.learner.fit(
            self.reward_model, segments, pairs, targets, rankings, rng=self.rng
        )
        reference = self.store.get_segments(self.store.segment_ids(round=0), frames=False)
        self.reward_model.normalise(reference)
        save_text_reward_model(self.reward_model, self.reference, self.run_dir.reward_model)
        return {
            "rm_val_accuracy": report.val_accuracy,
            "rm_return_correlation": report.return_correlation,
            "rm_train_loss": report.train_loss,
            "rm_val_loss": report.val_loss,
        }

    def _dpo_dataset(self) -> PreferenceDataset:
        """Every pairwise judgment (rankings as their C(K, 2) pairs) as chosen/rejected."""
        ids, pairs, targets, rankings = training_data(self.store)
        segments = self.store.get_segments(ids, frames=False)
        rows: list[tuple[Tensor, Tensor, Tensor, float]] = []

        def add(a: int, b: int, target: float) -> None:
            prompt = torch.as_tensor(segments[a].observations[0])
            prompt = prompt[prompt != self.codec.pad_id]
            rows.append(
                (
                    prompt,
                    torch.as_tensor(segments[a].actions[0]),
                    torch.as_tensor(segments[b].actions[0]),
                    target,
                )
            )

        for (a, b), target in zip(pairs.tolist(), targets.tolist(), strict=True):
            add(a, b, target)
        for ranking in rankings:
            for a, b in itertools.combinations(ranking, 2):
                add(a, b, 1.0)
        return dataset_from_judgments(rows, eos_id=self.codec.eos_id, pad_id=self.codec.pad_id)

    @property
    def _temperature(self) -> float:
        c = self.config
        return c.grpo.temperature if c.algo == "grpo" else c.ppo.temperature

    # ------------------------------------------------------------ training
    def _train_iteration(self, dataset: PreferenceDataset | None) -> dict[str, float]:
        c = self.config
        if isinstance(self.trainer, DPOTrainer):
            assert dataset is not None
            return {f"train_{k}": v for k, v in self.trainer.fit_epoch(dataset).items()}
        if isinstance(self.trainer, TokenPPO):
            n = c.ppo.batch_size
        else:
            n = c.grpo.prompts_per_step
        prompts = draw_prompts(self.env, n, self.rng)
        if isinstance(self.trainer, TokenPPO) and c.ppo.ptx_coef > 0:
            stats = self.trainer.step(prompts.ids, prompts.mask, *self._ptx_batch())
        else:
            stats = self.trainer.step(prompts.ids, prompts.mask)
        out = {f"train_{k}": v for k, v in stats.items()}
        if self._last_batch:
            on_policy = measure(self._last_batch)
            out.update(batch_true_score=on_policy["true_score"], batch_fluency=on_policy["fluency"])
        return out

    def _ptx_batch(self) -> tuple[Tensor, Tensor]:
        """Pretraining documents for PPO-ptx: the grammar's corpus, right-padded, ``(N, L)``."""
        from prefgym.text import corpus

        docs = [self.codec.encode(d) + [self.codec.eos_id] for d in corpus(self.rng, _PTX_DOCS)]
        width = max(len(d) for d in docs)
        ids = torch.full((len(docs), width), self.codec.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, doc in enumerate(docs):
            ids[i, : len(doc)], mask[i, : len(doc)] = torch.as_tensor(doc), 1
        return ids, mask

    def evaluate(self) -> dict[str, float]:
        """True score, reward-model score, KL to the SFT policy, fluency and length."""
        segments = sample_segments(
            self.policy,
            self.env,
            self.eval_prompts,
            generator=self.generator,
            temperature=self._temperature,
        )
        row = measure(segments, self.reward_model)
        row["kl"] = kl_to_reference(
            self.policy,
            self.reference,
            segments,
            eos_id=self.codec.eos_id,
            pad_id=self.codec.pad_id,
            temperature=self._temperature,
        )
        self._write_samples(segments[:_SAMPLES_SHOWN])
        return row

    def _write_samples(self, segments: list[Segment]) -> None:
        with (self.run_dir.path / SAMPLES_FILE).open("a") as f:
            for s in segments:
                record = {
                    "iteration": self.iteration,
                    "prompt": s.info["prompt"],
                    "response": s.info["response"],
                    "true_score": s.info["true_score"],
                    "fluent": s.info.get("fluent"),
                }
                f.write(json.dumps(record) + "\n")

    def _checkpoint(self) -> None:
        self.trainer.save(self._checkpoint_dir)
        self.store.set_meta("rng_state", self.rng.bit_generator.state)
        self.store.set_meta("iteration", self.iteration)

    def run(self) -> dict[str, float]:
        """Train to ``config.total_iterations``; returns the final evaluation with the win rate."""
        c = self.config
        counts, starts = queries_per_round(c), round_starts(c)
        truncate_metrics(self.run_dir.metrics, "iteration", self.iteration)  # redo after a crash
        metrics = MetricsLog(self.run_dir.metrics, self.run_dir.tensorboard)
        columns = metric_columns(c.algo)

        def write(row: dict[str, float]) -> None:
            metrics.write({k: float(row.get(k, math.nan)) for k in columns}, step=self.iteration)

        dataset: PreferenceDataset | None = None
        bar = tqdm(
            total=c.total_iterations,
            initial=self.iteration,
            desc=f"text {c.algo}",
            unit="it",
            disable=not self.progress,
        )
        rm_row: dict[str, float] = {}
        try:
            if self.iteration == 0 and not self.store.get_meta("evaluated", False):
                write({"iteration": 0, "labels_judged": 0, **self.evaluate()})
                self.store.set_meta("evaluated", True)
            while self.iteration < c.total_iterations:
                due = [r for r, s in enumerate(starts) if s <= self.iteration]
                done = int(self.store.get_meta("label_rounds_done", 0))
                for r in range(done, len(due)):
                    if c.needs_labels:
                        self._label(r, counts[r])
                        if c.algo == "dpo":
                            dataset = self.trainer.with_reference(self._dpo_dataset())  # type: ignore[union-attr]
                        else:
                            rm_row = self._fit_reward_model()
                    self.store.set_meta("label_rounds_done", r + 1)
                if c.algo == "dpo" and dataset is None:
                    dataset = self.trainer.with_reference(self._dpo_dataset())  # type: ignore[union-attr]
                stats = self._train_iteration(dataset)
                self.iteration += 1
                bar.update(1)
                row = {
                    "iteration": self.iteration,
                    "labels_judged": self.store.n_judgments(),
                    **rm_row,
                    **{k: v for k, v in stats.items() if isinstance(v, float)},
                }
                rm_row = {}
                if self.iteration % c.eval_every == 0 or self.iteration == c.total_iterations:
                    row.update(self.evaluate())
                    self._checkpoint()
                write(row)
        finally:
            bar.close()
            metrics.close()
        return self.final_evaluation()

    def final_evaluation(self) -> dict[str, float]:
        """The tuned policy against the SFT policy on the evaluation prompts."""
        policy = sample_segments(
            self.policy,
            self.env,
            self.eval_prompts,
            generator=self.generator,
            temperature=self._temperature,
        )
        sft = sample_segments(
            self.reference,
            self.env,
            self.eval_prompts,
            generator=self.generator,
            temperature=self._temperature,
        )
        result = measure(policy, self.reward_model)
        sft_row = measure(sft)
        result["sft_true_score"], result["sft_fluency"] = sft_row["true_score"], sft_row["fluency"]
        result["kl"] = kl_to_reference(
            self.policy,
            self.reference,
            policy,
            eos_id=self.codec.eos_id,
            pad_id=self.codec.pad_id,
            temperature=self._temperature,
        )
        result["win_rate"] = win_rate(self.judge, policy, sft)
        if isinstance(self.oracle, SyntheticOracle) or self.config.oracle == RLAIF:
            result["oracle_win_rate"] = win_rate(self.oracle, policy, sft)
        (self.run_dir.path / "final.json").write_text(json.dumps(result, indent=2))
        return result

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def text_task_name(env_id: str) -> str:
    """The task of a registered single-step text env id."""
    from prefgym.envs.registration import TEXT_ENVS

    for info in TEXT_ENVS:
        if info.id == env_id and info.entry_point.endswith(":TextEnv"):
            return str(info.kwargs["task"])
    ids = [i.id for i in TEXT_ENVS if i.entry_point.endswith(":TextEnv")]
    raise ValueError(f"text training needs a single-step text env, one of {ids}; got {env_id!r}")


def train_text(
    config: TextTrainConfig, out: str | Path, *, progress: bool = True
) -> dict[str, float]:
    """Run ``config`` in a new run directory ``out``; returns the final evaluation."""
    run = RunDir.create(out, {"text": config.to_json()})
    text_run = TextRun(run, config, progress=progress)
    try:
        return text_run.run()
    finally:
        text_run.close()


def resume_text(out: str | Path, *, progress: bool = True) -> dict[str, float]:
    """Carry on the text run in ``out`` from its last checkpoint."""
    run = RunDir.open(out)
    config = TextTrainConfig.from_json(run.read_config()["text"])
    text_run = TextRun(run, config, progress=progress)
    try:
        return text_run.run()
    finally:
        text_run.close()
