"""The settings of a run, control or text; stored in the run's ``config.json``.

Cheap to import (no torch, transformers, SB3 or pygame): the CLI builds its flags
from these dataclasses, and every default is written once, in the field.

A text run follows the stages of InstructGPT on the suite's machinery:

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
"""

from __future__ import annotations

import difflib
import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prefgym.agents.sb3.config import ALGOS
from prefgym.agents.sb3.config import Algo as AgentAlgo
from prefgym.agents.text.config import DPOConfig, GRPOConfig, TokenPPOConfig
from prefgym.envs.registration import ALL_ENVS, ENVS, TEXT_ENVS
from prefgym.judges import parse_oracle
from prefgym.lm.config import TextRewardConfig
from prefgym.loop import ATARI_T0
from prefgym.loop.config import LoopConfig, Selection

THREADS_VARIABLE = "PREFGYM_THREADS"
"""Environment variable with the number of torch threads (default 1: small networks
run slower with more threads on small machines; README has the figures)."""
TextAlgo = Literal["ppo", "dpo", "grpo"]
RewardSource = Literal["learned", "true"]
TRUE_REWARD = "true"
"""``TrainConfig.reward`` of the plain-RL baseline: the agent is paid the hidden reward."""
GrpoReward = Literal["model", "oracle"]
DEFAULT_ITERATIONS = {"ppo": 100, "grpo": 100, "dpo": 4}
"""Iterations of a run that names none."""
RLAIF = "rlaif"
"""The oracle name that asks a language model (SmolLM2) to judge."""
HUMAN = "human"
"""The ``--oracle`` value that leaves the judging to people in the labeling window."""


@dataclass(frozen=True)
class TextTrainConfig:
    """Everything a text RLHF run needs; stored in the run's ``config.json``."""

    env_id: str = "prefgym/TextSentiment-v0"
    """A single-step text game (``prefgym list-envs``)."""
    algo: TextAlgo = "ppo"
    """``ppo`` (reward model + token-level PPO), ``dpo`` (on the judgments) or ``grpo``."""
    oracle: str = "stoc"
    """A B-Pref preset or spec (``prefgym list-oracles``; myopia does not apply to one-step
    text), ``rlaif`` (SmolLM2 judges by the task's rubric) or ``human`` (people judge in
    the labeling window, and each refit waits for them)."""
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
    ppo: TokenPPOConfig = field(default_factory=TokenPPOConfig)
    """Token-level PPO's settings."""
    dpo: DPOConfig = field(default_factory=DPOConfig)
    """DPO's settings."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
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
        check_seed(self.seed)
        text_task_name(self.env_id)  # a single-step text game, or an error naming them
        if self.grpo_reward not in ("model", "oracle"):
            raise ValueError(f"grpo_reward must be 'model' or 'oracle', got {self.grpo_reward!r}")
        if self.oracle == HUMAN and self.algo == "grpo" and self.grpo_reward == "oracle":
            raise ValueError(
                "grpo_reward='oracle' pays the simulated oracle's true score, and people have "
                "none: use grpo_reward='model' with oracle='human'"
            )
        if self.oracle not in (RLAIF, HUMAN):
            teacher = parse_oracle(self.oracle, others=(RLAIF, HUMAN))
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
        return self.grpo.max_new_tokens if self.algo == "grpo" else self.ppo.max_new_tokens

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (nested configs as objects); ``RunDir.text_config`` reads it back."""
        return asdict(self)


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


