"""Token-level PPO, GRPO and DPO throughput: prefgym's trainers against TRL's.

On one fixed workload (a tiny GPT-2 built from a config, one batch shape, one response
length, fp32, one torch thread) this measures, per trainer,

* generated tokens per second: response tokens sampled in the timed steps divided by their
  wall time (DPO samples nothing: its tokens are the chosen plus rejected response tokens
  trained on, ``2 * batch * response_length`` per step, on both sides);
* optimizer steps per second: ``optimizer.step`` calls (counted by a global ``torch.optim``
  hook on both sides) divided by the same wall time;

for prefgym's ``TokenPPO``, ``GRPOTrainer`` and ``DPOTrainer`` (in this process) and for
TRL 1.12.0's ``trl.experimental.ppo.PPOTrainer`` (the last release with PPO) and TRL
1.16.0's ``GRPOTrainer`` and ``DPOTrainer``, each in a virtual environment this script
creates on first use (``benchmarks/.venv-trl-1.12``, ``benchmarks/.venv-trl-1.16``;
``--rebuild-venvs`` makes them again). TRL runs in ``benchmarks/trl_peer.py``, a process
kept alive per venv so that our repeats and TRL's alternate (load from elsewhere on the
machine then falls on both alike). Each repeat builds a fresh trainer, runs
``warmup_steps`` untimed steps, then the timed ones; the tables show medians over repeats.
The targets are judged on wall time; the table also gives the ratio of optimizer steps per
second of process CPU time, which other load on a shared machine disturbs less.

Equal work on both sides:

* the same saved weights (``from_pretrained`` of local directories written here; no hub),
  the same prompt and preference-pair token ids, word-level tokenizers made in code;
* every response is exactly ``response_length`` tokens: for PPO and GRPO the eos id lies
  outside the model's vocabulary (it is never sampled) and TRL's PPO has no stop token;
* PPO: ``batch`` prompts per update, ``epochs x batch / minibatch`` optimizer steps, a
  separate value model of the policy's size, a fixed KL coefficient, and a reward *model*
  (TRL's PPO accepts nothing else): a GPT-2 sequence classifier of the policy's size,
  scored at the last token, on both sides;
* GRPO: ``prompts x group`` completions per step, one optimizer step per generation
  (``num_iterations=1``, TRL's ``loss_type="grpo"``), a KL term to a reference copy, and a
  cheap synthetic reward (the fraction of even token ids) on both sides;
* DPO: ``batch`` pairs per step, sigmoid loss, the reference's log-probs computed at each
  step on both sides (TRL's ``precompute_ref_log_probs=False``).

TRL defaults that would make the comparison unequal are overridden (``bf16=False``, no
gradient checkpointing, dropout off, no logging, evaluation, saving or progress
bar); see ``benchmarks/trl_peer.py``. Targets (issue "Token-level PPO, DPO and GRPO,
measured against TRL"): ours / TRL >= 1.5 for PPO, >= 1.2 for GRPO and DPO, on both rates.

It prints a table and writes ``results.csv`` (one row per side and repeat),
``summary.csv`` and ``throughput.png`` to ``--out``::

    python benchmarks/token_ppo_vs_trl.py
    python benchmarks/token_ppo_vs_trl.py --quick --only grpo,dpo
    python benchmarks/token_ppo_vs_trl.py --no-peer      # ours only, no venvs
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_SCRIPT = HERE / "trl_peer.py"
RESULT_PREFIX = "RESULT "
TRAINERS = ("ppo", "grpo", "dpo")
TRL_VERSION = {"ppo": "1.12.0", "grpo": "1.16.0", "dpo": "1.16.0"}
"""TRL 1.12.0 is the last release with ``PPOTrainer`` (in ``trl.experimental.ppo``)."""
TARGET = {"ppo": 1.5, "grpo": 1.2, "dpo": 1.2}
PEER_TIMEOUT_S = 900.0
"""Longest wait for one TRL repeat (or for the peer to start) before giving up."""


@dataclass(frozen=True)
class Workload:
    """The settings both sides run with; passed to TRL's side as JSON."""

    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    vocab_size: int = 512
    """Model vocabulary; the tokenizers' eos and pad ids for PPO and GRPO lie just past it."""
    n_positions: int = 64
    seed: int = 0
    prompt_length: int = 16
    """Tokens per prompt (no padding: every prompt has this length)."""
    response_length: int = 32
    """Tokens generated per response (every response runs to this length)."""
    lr: float = 1e-5
    max_grad_norm: float = 1.0
    ppo_batch_size: int = 64
    """Prompts (responses) per PPO update."""
    ppo_minibatch_size: int = 16
    ppo_epochs: int = 4
    ppo_kl_coef: float = 0.05
    grpo_prompts: int = 8
    """Prompts per GRPO step; each answered ``grpo_group_size`` times."""
    grpo_group_size: int = 8
    grpo_kl_coef: float = 0.04
    dpo_batch_size: int = 32
    """Preference pairs per DPO step."""
    dpo_beta: float = 0.1
    n_prompts: int = 128
    n_pairs: int = 128
    warmup_steps: int = 1
    """Untimed steps at the start of every repeat."""
    ppo_timed_steps: int = 4
    grpo_timed_steps: int = 8
    dpo_timed_steps: int = 16

    def __post_init__(self) -> None:
        if self.prompt_length + self.response_length > self.n_positions:
            raise ValueError(
                f"prompt_length + response_length must be <= n_positions {self.n_positions}, "
                f"got {self.prompt_length} + {self.response_length}"
            )
        if self.ppo_batch_size % self.ppo_minibatch_size:
            raise ValueError(
                f"ppo_minibatch_size must divide ppo_batch_size {self.ppo_batch_size}, "
                f"got {self.ppo_minibatch_size}"
            )
        if self.warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {self.warmup_steps}")

    def timed_steps(self, trainer: str) -> int:
        return int(getattr(self, f"{trainer}_timed_steps"))

    def optimizer_steps_per_step(self, trainer: str) -> int:
        """Optimizer steps each side should take per timed step."""
        if trainer == "ppo":
            return self.ppo_epochs * self.ppo_batch_size // self.ppo_minibatch_size
        return 1

    def tokens_per_step(self, trainer: str) -> int:
        """Tokens each side should count per timed step."""
        if trainer == "ppo":
            return self.ppo_batch_size * self.response_length
        if trainer == "grpo":
            return self.grpo_prompts * self.grpo_group_size * self.response_length
        return 2 * self.dpo_batch_size * self.response_length


