"""One text RLHF run, from the SFT policy to a tuned one, resumable at every evaluation.

See :mod:`prefgym.runs.config` for the stages. The run directory holds
the store (every response judged and every judgment), the reward model, the
trainer's checkpoint (policy, value model, optimizer, KL coefficient, random
state), ``metrics.csv`` and ``samples.jsonl``. The store's meta records the
iteration of the last checkpoint and the learner's state, and the store itself
the queries asked, so :meth:`TextRun.run` after a crash carries on from the
last checkpoint, refits, and asks no judgment twice.

One module, longer than most: what is specific to a text run (models, evaluation, samples,
win rate, checkpoints and the metrics row); the loop it runs is ``prefgym.loop``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from prefgym.agents.text import (
    DPOAgent,
    DPOTrainer,
    GRPOTrainer,
    ResponseGroups,
    TokenAgent,
    TokenPPO,
    draw_prompts,
    kl_to_reference,
    measure,
    sample_segments,
    win_rate,
)
from prefgym.envs.text_env import TextEnv
from prefgym.files import read_json_object, readable_directory, write_json
from prefgym.judges import Oracle, SyntheticOracle
from prefgym.lm import (
    HFCodec,
    LanguageModel,
    TextRewardEnsemble,
    load_language_model,
    load_text_reward_model,
    save_text_reward_model,
    text_reward_model,
)
from prefgym.lm.config import check_model_spec
from prefgym.loop import LabelRounds, PreferenceLoop, RewardFitting
from prefgym.reward import FitReport, Learner, LearnerConfig
from prefgym.runs._metrics import MetricsLog, read_metrics, truncate_metrics
from prefgym.runs._run_dir import POLICY_DIR, RunDir
from prefgym.runs._waiting import check_max_wait, wait_reporter
from prefgym.runs.config import (
    HUMAN,
    RLAIF,
    TextTrainConfig,
    queries_per_round,
    round_starts,
    text_task_name,
)
from prefgym.segments import Segment
from prefgym.store import Heartbeat, PreferenceStore

if TYPE_CHECKING:
    from transformers import PreTrainedModel

SAMPLES_FILE = "samples.jsonl"
FINAL_FILE = "final.json"
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


def make_oracle(spec: str, task_rubric: str, rng: np.random.Generator) -> Oracle | None:
    """The run's judge: a B-Pref teacher, ``rlaif`` (SmolLM2 by a rubric), or None (``human``).

    With None, people judge in the labeling window and the loop waits for them.
    """
    if spec == HUMAN:
        return None
    if spec == RLAIF:
        from prefgym.judges import AIFeedbackOracle
        from prefgym.lm import load_smollm2

        judge = load_smollm2()
        codec = judge.codec
        if not isinstance(codec, HFCodec):  # SmolLM2 comes with its Hugging Face tokenizer
            raise TypeError(f"the AI judge needs a Hugging Face tokenizer, got {type(codec)}")
        return AIFeedbackOracle(judge.model, codec.tokenizer, task_rubric, name=RLAIF)
    return SyntheticOracle.from_spec(spec, rng)


class TextRun:
    """Carries out a :class:`TextTrainConfig` in a run directory."""

    def __init__(
        self,
        run: RunDir,
        config: TextTrainConfig,
        *,
        progress: bool = True,
        on_round: Callable[[dict[str, float]], None] | None = None,
        max_wait: float | None = None,
    ) -> None:
        """Load the models and open the store; resumes whatever the directory holds.

        ``on_round`` is called with each metrics row once it is written (a sweep reports it).
        With ``oracle="human"`` each refit waits for people's answers, ``max_wait``
        seconds at most (None: as long as they take).
        """
        from prefgym.envs.text_env import text_task

        self.run_dir, self.config, self.progress = run, config, progress
        self.on_round, self.max_wait = on_round, check_max_wait(max_wait)
        task = text_task_name(config.env_id)
        self.lm: LanguageModel = load_language_model(config.model, task=task, progress=progress)
        self.policy: PreTrainedModel = self.lm.model
        self.reference = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.codec = self.lm.codec
        self.env = TextEnv(task, codec=self.codec, response_length=config.max_new_tokens)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        run.check_store()
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
        self._fit_row: dict[str, float] = {}
        self.trainer = self._trainer()
        self._restore()

    @property
    def _checkpoint_dir(self) -> Path:
        return self.run_dir.path / POLICY_DIR

    def _trainer(self) -> TokenPPO | DPOTrainer | GRPOTrainer:
        """The algorithm's trainer; PPO and GRPO are scored by the loop's agent."""
        c, eos, pad = self.config, self.codec.eos_id, self.codec.pad_id
        shared = dict(generator=self.generator, ref_policy=self.reference)
        if c.algo == "ppo":
            return TokenPPO(self.policy, c.ppo, eos_id=eos, pad_id=pad, **shared)
        if c.algo == "grpo":
            return GRPOTrainer(self.policy, c.grpo, eos_id=eos, pad_id=pad, **shared)
        return DPOTrainer(self.policy, c.dpo, eos_id=eos, pad_id=pad, **shared)

    def _restore(self) -> None:
        """Load the reward model and the trainer's checkpoint if the run has them."""
        directory = self.run_dir.reward_model
        if (readable_directory(directory) / "reward_model.json").is_file():
            self.reward_model = load_text_reward_model(directory, self.codec)
        if self._checkpoint_dir.is_dir() and any(self._checkpoint_dir.iterdir()):
            self.trainer.load(self._checkpoint_dir)
        state = self.store.get_meta("rng_state")
        if state is not None:
            self.rng.bit_generator.state = state

    @property
    def _temperature(self) -> float:
        c = self.config
        return c.grpo.temperature if c.algo == "grpo" else c.ppo.temperature

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
        read_metrics(self.run_dir.metrics)  # a damaged log is named before any work
        truncate_metrics(self.run_dir.metrics, "iteration", self.iteration)  # redo after a crash
        self._metrics = MetricsLog(self.run_dir.metrics, self.run_dir.tensorboard)
        bar = tqdm(
            total=c.total_iterations,
            initial=self.iteration,
            desc=f"text {c.algo}",
            unit="it",
            disable=not self.progress,
        )
        try:
            with Heartbeat(self.run_dir.store, self.store.clock) as heartbeat:  # for a window
                if self.iteration == 0 and not self.store.get_meta("evaluated", False):
                    self._write({"iteration": 0, "labels_judged": 0, **self.evaluate()})
                    self.store.set_meta("evaluated", True)
                loop = self._loop(bar.update, wait_reporter(bar, f"text {c.algo}"))
                loop.heartbeat = heartbeat.set
                loop.run()
                return self.final_evaluation()
        finally:
            bar.close()
            self._metrics.close()

    def _loop(
        self, progress: Callable[[int], None], on_wait: Callable[[int, float], None]
    ) -> PreferenceLoop:
        """The shared preference loop with the text game's source, plan and learner."""
        c = self.config
        counts = queries_per_round(c)  # one count: a run that asks nothing has one round
        plan = LabelRounds.merged(counts, round_starts(c)[: len(counts)], c.total_iterations)
        source = ResponseGroups(
            self.policy,
            self.env,
            self.store,
            self.rng,
            self.generator,
            k=c.responses_per_prompt,
            temperature=self._temperature,
            round_of=plan.round_of,
        )
        agent: TokenAgent | DPOAgent
        fitting = None
        if isinstance(self.trainer, DPOTrainer):
            agent = DPOAgent(
                self.trainer, self.codec, iteration=self.iteration, on_iteration=self._iterated
            )
        else:
            agent = TokenAgent(
                self.trainer,
                self.env,
                self.rng,
                iteration=self.iteration,
                on_iteration=self._iterated,
                oracle_reward=c.algo == "grpo" and c.grpo_reward == "oracle",
                ptx_docs=_PTX_DOCS if c.algo == "ppo" and c.ppo.ptx_coef > 0 else 0,
            )
            fitting = RewardFitting(
                self.learner, build=self._new_reward_model, model=self.reward_model
            )
        return PreferenceLoop(
            source=source,
            plan=plan,
            agent=agent,
            fitting=fitting,
            store=self.store,
            oracle=self.oracle,
            rng=self.rng,
            final_refit=False,  # the final evaluation scores with the model the policy trained on
            on_refit=self._refitted,
            on_wait=on_wait,
            max_wait=self.max_wait,
            progress=progress,
        )

    def _new_reward_model(self) -> TextRewardEnsemble:
        self.reward_model = text_reward_model(
            self.reference,
            self.codec,
            self.env.prompt_space,
            self.env.action_space,
            self.config.reward,
            generator=self.generator,
        )
        return self.reward_model

    def _refitted(self, report: FitReport) -> None:
        """Save the refitted reward model; its report goes into the next iteration's row."""
        assert self.reward_model is not None
        save_text_reward_model(self.reward_model, self.reference, self.run_dir.reward_model)
        self._fit_row = report.row()

    def _iterated(self, iteration: int, stats: dict[str, float]) -> None:
        """Log an update; evaluate and checkpoint every ``eval_every`` updates and at the end."""
        c = self.config
        self.iteration = iteration
        row = {
            "iteration": self.iteration,
            "labels_judged": self.store.n_judgments(),
            **self._fit_row,
            **{k: v for k, v in stats.items() if isinstance(v, float)},
        }
        self._fit_row = {}
        if self.iteration % c.eval_every == 0 or self.iteration == c.total_iterations:
            row.update(self.evaluate())
            self._checkpoint()
        self._write(row)

    def _write(self, row: dict[str, float]) -> None:
        columns = metric_columns(self.config.algo)
        values = {k: float(row.get(k, math.nan)) for k in columns}
        self._metrics.write(values, step=self.iteration)
        if self.on_round is not None:
            self.on_round(values)

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
        if self.oracle is not None:  # people are not asked to judge the evaluation
            result["oracle_win_rate"] = win_rate(self.oracle, policy, sft)
        write_json(self.run_dir.path / FINAL_FILE, result)
        self.run_dir.mark_finished(
            self.store, iterations=self.iteration, judgments=self.store.n_judgments()
        )
        return result

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def train_text(
    config: TextTrainConfig,
    out: str | Path,
    *,
    progress: bool = True,
    on_round: Callable[[dict[str, float]], None] | None = None,
    max_wait: float | None = None,
) -> dict[str, float]:
    """Run ``config`` in a new run directory ``out``; returns the final evaluation.

    ``max_wait``: seconds each refit waits for people's answers (``oracle="human"``).
    """
    check_model_spec(config.model)
    check_max_wait(max_wait)  # before the directory: a typo leaves no run behind
    run = RunDir.create(out, {"text": config.to_json()})
    with run.trainer_lock():
        text_run = TextRun(run, config, progress=progress, on_round=on_round, max_wait=max_wait)
        try:
            return text_run.run()
        finally:
            text_run.close()


def resume_text(
    out: str | Path,
    *,
    progress: bool = True,
    on_round: Callable[[dict[str, float]], None] | None = None,
    max_wait: float | None = None,
) -> dict[str, float]:
    """Carry on the text run in ``out`` from its last checkpoint.

    ``max_wait`` as for :func:`train_text`.
    """
    check_max_wait(max_wait)
    run = RunDir.open(out)
    config = run.text_config()
    with run.trainer_lock():
        if run.finished() is not None and (run.path / FINAL_FILE).is_file():
            result = read_json_object(run.path / FINAL_FILE, "the run's final result")
            return result
        text_run = TextRun(run, config, progress=progress, on_round=on_round, max_wait=max_wait)
        try:
            return text_run.run()
        finally:
            text_run.close()
