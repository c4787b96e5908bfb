"""``prefgym text``: build the language models and run RLHF on the text game.

``pretrain`` and ``sft`` build the cached base and SFT models (every other
command builds them on demand); ``train`` runs the whole pipeline (SFT ->
judgments -> reward model -> PPO, DPO or GRPO) in a run directory, and
``--resume`` carries a stopped run on. ``prefgym report RUN`` draws a text
run's table and plots (see :func:`text_report`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefgym.runs import format_table

_TRAIN_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("env", str, "single-step text env (default: prefgym/TextSentiment-v0)"),
    ("algo", str, "ppo, dpo or grpo (default: ppo)"),
    ("oracle", str, "a B-Pref preset/spec or 'rlaif' (SmolLM2 judges) (default: stoc)"),
    ("labels", int, "comparisons asked; a K-ranking counts C(K,2) (default: 2000)"),
    (
        "responses-per-prompt",
        int,
        "K responses judged together: 2 pairs, 3-9 rankings (default: 2)",
    ),
    ("label-rounds", int, "1: label SFT samples only; more: iterated RLHF (default: 4)"),
    ("iterations", int, "PPO/GRPO updates or DPO epochs (default: 100, DPO 4)"),
    ("model", str, "starting policy: sft, base, smollm2 or a local HF directory (default: sft)"),
    ("reward-backbone", str, "reward model trunk: sft or minilm (default: sft)"),
    ("reward-members", int, "reward-model ensemble members (default: 1)"),
    ("kl-coef", float, "KL penalty to the SFT policy; 0 turns it off (PPO default: 0.1)"),
    ("kl", str, "KL controller for PPO: fixed or adaptive (default: fixed)"),
    ("kl-target", float, "adaptive controller's target KL in nats (default: 6)"),
    ("batch-size", int, "PPO prompts per update (default: 64)"),
    ("ptx-coef", float, "PPO-ptx: weight of the pretraining LM loss mixed in (default: 0)"),
    ("missing-eos-penalty", float, "PPO: subtracted from the score of a response with no eos"),
    ("lr", float, "policy learning rate (PPO default: 5e-5)"),
    ("dpo-beta", float, "DPO's beta (default: 0.1)"),
    ("dpo-loss", str, "DPO loss: sigmoid or ipo (default: sigmoid)"),
    ("group-size", int, "GRPO samples per prompt (default: 8)"),
    ("grpo-reward", str, "GRPO maximises the reward 'model' or the 'oracle' true score"),
    ("eval-prompts", int, "prompts per evaluation (default: 128)"),
    ("eval-every", int, "iterations between evaluations and checkpoints (default: 10)"),
    ("seed", int, "seed of everything (default: 0)"),
)


def add_text_parser(commands: Any) -> None:
    """Add ``prefgym text`` and its subcommands to the main parser's ``commands``."""
    text = commands.add_parser("text", help="the text game: language models and RLHF")
    sub = text.add_subparsers(dest="text_command", required=True, metavar="TEXT_COMMAND")
    pretrain = sub.add_parser("pretrain", help="build (or show) the cached base language model")
    pretrain.add_argument("--refresh", action="store_true", help="rebuild even if cached")
    sft = sub.add_parser("sft", help="build (or show) the cached SFT model of a task")
    sft.add_argument("--task", default="sentiment", help="sentiment, arithmetic or harmless")
    sft.add_argument("--refresh", action="store_true", help="rebuild even if cached")
    for p in (pretrain, sft):
        p.add_argument("--samples", type=int, default=200, help="responses sampled to measure")
    train = sub.add_parser("train", help="RLHF on a text task: judgments -> reward -> policy")
    train.add_argument("--resume", metavar="RUN", help="carry on the run in RUN")
    train.add_argument("--out", metavar="DIR", help="run directory (default runs/text-<time>)")
    for flag, kind, help_text in _TRAIN_FLAGS:
        train.add_argument(f"--{flag}", dest=flag.replace("-", "_"), type=kind, help=help_text)
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def text_config(args: argparse.Namespace) -> Any:
    """The :class:`TextTrainConfig` of ``prefgym text train``'s options."""
    from prefgym.runs import TextTrainConfig

    base = TextTrainConfig()
    given = {f.replace("-", "_"): getattr(args, f.replace("-", "_")) for f, _, _ in _TRAIN_FLAGS}
    top = {
        "env_id": given["env"],
        "algo": given["algo"],
        "oracle": given["oracle"],
        "labels": given["labels"],
        "responses_per_prompt": given["responses_per_prompt"],
        "label_rounds": given["label_rounds"],
        "iterations": given["iterations"],
        "model": given["model"],
        "grpo_reward": given["grpo_reward"],
        "eval_prompts": given["eval_prompts"],
        "eval_every": given["eval_every"],
        "seed": given["seed"],
    }
    config = base.with_overrides(**top)
    reward = {"backbone": given["reward_backbone"], "n_members": given["reward_members"]}
    ppo = {
        "kl_coef": given["kl_coef"],
        "kl": given["kl"],
        "kl_target": given["kl_target"],
        "batch_size": given["batch_size"],
        "lr": given["lr"],
        "ptx_coef": given["ptx_coef"],
        "missing_eos_penalty": given["missing_eos_penalty"],
    }
    if ppo["batch_size"] is not None:
        ppo["minibatch_size"] = min(config.ppo.minibatch_size, ppo["batch_size"])
    dpo = {"beta": given["dpo_beta"], "loss_type": given["dpo_loss"], "lr": given["lr"]}
    grpo = {"group_size": given["group_size"], "lr": given["lr"], "kl_coef": given["kl_coef"]}

    def merged(current: Any, values: dict[str, Any]) -> Any:
        return replace(current, **{k: v for k, v in values.items() if v is not None})

    return replace(
        config,
        reward=merged(config.reward, reward),
        ppo=merged(config.ppo, ppo),
        dpo=merged(config.dpo, dpo),
        grpo=merged(config.grpo, grpo),
    )