QUICK = {"ppo_timed_steps": 1, "grpo_timed_steps": 2, "dpo_timed_steps": 4}


# --- shared artefacts: models, tokenizers, data ------------------------------------------


def word_tokenizer(n_words: int) -> Any:
    """A word-level tokenizer: ``w0`` .. ``w{n-1}``, then ``<eos>``, ``<pad>``, ``<unk>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(n_words)}
    vocab.update({"<eos>": n_words, "<pad>": n_words + 1, "<unk>": n_words + 2})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.padding_side = "left"
    return tokenizer


def model_configs(w: Workload) -> tuple[Any, Any]:
    """GPT-2 configs of the policy and of the reward model (same trunk, one output)."""
    from transformers import GPT2Config

    shape: dict[str, Any] = {
        "vocab_size": w.vocab_size,
        "n_positions": w.n_positions,
        "n_embd": w.n_embd,
        "n_layer": w.n_layer,
        "n_head": w.n_head,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": None,
        "eos_token_id": None,
    }
    reward = GPT2Config(**shape)
    reward.num_labels = 1  # one score (sets id2label to one entry)
    return GPT2Config(**shape), reward


def build_artefacts(w: Workload, directory: Path) -> dict[str, Any]:
    """Save the initial policy, reward model, tokenizers and data both sides load.

    Returns:
        ``{"artefacts": {name: path}, "data": {"prompts": [[id]], "dpo": [{...}]}}``.
    """
    import torch
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    paths = {
        name: directory / name for name in ("policy", "reward", "tokenizer_rl", "tokenizer_dpo")
    }
    policy_config, reward_config = model_configs(w)
    with torch.random.fork_rng():
        torch.manual_seed(w.seed)  # transformers initialises weights from the global generator
        GPT2LMHeadModel(policy_config).save_pretrained(paths["policy"])
        GPT2ForSequenceClassification(reward_config).save_pretrained(paths["reward"])
    # PPO and GRPO: every vocabulary id is a word; eos and pad are never sampled.
    word_tokenizer(w.vocab_size).save_pretrained(paths["tokenizer_rl"])
    # DPO: responses end with an eos the model can read, so the specials sit inside the vocab.
    word_tokenizer(w.vocab_size - 3).save_pretrained(paths["tokenizer_dpo"])
    rng = np.random.default_rng(w.seed)
    prompts = rng.integers(0, w.vocab_size, size=(w.n_prompts, w.prompt_length))
    dpo_words, dpo_eos = w.vocab_size - 3, w.vocab_size - 3
    dpo_prompts = rng.integers(0, dpo_words, size=(w.n_pairs, w.prompt_length))
    responses = rng.integers(0, dpo_words, size=(2, w.n_pairs, w.response_length))
    responses[:, :, -1] = dpo_eos
    data = {
        "prompts": prompts.tolist(),
        "dpo": [
            {"prompt": p.tolist(), "chosen": c.tolist(), "rejected": r.tolist()}
            for p, c, r in zip(dpo_prompts, responses[0], responses[1], strict=True)
        ],
    }
    (directory / "data.json").write_text(json.dumps(data))
    return {"artefacts": {k: str(v) for k, v in paths.items()}, "data": data}


# --- our side ----------------------------------------------------------------------------


class SequenceClassifierReward:
    """``reward_fn`` scoring prompt + response with a GPT-2 classifier at the last token.

    The same computation as TRL's ``get_reward`` on unpadded sequences (trunk forward, then
    the ``score`` head), so both PPOs pay for the same reward model.
    """

    def __init__(self, model: Any) -> None:
        self.model = model.eval().requires_grad_(False)

    def __call__(self, prompt_ids: Any, prompt_mask: Any, response_ids: Any) -> Any:
        import torch

        ids = torch.cat([prompt_ids, response_ids], dim=1)
        mask = torch.cat([prompt_mask, torch.ones_like(response_ids)], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self.model.transformer(
            input_ids=ids, attention_mask=mask, position_ids=positions
        ).last_hidden_state
        return self.model.score(hidden[:, -1]).squeeze(-1)


def even_fraction(prompt_ids: Any, prompt_mask: Any, response_ids: Any) -> Any:
    """The synthetic GRPO score: the fraction of a response's tokens with an even id."""
    return (response_ids % 2 == 0).float().mean(1)