PREFERENCE_ONLY = (
    "oracle",
    "labels",
    "segment_length",
    "selection",
    "initial_fraction",
    "label_t0",
    "members",
    "labeler",
    "rollout_envs",
)
"""``TrainConfig`` fields a true-reward run does not use (it asks and fits nothing)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; written to the run's ``config.json``."""

    env_id: str = "prefgym/CartPole-v1"
    """A registered ``prefgym/`` environment."""
    oracle: str = "oracle"
    """Who judges: a simulated teacher (a preset such as ``mistake``, combinations such as
    ``stoc+myopic``, overrides such as ``mistake,eps_mistake=0.2``) or ``human``."""
    labels: int = 100
    """Label budget."""
    steps: int = 50_000
    """Agent environment steps."""
    seed: int = 0
    """Seeds the envs, networks, query selection and the oracle."""
    algo: AgentAlgo = "ppo"
    """The agent: PPO (any action space) or SAC (continuous actions)."""
    segment_length: int = 25
    """Steps per segment shown to the judge."""
    selection: Selection = "disagreement"
    """How query pairs are chosen: ``uniform``, ensemble ``disagreement`` or ``entropy``."""
    round_steps: int = 5_000
    """Agent steps between two refits of the reward model."""
    initial_fraction: float = 0.25
    """Share of the labels asked about the initial (untrained) policy."""
    label_t0: float | None = None
    """Decay constant T0 of the label rate, which is proportional to T0 / (T + T0) after T agent
    steps (default: Christiano et al.'s 5e6 for the Atari envs, steps / 5 for the others)."""
    members: int = 3
    """Reward-model ensemble size."""
    labeler: str = "person"
    """The person's id recorded with their judgments (``--oracle human``)."""
    rollout_envs: int = 4
    """Envs stepped together when rolling out the initial policy's segments: more is faster, and
    changes the run's random stream."""
    reward: RewardSource = "learned"
    """What the agent is paid: the reward model fitted to the judgments (``learned``), or the
    task's hidden reward (``true``: the plain-RL baseline, same agent, steps and seed; nothing
    is judged, and the preference settings are not used)."""

    def __post_init__(self) -> None:
        check_env_id(self.env_id)
        if self.reward not in ("learned", TRUE_REWARD):
            raise ValueError(f"reward must be 'learned' or 'true', got {self.reward!r}")
        if self.oracle != HUMAN:
            parse_oracle(self.oracle, others=(HUMAN,))
        if self.algo not in ALGOS:  # the agent's own choices, spelled as before
            raise ValueError(f"algo must be {' or '.join(map(repr, ALGOS))}, got {self.algo!r}")
        if self.members < 1:
            raise ValueError(f"members must be >= 1, got {self.members}")
        check_seed(self.seed)
        self.loop_config()  # checks labels, steps, segment length, selection, ...
        info = next(e for e in ENVS if e.id == self.env_id)
        if self.algo == "sac" and info.actions != "continuous":
            raise ValueError(
                f"algo 'sac' needs continuous (Box) actions, but {self.env_id} has "
                f"{info.actions} actions; use algo='ppo'"
            )
        if self.segment_length > info.horizon:
            raise ValueError(
                f"segment_length {self.segment_length} is longer than {self.env_id}'s horizon "
                f"of {info.horizon} steps; use at most {info.horizon}"
            )

    @property
    def true_reward(self) -> bool:
        """Whether this is a true-reward baseline run (``reward="true"``)."""
        return self.reward == TRUE_REWARD

    def loop_config(self) -> LoopConfig:
        """The loop's settings."""
        return LoopConfig(
            labels=self.labels,
            steps=self.steps,
            segment_length=self.segment_length,
            initial_fraction=self.initial_fraction,
            label_t0=self.label_t0 if self.label_t0 is not None else default_label_t0(self.env_id),
            round_steps=self.round_steps,
            selection=self.selection,
            rollout_envs=self.rollout_envs,
            keep_frames=self.oracle == HUMAN,  # a person watches clips, not numbers
        )


def check_seed(seed: int) -> None:
    """Raise a ValueError naming ``seed`` unless it is an integer >= 0 (numpy seeds are)."""
    try:
        value = operator.index(seed)
    except TypeError:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}") from None
    if isinstance(seed, bool) or value < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def check_env_id(env_id: str) -> None:
    """Raise a ValueError naming ``env_id`` and the closest registered ids if it is unknown."""
    ids = [e.id for e in ENVS]
    if env_id in ids:
        return
    if env_id in {e.id for e in ALL_ENVS}:
        raise ValueError(
            f"{env_id!r} is a text game; train it with `prefgym text train --env {env_id}`"
        )
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown environment {env_id!r}.{hint} See `prefgym list-envs`.")


def default_label_t0(env_id: str) -> float | None:
    """The label schedule's ``T0`` for ``env_id`` when none is given.

    Christiano et al.'s :data:`~prefgym.loop.ATARI_T0` for the Atari (ALE) envs; None
    (the schedule's ``steps / 5``) for the others.
    """
    families = {e.id: e.family for e in ENVS}
    return float(ATARI_T0) if families.get(env_id) == "atari" else None


def text_task_name(env_id: str) -> str:
    """The task of a registered single-step text env id."""
    for info in TEXT_ENVS:
        if info.id == env_id and info.entry_point.endswith(":TextEnv"):
            return str(info.kwargs["task"])
    ids = [i.id for i in TEXT_ENVS if i.entry_point.endswith(":TextEnv")]
    raise ValueError(f"text training needs a single-step text env, one of {ids}; got {env_id!r}")