def run_text(args: argparse.Namespace) -> int:
    """Carry out ``prefgym text ...``."""
    if args.text_command in ("pretrain", "sft"):
        return _build_model(args)
    from prefgym.runs import resume_text, train_text

    if args.resume:
        given = [f for f, _, _ in _TRAIN_FLAGS if getattr(args, f.replace("-", "_")) is not None]
        if given or args.out:
            dropped = ", ".join(f"--{f}" for f in [*given, *(["out"] if args.out else [])])
            raise ValueError(
                f"--resume takes its settings from {args.resume}/config.json; drop {dropped}"
            )
        out = Path(args.resume)
        result = resume_text(out, progress=not args.quiet)
    else:
        config = text_config(args)
        out = Path(args.out or f"runs/text-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}")
        result = train_text(config, out, progress=not args.quiet)
    print(text_report(out))
    print()
    print(format_table(["final (vs SFT)", "value"], [[k, v] for k, v in result.items()]))
    print(f"run directory: {out}")
    return 0


def _build_model(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from prefgym.lm import base_model, evaluate_samples, n_parameters, sft_model
    from prefgym.text import TASKS

    start = time.perf_counter()
    if args.text_command == "pretrain":
        lm = base_model(refresh=args.refresh)
        tasks = list(TASKS)
    else:
        lm = sft_model(args.task, refresh=args.refresh)
        tasks = [args.task]
    seconds = time.perf_counter() - start
    rows = []
    for task in tasks:
        stats = evaluate_samples(
            lm,
            task,
            args.samples,
            rng=np.random.default_rng(0),
            generator=torch.Generator().manual_seed(0),
            max_new_tokens=16,
        )
        rows.append([task, stats["fluency"], stats["score"], stats["length"]])
    print(f"{lm.name}: {n_parameters(lm.model):,} parameters, ready in {seconds:.1f} s")
    print(json.dumps({k: v for k, v in lm.info.items() if k != "configs"}, default=str)[:400])
    print(format_table(["task", "fluency", "true score", "tokens"], rows))
    return 0


def text_report(run_path: str | Path) -> str:
    """A text run's table (true score, reward-model score, KL, fluency) and its plots."""
    from prefgym.runs import RunDir, plot_text_metrics, read_metrics

    run = RunDir.open(run_path)
    config = run.read_config()["text"]
    rows = [r for r in read_metrics(run.metrics) if not math.isnan(r.get("true_score", math.nan))]
    text = [
        f"run {run.path}: {config['env_id']}, {config['algo']}, oracle {config['oracle']!r}, "
        f"{config['labels']} labels, {config['iterations'] or 'default'} iterations, "
        f"seed {config['seed']}",
        "",
    ]
    columns = [
        "iteration",
        "labels_judged",
        "true_score",
        "rm_score",
        "kl",
        "fluency",
        "response_tokens",
    ]
    header = ["iteration", "labels", "true score", "rm score", "KL", "fluency", "tokens"]
    if rows:
        text.append(format_table(header, [[r.get(c, math.nan) for c in columns] for r in rows]))
        plots = plot_text_metrics(read_metrics(run.metrics), run.plots)
        text += ["", "plots: " + ", ".join(str(p) for p in plots)]
    else:
        text.append("no evaluation has finished yet")
    samples = run.path / "samples.jsonl"
    if samples.exists():
        last = [json.loads(line) for line in samples.read_text().splitlines()][-4:]
        text += ["", f"samples at iteration {last[-1]['iteration']}:"]
        text += [
            f"  {s['prompt']} | {s['response']}   (score {s['true_score']:+.2f}, "
            f"{'fluent' if s['fluent'] else 'not fluent'})"
            for s in last
        ]
    return "\n".join(text)


def is_text_run(run_path: str | Path) -> bool:
    """Whether ``run_path`` holds a text run (its config has a ``text`` section)."""
    config = Path(run_path) / "config.json"
    return config.is_file() and "text" in json.loads(config.read_text())
