"""TRL's PPO, GRPO and DPO trainers on the workload of ``benchmarks/token_ppo_vs_trl.py``.

This script runs inside one of the virtual environments that the benchmark creates
(``benchmarks/.venv-trl-1.12`` for PPO, the last TRL release with ``PPOTrainer``, kept in
``trl.experimental.ppo``; ``benchmarks/.venv-trl-1.16`` for GRPO and DPO), never in
prefgym's own environment, and imports nothing from prefgym. It is a small server::

    python benchmarks/trl_peer.py SPEC.json

reads one trainer name (``ppo``, ``grpo`` or ``dpo``) per line on stdin, runs one repeat
of that trainer (a fresh trainer built from the saved models, ``warmup_steps`` untimed
updates, then ``timed_steps`` timed ones) and answers one line ``RESULT {json}`` on
stdout; a blank line or end of input ends it. Staying alive between repeats lets the
benchmark interleave our repeats with TRL's, so that load from elsewhere on the machine
falls on both alike, and pays TRL's import once.

Everything the two sides share comes from the spec: the saved policy and reward model
(``from_pretrained`` of local directories, no hub), the word-level tokenizers, the prompt
and preference-pair token ids, and the settings. TRL's defaults that differ from an equal
comparison are overridden and listed here: ``bf16=False`` (TRL defaults to bf16) and
``activation_checkpointing=False`` (transformers 5's name for gradient checkpointing, which
TRL defaults to True), ``report_to="none"``, no saving,
logging or evaluation, no progress bar, dropout off (``disable_dropout=True``; the
models' dropout rates are 0 anyway), one torch thread.

Measurement: a ``TrainerCallback`` stamps ``time.perf_counter()`` at every
``on_step_end`` (one PPO update, one GRPO generation-and-update, one DPO step); the timed
window runs from the end of the last warm-up step to the end of the last step (the
process's CPU time over the window is reported too). Optimizer steps are counted by a
global ``torch.optim`` step post-hook (steps that Accelerate skips during gradient
accumulation are not counted). Generated tokens: the response tokens ``generate``
returned (PPO; no stop token, so every response is full length) or the completion tokens
handed to the reward function (GRPO; the eos id lies outside the model's vocabulary, so no
completion ends early). DPO generates nothing: its token count is the chosen plus rejected
response tokens of each step's loss (the ``completion_mask``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

RESULT_PREFIX = "RESULT "


class Counters:
    """Tokens generated and optimizer steps taken, updated by hooks."""

    def __init__(self) -> None:
        self.tokens = 0
        self.optimizer_steps = 0


COUNTERS = Counters()


def _count_optimizer_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    COUNTERS.optimizer_steps += 1


def load_models(spec: dict[str, Any]) -> tuple[Any, Any]:
    """The policy and reward model saved by the benchmark, in fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    art = spec["artefacts"]
    policy = AutoModelForCausalLM.from_pretrained(art["policy"], dtype=torch.float32)
    reward = AutoModelForSequenceClassification.from_pretrained(art["reward"], dtype=torch.float32)
    return policy, reward


def clock_callback() -> Any:
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Time, tokens and optimizer steps at the end of every training step."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, float, int, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = (time.perf_counter(), time.process_time())
            self.marks.append((*now, COUNTERS.tokens, COUNTERS.optimizer_steps))

    return StepClock()