@contextlib.contextmanager
def counting_optimizer_steps() -> Iterator[list[int]]:
    """Count every ``torch.optim`` optimizer step taken inside the block."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    count = [0]

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        count[0] += 1

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def run_ours(trainer: str, w: Workload, shared: dict[str, Any], repeat: int) -> dict[str, Any]:
    """One repeat of prefgym's trainer: fresh trainer, warm-up, timed steps."""
    import torch
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    from prefgym.agents.text import (
        DPOConfig,
        DPOTrainer,
        GRPOConfig,
        GRPOTrainer,
        PreferenceDataset,
        TokenPPO,
        TokenPPOConfig,
    )
    from prefgym.lm import response_mask

    torch.set_num_threads(1)
    art = shared["artefacts"]
    generator = torch.Generator().manual_seed(w.seed + repeat)
    policy = GPT2LMHeadModel.from_pretrained(art["policy"], dtype=torch.float32)
    eos_id, pad_id = w.vocab_size, w.vocab_size + 1  # never sampled
    dpo_eos = w.vocab_size - 3  # the DPO tokenizer's eos, inside the vocabulary
    prompts = torch.tensor(shared["data"]["prompts"])
    steps = w.warmup_steps + w.timed_steps(trainer)
    batches: list[Any]
    model: Any
    if trainer == "ppo":
        reward = GPT2ForSequenceClassification.from_pretrained(art["reward"], dtype=torch.float32)
        config = TokenPPOConfig(
            batch_size=w.ppo_batch_size,
            minibatch_size=w.ppo_minibatch_size,
            ppo_epochs=w.ppo_epochs,
            lr=w.lr,
            max_new_tokens=w.response_length,
            kl="fixed",
            kl_coef=w.ppo_kl_coef,
            max_grad_norm=w.max_grad_norm,
            value_model="separate",
        )
        model = TokenPPO(
            policy,
            config,
            reward_fn=SequenceClassifierReward(reward),
            eos_id=eos_id,
            pad_id=pad_id,
            generator=generator,
        )
        batches = _prompt_batches(prompts, w.ppo_batch_size, steps)
    elif trainer == "grpo":
        model = GRPOTrainer(
            policy,
            GRPOConfig(
                group_size=w.grpo_group_size,
                prompts_per_step=w.grpo_prompts,
                max_new_tokens=w.response_length,
                lr=w.lr,
                kl_coef=w.grpo_kl_coef,
                num_iterations=1,
                loss_normalisation="sequence",
                max_grad_norm=w.max_grad_norm,
            ),
            reward_fn=even_fraction,
            eos_id=eos_id,
            pad_id=pad_id,
            generator=generator,
        )
        batches = _prompt_batches(prompts, w.grpo_prompts, steps)
    elif trainer == "dpo":
        pairs = shared["data"]["dpo"]
        model = DPOTrainer(
            policy,
            DPOConfig(
                beta=w.dpo_beta,
                lr=w.lr,
                batch_size=w.dpo_batch_size,
                max_grad_norm=w.max_grad_norm,
            ),
            eos_id=dpo_eos,
            pad_id=dpo_eos + 1,
            generator=generator,
        )
        rows = [pairs[i % len(pairs)] for i in range(w.dpo_batch_size * steps)]
        dataset = PreferenceDataset(
            prompt_ids=torch.tensor([r["prompt"] for r in rows]),
            prompt_mask=torch.ones(len(rows), w.prompt_length, dtype=torch.long),
            chosen_ids=torch.tensor([r["chosen"] for r in rows]),
            rejected_ids=torch.tensor([r["rejected"] for r in rows]),
        )
        batches = [
            dataset.select(torch.arange(k * w.dpo_batch_size, (k + 1) * w.dpo_batch_size))
            for k in range(steps)
        ]
        dpo_tokens = float(  # chosen + rejected tokens of a batch (all batches alike)
            response_mask(batches[0].chosen_ids, dpo_eos).sum()
            + response_mask(batches[0].rejected_ids, dpo_eos).sum()
        )
    else:
        raise ValueError(f"trainer must be one of {TRAINERS}, got {trainer!r}")

    tokens = 0.0
    with counting_optimizer_steps() as optimizer_steps:
        for k, batch in enumerate(batches):
            if k == w.warmup_steps:
                start, cpu_start = time.perf_counter(), time.process_time()
                steps_before = optimizer_steps[0]
            if trainer == "dpo":
                model.step(batch)
                step_tokens = dpo_tokens
            else:
                step_tokens = model.step(*batch)["tokens_generated"]
            if k >= w.warmup_steps:
                tokens += step_tokens
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        taken = optimizer_steps[0] - steps_before
    return {
        "steps": len(batches) - w.warmup_steps,
        "wall_s": wall,
        "cpu_s": cpu,
        "tokens": tokens,
        "optimizer_steps": taken,
        "threads": torch.get_num_threads(),
    }


