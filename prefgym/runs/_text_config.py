"""The settings of a text RLHF run: SFT policy -> judgments -> reward model -> PPO, DPO or GRPO.

The stages of InstructGPT on the suite's machinery:

1. The policy starts from a language model (the SFT model by default).
2. For each labelling round, the current policy answers prompts ``K`` times;
   the responses become text segments in the run's store, each prompt's ``K``
   responses one query (a pair, or a K-wise ranking), and the oracle judges them.
   The first round labels the SFT policy's samples; with ``label_rounds > 1``
   the rest of the budget follows the loop's label schedule over training
   (iterated RLHF: new judgments on the current policy's samples).
3. The reward model (a transformer with a scalar head) is fitted on every
   judgment by the shared learner and normalised so the SFT policy's samples
   score mean 0, std 1.
4. The policy is trained: token-level PPO against the reward model with a KL
   penalty to the frozen SFT reference; DPO directly on the stored pairs; or
   GRPO against the reward model (or, for ablations, the oracle's true score).

:class:`prefgym.runs._text.TextRun` carries a run out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from prefgym.agents.text import DPOConfig
from prefgym.agents.text import GRPOConfig
from prefgym.lm import TextRewardConfig
from prefgym.agents.text import TokenPPOConfig
from prefgym.judges import parse_oracle

Algo = Literal["ppo", "dpo", "grpo"]
GrpoReward = Literal["model", "oracle"]
DEFAULT_ITERATIONS = {"ppo": 100, "grpo": 100, "dpo": 4}
"""Iterations of a run that names none."""
RLAIF = "rlaif"
"""The oracle name that asks a language model (SmolLM2) to judge."""


def _ppo_default() -> TokenPPOConfig:
    return TokenPPOConfig(batch_size=64, minibatch_size=16, ppo_epochs=4, lr=5e-5, kl_coef=0.1)


def _dpo_default() -> DPOConfig:
    return DPOConfig(beta=0.1, lr=3e-4, batch_size=32, epochs=1)


def _grpo_default() -> GRPOConfig:
    return GRPOConfig(group_size=8, prompts_per_step=16, max_new_tokens=16, lr=2e-4, kl_coef=0.04)


@dataclass(frozen=True)
class TextTrainConfig:
    """Everything a text RLHF run needs; stored in the run's ``config.json``."""

    env_id: str = "prefgym/TextSentiment-v0"
    """A single-step text game (``prefgym list-envs``)."""
    algo: Algo = "ppo"
    """``ppo`` (reward model + token-level PPO), ``dpo`` (on the judgments) or ``grpo``."""
    oracle: str = "stoc"
    """A B-Pref preset or spec (``prefgym list-oracles``; myopia does not apply to one-step
    text) or ``rlaif`` (SmolLM2 judges by the task's rubric)."""
    labels: int = 2000
    """Comparisons asked in all; a K-wise ranking counts as its C(K, 2) pairs (InstructGPT)."""
    responses_per_prompt: int = 2
    """K: 2 gives pairwise judgments, 3-9 rankings."""
    label_rounds: int = 4
    """1 labels the SFT policy's samples only; more spread the budget over training
    (iterated RLHF: half the labels on SFT samples, the rest on the current policy's)."""
    iterations: int | None = None
    """PPO or GRPO updates (each on a fresh batch of prompts), or DPO passes over the pairs;
    None: 100 updates for PPO and GRPO, 4 passes for DPO."""
    model: str = "sft"
    """The starting policy: ``sft``, ``base``, a local Hugging Face directory, or ``smollm2``."""
    reward: TextRewardConfig = field(default_factory=TextRewardConfig)
    """The reward model's backbone and members."""
    reward_epochs: int = 40
    """Most epochs of one reward-model fit (early stopping on held-out judgments)."""
    ppo: TokenPPOConfig = field(default_factory=_ppo_default)
    """Token-level PPO's settings."""
    dpo: DPOConfig = field(default_factory=_dpo_default)
    """DPO's settings."""
    grpo: GRPOConfig = field(default_factory=_grpo_default)
    """GRPO's settings."""
    grpo_reward: GrpoReward = "model"
    """What GRPO maximises: the learned reward model, or the oracle's true score (ablation)."""
    eval_prompts: int = 128
    """Prompts of each evaluation (true score, fluency, KL, win rate)."""
    eval_every: int = 10
    """Iterations between evaluations."""
    seed: int = 0
    """Seeds prompts, sampling, the oracle and every initialisation."""

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "dpo", "grpo"):
            raise ValueError(f"algo must be 'ppo', 'dpo' or 'grpo', got {self.algo!r}")
        if self.labels < 0 or (self.labels == 0 and self.needs_labels):
            raise ValueError(
                f"labels must be >= 1 for {self.algo} against a reward model, got {self.labels}"
            )
        if not 2 <= self.responses_per_prompt <= 9:
            raise ValueError(
                f"responses_per_prompt must be 2 (pairs) to 9 (rankings), "
                f"got {self.responses_per_prompt}"
            )
        if self.algo == "dpo" and self.responses_per_prompt != 2:
            raise ValueError("dpo trains on pairs: use responses_per_prompt=2")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(
                f"iterations must be >= 1 (or None for the default), got {self.iterations}"
            )
        for name in ("label_rounds", "reward_epochs", "eval_prompts", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.grpo_reward not in ("model", "oracle"):
            raise ValueError(f"grpo_reward must be 'model' or 'oracle', got {self.grpo_reward!r}")
        if self.oracle != RLAIF:
            teacher = parse_oracle(self.oracle)
            if teacher.gamma != 1.0:
                raise ValueError(
                    f"oracle {self.oracle!r} discounts myopically (gamma={teacher.gamma}); a text "
                    "segment has one step, so myopia does not apply: pick another preset"
                )

    @property
    def total_iterations(self) -> int:
        """``iterations``, or the algorithm's default when it is None."""
        if self.iterations is not None:
            return self.iterations
        return DEFAULT_ITERATIONS[self.algo]

    @property
    def needs_labels(self) -> bool:
        """Whether the run asks for judgments (GRPO on the true score does not)."""
        return not (self.algo == "grpo" and self.grpo_reward == "oracle")

    @property
    def pairs_per_query(self) -> int:
        """Comparisons one query is worth: C(K, 2)."""
        return math.comb(self.responses_per_prompt, 2)

    @property
    def max_new_tokens(self) -> int:
        """Tokens of a response, as the algorithm samples them."""
        return {"ppo": self.ppo, "grpo": self.grpo}.get(self.algo, self.ppo).max_new_tokens  # type: ignore[attr-defined]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (nested configs as objects)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextTrainConfig:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        nested: dict[str, Callable[..., Any]] = {
            "reward": TextRewardConfig,
            "ppo": TokenPPOConfig,
            "dpo": DPOConfig,
            "grpo": GRPOConfig,
        }
        for name, kind in nested.items():
            if name in data and isinstance(data[name], dict):
                data[name] = kind(
                    **{k: tuple(v) if isinstance(v, list) else v for k, v in data[name].items()}
                )
        return cls(**data)

    def with_overrides(self, **overrides: Any) -> TextTrainConfig:
        """A copy with fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def queries_per_round(config: TextTrainConfig) -> list[int]:
    """How many queries each labelling round asks (InstructGPT: K responses per query).

    The first round takes the initial share of the budget (all of it with one
    round); the rest follows ``LabelSchedule.due`` at the start of each later round.
    """
    from prefgym.loop import LabelSchedule

    total = math.ceil(config.labels / config.pairs_per_query) if config.needs_labels else 0
    if config.label_rounds == 1 or total == 0:
        return [total]
    schedule = LabelSchedule(total, config.total_iterations, initial_fraction=0.5)
    starts = [
        round(r * config.total_iterations / config.label_rounds) for r in range(config.label_rounds)
    ]
    due = [schedule.initial] + [schedule.due(s) for s in starts[1:]] + [total]
    counts = [max(0, due[r + 1] - due[r]) for r in range(config.label_rounds)]
    counts[0] = due[0]
    counts[-1] += total - sum(counts)
    return counts


def round_starts(config: TextTrainConfig) -> list[int]:
    """The iteration at which each labelling round happens."""
    return [
        round(r * config.total_iterations / config.label_rounds) for r in range(config.label_rounds)
    ]