def common_args(spec: dict[str, Any], work: Path, steps: int) -> dict[str, Any]:
    """TrainingArguments shared by the three trainers: fp32, no overhead, one process."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    # transformers 5.x renamed gradient checkpointing; TRL's configs default it to True.
    checkpointing = (
        {"activation_checkpointing": False} if "activation_checkpointing" in names else {}
    )
    return checkpointing | {
        "output_dir": str(work),
        "seed": int(spec["workload"]["seed"]),
        "learning_rate": float(spec["workload"]["lr"]),
        "max_grad_norm": float(spec["workload"]["max_grad_norm"]),
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "gradient_accumulation_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "max_steps": steps,
    }


def drop_printing(trainer: Any) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def run_ppo(spec: dict[str, Any], work: Path, clock: Any) -> None:
    import trl.experimental.ppo.ppo_trainer as ppo_module
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    w = spec["workload"]
    steps = w["warmup_steps"] + w["ppo_timed_steps"]
    batch = w["ppo_batch_size"]
    if not hasattr(ppo_module, "_uncounted_batch_generation"):  # patch once per process
        generate = ppo_module._uncounted_batch_generation = ppo_module.batch_generation

        def counted_generation(model: Any, queries: Any, *args: Any, **kwargs: Any) -> Any:
            query_responses, logits = generate(model, queries, *args, **kwargs)
            COUNTERS.tokens += int(
                query_responses.shape[0] * (query_responses.shape[1] - queries.shape[1])
            )
            return query_responses, logits

        ppo_module.batch_generation = counted_generation
    tokenizer = AutoTokenizer.from_pretrained(spec["artefacts"]["tokenizer_rl"])
    policy, reward = load_models(spec)
    ref_policy, _ = load_models(spec)
    value = AutoModelForSequenceClassification.from_pretrained(spec["artefacts"]["reward"])
    prompts = spec["data"]["prompts"]
    dataset = Dataset.from_dict(
        {"input_ids": [prompts[i % len(prompts)] for i in range(batch * steps)]}
    )
    args = PPOConfig(
        **common_args(spec, work, steps),
        per_device_train_batch_size=batch,
        num_mini_batches=batch // w["ppo_minibatch_size"],
        num_ppo_epochs=w["ppo_epochs"],
        total_episodes=batch * steps,
        local_rollout_forward_batch_size=batch,
        response_length=w["response_length"],
        stop_token=None,
        temperature=1.0,
        kl_coef=w["ppo_kl_coef"],
        missing_eos_penalty=None,
        num_sample_generations=0,
    )
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref_policy,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        callbacks=[clock],
    )
    drop_printing(trainer)
    trainer.train()


def run_grpo(spec: dict[str, Any], work: Path, clock: Any) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    w = spec["workload"]
    steps = w["warmup_steps"] + w["grpo_timed_steps"]
    group = w["grpo_group_size"]
    tokenizer = AutoTokenizer.from_pretrained(spec["artefacts"]["tokenizer_rl"])
    prompts = spec["data"]["prompts"]
    texts = [" ".join(f"w{t}" for t in row) for row in prompts]
    dataset = Dataset.from_dict({"prompt": texts})

    def even_fraction(completion_ids: list[list[int]], **kwargs: Any) -> list[float]:
        """The synthetic score: the fraction of a completion's tokens with an even id."""
        COUNTERS.tokens += sum(len(ids) for ids in completion_ids)
        return [sum(1 for t in ids if t % 2 == 0) / max(len(ids), 1) for ids in completion_ids]

    args = GRPOConfig(
        **common_args(spec, work, steps),
        per_device_train_batch_size=w["grpo_prompts"] * group,
        num_generations=group,
        max_completion_length=w["response_length"],
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=w["grpo_kl_coef"],
        num_iterations=1,
        epsilon=0.2,
        loss_type="grpo",
        scale_rewards="group",
        disable_dropout=True,
        log_completions=False,
    )
    trainer = GRPOTrainer(
        model=spec["artefacts"]["policy"],
        reward_funcs=even_fraction,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    drop_printing(trainer)
    trainer.train()


def run_dpo(spec: dict[str, Any], work: Path, clock: Any) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    w = spec["workload"]
    steps = w["warmup_steps"] + w["dpo_timed_steps"]
    batch = w["dpo_batch_size"]
    tokenizer = AutoTokenizer.from_pretrained(spec["artefacts"]["tokenizer_dpo"])
    pairs = spec["data"]["dpo"]
    eos = tokenizer.eos_token

    def words(ids: list[int]) -> str:
        return " ".join(f"w{t}" for t in ids)

    # Responses end with the eos (text), as TRL would add it; the rest are word tokens.
    rows = [pairs[i % len(pairs)] for i in range(batch * steps)]
    dataset = Dataset.from_dict(
        {
            "prompt": [words(r["prompt"]) for r in rows],
            "chosen": [" " + words(r["chosen"][:-1]) + eos for r in rows],
            "rejected": [" " + words(r["rejected"][:-1]) + eos for r in rows],
        }
    )
    args = DPOConfig(
        **common_args(spec, work, steps),
        per_device_train_batch_size=batch,
        beta=w["dpo_beta"],
        loss_type=["sigmoid"],
        max_length=None,
        precompute_ref_log_probs=False,
        disable_dropout=True,
    )
    trainer = DPOTrainer(
        model=spec["artefacts"]["policy"],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    drop_printing(trainer)
    compute_loss = trainer.compute_loss

    def counted_loss(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        COUNTERS.tokens += int(inputs["completion_mask"].sum())  # chosen + rejected tokens
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = counted_loss
    first = trainer.train_dataset[0]  # TRL must read the text back as exactly the spec's ids
    if [first["prompt_ids"], first["chosen_ids"]] != [rows[0]["prompt"], rows[0]["chosen"]]:
        raise RuntimeError(
            f"TRL tokenised the DPO text differently from the spec's ids: prompt "
            f"{first['prompt_ids'][:4]}..., chosen {first['chosen_ids'][-4:]} instead of "
            f"{rows[0]['prompt'][:4]}..., {rows[0]['chosen'][-4:]}"
        )
    trainer.train()


RUNNERS = {"ppo": run_ppo, "grpo": run_grpo, "dpo": run_dpo}


def run_once(spec: dict[str, Any], trainer_name: str, repeat: int) -> dict[str, Any]:
    """One repeat: a fresh trainer, warm-up steps, timed steps."""
    import torch

    torch.set_num_threads(1)
    COUNTERS.tokens = COUNTERS.optimizer_steps = 0
    work = Path(spec["work_dir"]) / f"trl-{trainer_name}-{repeat}"
    clock = clock_callback()
    RUNNERS[trainer_name](spec, work, clock)
    warmup = spec["workload"]["warmup_steps"]
    marks = clock.marks
    if len(marks) <= warmup:
        raise RuntimeError(f"TRL ran {len(marks)} steps, expected more than {warmup} warm-up steps")
    (t0, cpu0, tokens0, opt0), (t1, cpu1, tokens1, opt1) = marks[warmup - 1], marks[-1]
    return {
        "steps": len(marks) - warmup,
        "wall_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "tokens": tokens1 - tokens0,
        "optimizer_steps": opt1 - opt0,
        "threads": torch.get_num_threads(),
    }


def versions() -> dict[str, str]:
    import accelerate
    import torch
    import transformers
    import trl

    return {
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "accelerate": accelerate.__version__,
    }


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} SPEC.json  (then trainer names on stdin)", file=sys.stderr)
        return 2
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from transformers.utils import logging

    torch.set_num_threads(1)
    register_optimizer_step_post_hook(_count_optimizer_step)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    spec = json.loads(Path(sys.argv[1]).read_text())
    info = versions()
    print(RESULT_PREFIX + json.dumps({"ready": True, **info}), flush=True)
    repeats: dict[str, int] = {}
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        repeat = repeats[name] = repeats.get(name, -1) + 1
        try:
            if name not in RUNNERS:
                raise ValueError(f"unknown trainer {name!r}; expected one of {sorted(RUNNERS)}")
            answer: dict[str, Any] = {"trainer": name, **run_once(spec, name, repeat), **info}
        except Exception as error:  # reported to the benchmark, which prints it
            traceback.print_exc(file=sys.stderr)
            answer = {"trainer": name, "error": f"{type(error).__name__}: {error}"}
        print(RESULT_PREFIX + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