def _prompt_batches(prompts: Any, size: int, steps: int) -> list[tuple[Any, Any]]:
    """``steps`` consecutive ``(ids, mask)`` batches of ``size`` prompts, cycling."""
    import torch

    index = torch.arange(size * steps) % prompts.shape[0]
    ids = prompts[index].view(steps, size, -1)
    return [(batch, torch.ones_like(batch)) for batch in ids]


# --- TRL's side --------------------------------------------------------------------------


def venv_path(trl_version: str) -> Path:
    return HERE / f".venv-trl-{'.'.join(trl_version.split('.')[:2])}"


def ensure_trl_venv(trl_version: str, log: Path, *, rebuild: bool = False) -> Path:
    """The python of a venv with ``trl==trl_version``, creating the venv if needed.

    torch 2.13.0 (the CPU build on this machine's index) goes in first, then TRL with torch
    pinned in the same command, so that pip resolves TRL's transformers, accelerate and
    datasets around it and never swaps torch for another build.
    """
    venv = venv_path(trl_version)
    python = venv / "bin" / "python"
    marker = list(venv.glob(f"lib/python*/site-packages/trl-{trl_version}.dist-info"))
    if python.exists() and marker and not rebuild:
        _ignore_in_git(venv)
        return python
    if venv.exists():
        shutil.rmtree(venv)
    print(f"creating {venv} (trl {trl_version}); log in {log}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        run = {"check": True, "stdout": out, "stderr": out}
        subprocess.run([sys.executable, "-m", "venv", str(venv)], **run)  # type: ignore[call-overload]
        for packages in (("torch==2.13.0",), (f"trl=={trl_version}", "torch==2.13.0")):
            subprocess.run([str(python), "-m", "pip", "install", *packages], **run)  # type: ignore[call-overload]
    _ignore_in_git(venv)
    return python


def _ignore_in_git(venv: Path) -> None:
    """Keep git from listing the venv (as ``python -m venv`` does from Python 3.13 on)."""
    ignore = venv / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by benchmarks/token_ppo_vs_trl.py\n*\n")


class TRLPeer:
    """A ``trl_peer.py`` process in one TRL venv, answering one repeat per request."""

    def __init__(self, python: Path, spec_path: Path, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.process = subprocess.Popen(
            [str(python), str(PEER_SCRIPT), str(spec_path)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.info = self._answer()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(RESULT_PREFIX):
                self._answers.put(line[len(RESULT_PREFIX) :])
            else:
                self._log.write(line)
        self._answers.put(None)

    def _answer(self) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=PEER_TIMEOUT_S)
        except queue.Empty:
            return {"error": f"no answer within {PEER_TIMEOUT_S:.0f} s (log: {self.log_path})"}
        if line is None:
            self._log.flush()
            tail = self.log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"TRL process ended: {tail[0]} (log: {self.log_path})"}
        return dict(json.loads(line))

    def run(self, trainer: str) -> dict[str, Any]:
        if "error" in self.info:
            return self.info
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(trainer + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the reader reports the end of the process
        return self._answer()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


# --- results -----------------------------------------------------------------------------

COLUMNS = [
    "trainer",
    "side",
    "library",
    "repeat",
    "steps",
    "wall_s",
    "cpu_s",
    "tokens",
    "optimizer_steps",
    "tokens_per_s",
    "steps_per_s",
    "steps_per_cpu_s",
    "threads",
    "error",
]
SUMMARY_COLUMNS = [
    "trainer",
    "repeats",
    "ours_tokens_per_s",
    "trl_tokens_per_s",
    "tokens_ratio",
    "ours_steps_per_s",
    "trl_steps_per_s",
    "steps_ratio",
    "ours_steps_per_cpu_s",
    "trl_steps_per_cpu_s",
    "cpu_ratio",
    "target",
    "trl",
    "trl_error",
]


def result_row(trainer: str, side: str, library: str, repeat: int, r: dict[str, Any]) -> dict:
    row: dict[str, Any] = {"trainer": trainer, "side": side, "library": library, "repeat": repeat}
    if "error" in r:
        return row | {k: math.nan for k in COLUMNS[4:-1]} | {"error": r["error"]}
    wall = float(r["wall_s"])
    return row | {
        "steps": r["steps"],
        "wall_s": wall,
        "cpu_s": r["cpu_s"],
        "tokens": r["tokens"],
        "optimizer_steps": r["optimizer_steps"],
        "tokens_per_s": r["tokens"] / wall,
        "steps_per_s": r["optimizer_steps"] / wall,
        "steps_per_cpu_s": r["optimizer_steps"] / r["cpu_s"],
        "threads": r["threads"],
        "error": "",
    }


def check_equal_work(rows: list[dict[str, Any]], w: Workload) -> list[str]:
    """Warnings where a side did not take the steps or count the tokens it should have."""
    problems = []
    for row in rows:
        if row["error"]:
            continue
        trainer, steps = row["trainer"], row["steps"]
        expected = {
            "tokens": steps * w.tokens_per_step(trainer),
            "optimizer_steps": steps * w.optimizer_steps_per_step(trainer),
            "threads": 1,
        }
        for key, value in expected.items():
            if row[key] != value:
                problems.append(
                    f"{trainer}/{row['side']} repeat {row['repeat']}: {key} {row[key]}, expected "
                    f"{value}"
                )
    return problems


def median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def summarise(rows: list[dict[str, Any]], trainers: Sequence[str]) -> list[dict[str, Any]]:
    summary = []
    for trainer in trainers:
        ours = [r for r in rows if r["trainer"] == trainer and r["side"] == "prefgym"]
        trl = [r for r in rows if r["trainer"] == trainer and r["side"] == "trl"]
        entry: dict[str, Any] = {
            "trainer": trainer,
            "repeats": len(ours),
            "target": TARGET[trainer],
        }
        for key, ratio in (
            ("tokens_per_s", "tokens_ratio"),
            ("steps_per_s", "steps_ratio"),
            ("steps_per_cpu_s", "cpu_ratio"),
        ):
            mine = median([r[key] for r in ours])
            theirs = median([r[key] for r in trl])
            entry[f"ours_{key}"], entry[f"trl_{key}"] = mine, theirs
            entry[ratio] = mine / theirs if theirs > 0 else math.nan
        entry["trl"] = trl[0]["library"] if trl else ""
        entry["trl_error"] = "; ".join(sorted({r["error"] for r in trl if r["error"]}))
        summary.append(entry)
    return summary


def check_targets(summary: list[dict[str, Any]]) -> list[str]:
    lines = []
    for e in summary:
        for key, what in (("tokens_ratio", "tokens/s"), ("steps_ratio", "optimizer steps/s")):
            if math.isnan(e[key]):
                continue
            verdict = "PASS" if e[key] >= e["target"] else "FAIL"
            lines.append(
                f"{verdict}  {e['trainer']}: {what} ours / TRL {e[key]:.2f} >= {e['target']:g}"
            )
    return lines


def table(summary: list[dict[str, Any]]) -> str:
    from prefgym.runs import format_table

    header = [
        "trainer",
        "repeats",
        "ours tok/s",
        "TRL tok/s",
        "ratio",
        "ours steps/s",
        "TRL steps/s",
        "ratio",
        "CPU-time ratio",
        "target",
        "TRL",
    ]
    keys = [
        "trainer",
        "repeats",
        "ours_tokens_per_s",
        "trl_tokens_per_s",
        "tokens_ratio",
        "ours_steps_per_s",
        "trl_steps_per_s",
        "steps_ratio",
        "cpu_ratio",
        "target",
        "trl",
    ]
    return format_table(header, [[e[k] for k in keys] for e in summary])


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def plot(summary: list[dict[str, Any]], w: Workload, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(summary))
    width = 0.38
    figure, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    panels = [("tokens_per_s", "tokens / s"), ("steps_per_s", "optimizer steps / s")]
    for axis, (key, title) in zip(axes, panels, strict=True):
        ours = [e[f"ours_{key}"] for e in summary]
        trl = [e[f"trl_{key}"] for e in summary]
        axis.bar(x - width / 2, ours, width, label="prefgym")
        axis.bar(x + width / 2, trl, width, label="TRL")
        ratio_key = key.replace("_per_s", "_ratio")
        for i, e in enumerate(summary):
            if not math.isnan(e[ratio_key]):
                top = np.nanmax([ours[i], trl[i]])
                axis.annotate(
                    f"{e[ratio_key]:.2f}x", (x[i], top), ha="center", va="bottom", fontsize=8
                )
        axis.set_xticks(
            x, [f"{e['trainer'].upper()}\n({e['trl'] or 'no TRL run'})" for e in summary]
        )
        axis.set_ylabel(title)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.15)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"GPT-2 {w.n_layer}x{w.n_embd}, vocab {w.vocab_size}, prompt {w.prompt_length}, "
        f"response {w.response_length}, fp32, 1 thread (medians; DPO: tokens trained)",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def quiet_transformers() -> None:
    """No progress bars or advisory warnings from transformers (loading, saving)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


# --- the run -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(TRAINERS),
        help="comma-separated trainers to run, from ppo,grpo,dpo (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer timed steps")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 5, quick 1)")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run TRL in its venvs (--no-peer: ours only)",
    )
    parser.add_argument(
        "--rebuild-venvs", action="store_true", help="delete and recreate the TRL venvs"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "token_ppo_vs_trl")
    args = parser.parse_args(argv)
    args.trainers = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in args.trainers if t not in TRAINERS]
    if unknown or not args.trainers:
        parser.error(f"--only takes names from {','.join(TRAINERS)}, got {args.only!r}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def run(
    trainers: Sequence[str],
    w: Workload,
    out: Path,
    *,
    repeats: int,
    peer: bool,
    rebuild_venvs: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run both sides, repeats interleaved; returns per-repeat rows and the summary."""
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shared = build_artefacts(w, work / "artefacts")
    spec_path = work / "spec.json"
    spec_path.write_text(
        json.dumps({"workload": dataclasses.asdict(w), "work_dir": str(work), **shared})
    )
    peers: dict[str, TRLPeer | dict[str, Any]] = {}
    if peer:
        for version in sorted({TRL_VERSION[t] for t in trainers}):
            try:
                python = ensure_trl_venv(
                    version, out / f"venv-trl-{version}.log", rebuild=rebuild_venvs
                )
            except (subprocess.CalledProcessError, OSError) as error:
                peers[version] = {"error": f"could not create {venv_path(version)}: {error}"}
                continue
            peers[version] = TRLPeer(python, spec_path, work / f"trl-{version}.log")
    rows: list[dict[str, Any]] = []
    try:
        for trainer in trainers:
            for repeat in range(repeats):
                ours = run_ours(trainer, w, shared, repeat)
                rows.append(result_row(trainer, "prefgym", "prefgym", repeat, ours))
                print(_progress(rows[-1]), flush=True)
                if peer:
                    version = TRL_VERSION[trainer]
                    side = peers[version]
                    theirs = side.run(trainer) if isinstance(side, TRLPeer) else side
                    rows.append(result_row(trainer, "trl", f"trl {version}", repeat, theirs))
                    print(_progress(rows[-1]), flush=True)
                write_csv(out / "results.csv", rows, COLUMNS)
    finally:
        for side in peers.values():
            if isinstance(side, TRLPeer):
                side.close()
    return rows, summarise(rows, trainers)


def _progress(row: dict[str, Any]) -> str:
    head = f"  {row['trainer']:>4} {row['library']:>10} repeat {row['repeat']}: "
    if row["error"]:
        return head + f"FAILED: {row['error']}"
    return head + (
        f"{row['tokens_per_s']:8.1f} tokens/s, {row['steps_per_s']:6.2f} optimizer steps/s "
        f"({row['steps']} steps, {row['wall_s']:.1f} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported
    from prefgym.runs import set_threads

    set_threads(1)
    quiet_transformers()
    w = Workload(**(QUICK if args.quick else {}))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, summary = run(
        args.trainers,
        w,
        args.out,
        repeats=args.repeats,
        peer=args.peer,
        rebuild_venvs=args.rebuild_venvs,
    )
    write_csv(args.out / "results.csv", rows, COLUMNS)
    write_csv(args.out / "summary.csv", summary, SUMMARY_COLUMNS)
    plot(summary, w, args.out / "throughput.png")
    print(f"\nmedians over {args.repeats} repeat(s) ({time.perf_counter() - started:.0f} s):")
    print(table(summary))
    problems = check_equal_work(rows, w)
    if problems:
        print("\nunequal work:\n" + "\n".join(problems))
    if args.peer:
        print("\ntargets:\n" + "\n".join(check_targets(summary) or ["(no TRL result)"]))
    errors = sorted({r["error"] for r in rows if r["error"]})
    if errors:
        print("\nerrors:\n" + "\n".join(errors))
    print(f"\nwrote {args.out / 'results.csv'}, summary.csv, throughput.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
