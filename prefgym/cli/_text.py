"""``prefgym text``: build the language models and run RLHF on the text game.

``pretrain`` and ``sft`` build the cached base and SFT models (every other
command builds them on demand); ``train`` runs the whole pipeline (SFT ->
judgments -> reward model -> PPO, DPO or GRPO) in a run directory, and
``--resume`` carries a stopped run on. The options of ``train`` are generated from
:class:`~prefgym.runs.config.TextTrainConfig` and its components' configs
(``--ppo-lr``, ``--dpo-beta``, ``--grpo-group-size``, ``--reward-backbone`` ...).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefgym.agents.text.config import DPOConfig, GRPOConfig, TokenPPOConfig
from prefgym.cli._flags import (
    FlagGroup,
    add_max_wait,
    check_resume,
    finished_before,
    max_wait_of,
)
from prefgym.lm.config import TextRewardConfig
from prefgym.runs import format_table
from prefgym.runs.config import TextTrainConfig

TEXT_FLAGS = (
    FlagGroup(
        TextTrainConfig, names={"env_id": "env"}, skip=frozenset({"reward", "ppo", "dpo", "grpo"})
    ),
    FlagGroup(TextRewardConfig, prefix="reward-", aliases={"n_members": ["--reward-members"]}),
    FlagGroup(
        TokenPPOConfig,
        prefix="ppo-",
        names={"ppo_epochs": "epochs"},
        aliases={
            "batch_size": ["--batch-size"],
            "kl": ["--kl"],
            "kl_target": ["--kl-target"],
            "ptx_coef": ["--ptx-coef"],
            "missing_eos_penalty": ["--missing-eos-penalty"],
        },
    ),
    FlagGroup(DPOConfig, prefix="dpo-", aliases={"loss_type": ["--dpo-loss"]}),
    FlagGroup(GRPOConfig, prefix="grpo-", aliases={"group_size": ["--group-size"]}),
)
"""The options of ``prefgym text train``: the run's fields, then each component's."""
_SECTIONS = ("reward", "ppo", "dpo", "grpo")
"""The nested configs of :class:`TextTrainConfig`, in the order of ``TEXT_FLAGS[1:]``."""
_SHORTCUTS = ("lr", "kl_coef")
"""Options that set a field of whichever trainer runs (``--lr`` is ``--ppo-lr`` for PPO)."""


def add_text_parser(commands: Any) -> None:
    """Add ``prefgym text`` and its subcommands to the main parser's ``commands``."""
    text = commands.add_parser("text", help="the text game: language models and RLHF")
    sub = text.add_subparsers(dest="text_command", required=True, metavar="TEXT_COMMAND")
    text.set_defaults(handler=run_text)
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
    for group in TEXT_FLAGS:
        group.add_to(train)
    train.add_argument("--lr", type=float, help="learning rate of whichever trainer runs")
    train.add_argument("--kl-coef", type=float, help="KL weight of PPO or GRPO, whichever runs")
    add_max_wait(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def text_config(args: argparse.Namespace) -> TextTrainConfig:
    """The :class:`TextTrainConfig` of ``prefgym text train``'s options."""
    config = replace(TextTrainConfig(), **TEXT_FLAGS[0].given(args))
    nested: dict[str, Any] = {}
    for section, group in zip(_SECTIONS, TEXT_FLAGS[1:], strict=True):
        values = group.given(args)
        if section in ("ppo", "dpo", "grpo") and args.lr is not None:
            values.setdefault("lr", args.lr)
        if section in ("ppo", "grpo") and args.kl_coef is not None:
            values.setdefault("kl_coef", args.kl_coef)
        current = getattr(config, section)
        if section == "ppo" and "batch_size" in values and "minibatch_size" not in values:
            values["minibatch_size"] = min(current.minibatch_size, values["batch_size"])
        nested[section] = replace(current, **values)
    return replace(config, **nested)


def run_text(args: argparse.Namespace) -> int:
    """Carry out ``prefgym text ...``."""
    if args.text_command in ("pretrain", "sft"):
        return _build_model(args)
    from prefgym.runs import resume_text, text_report, train_text

    if args.resume:
        shortcuts = [f"--{k.replace('_', '-')}" for k in _SHORTCUTS if getattr(args, k) is not None]
        check_resume(args, [f for g in TEXT_FLAGS for f in g.flags_given(args)] + shortcuts)
        out = Path(args.resume)
        if finished_before(out):
            return 0
        result = resume_text(out, progress=not args.quiet, max_wait=max_wait_of(args))
    else:
        config = text_config(args)
        out = Path(args.out or f"runs/text-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}")
        result = train_text(config, out, progress=not args.quiet, max_wait=max_wait_of(args))
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
