"""One preference loop for both halves: ask, judge, refit, train on.

Christiano et al. 2017, with the parts that differ between a control task and
the text game behind three seams:

- a **query source** stores segments and the queries about them: pairs the
  reward-model ensemble disagrees on, from rollouts (control), or K responses
  to one prompt (the text game);
- a **plan** says how many queries are due after so much training and where
  each round ends: the label schedule and a refit every ``round_steps`` agent
  steps (control), or labelling rounds at fixed iterations (the text game);
- the **agent** trains: an online learner (SB3 PPO/SAC, token PPO, GRPO)
  against the learned reward, or an offline trainer (DPO) on the judgments
  themselves.

Each round the loop judges what is pending (at once by a synthetic oracle; with
people labeling in the window it waits, up to ``max_wait``, until every query asked
so far is answered, so the refit sees every answer), refits the reward model on every judgment
in the store, normalises it on the source's reference segments and hands it to
the agent, which trains to the round's end; then the source takes in the
rollouts and the due queries are asked. While every judgment is a tie the model
has learned nothing, and normalising it would blow its noise up into a reward
the agent would chase; the agent is paid nothing instead. The learner's own
state (tuned L2, step count) lives in the store's meta beside the judgments, so
a run interrupted anywhere resumes without losing or re-asking a judgment and
fits as it would have. The loop tells the run's heartbeat when it waits for
people and when it trains again, so that a labeling window can tell people
whether anyone uses their answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from prefgym.judges import Oracle
from prefgym.loop._judging import SegmentCache, judge_pending
from prefgym.reward import FitReport, Learner, RewardEnsemble
from prefgym.segments import Segment
from prefgym.store import PreferenceStore, TrainerState, TrainingData, training_data

LEARNER_STATE = "learner_state"
"""The store's meta key holding the learner's state."""
_FITTED = "judgments"
"""The learner state's record of the judgments the saved model was fitted on."""
_LEGACY_LEARNER_KEYS = {"weight_decay": "weight_decay", "steps": "learner_steps"}
"""Where runs written before the learner state had one key saved each field."""


class Agent(Protocol):
    """An online learner: trains against the learned reward (SB3 PPO/SAC, token PPO, GRPO)."""

    @property
    def steps(self) -> int:
        """Progress so far, in the plan's unit (environment steps, or updates)."""
        ...

    def set_reward(self, model: RewardEnsemble | None) -> None:
        """Train against ``model`` from now on; None pays nothing (every judgment a tie)."""
        ...

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        """Train ``steps`` more steps, calling ``progress(n)`` as ``n`` steps get done."""
        ...

    def recent_metrics(self) -> dict[str, float]:
        """What the agent measured lately, for the round's row of the metrics log."""
        ...


@runtime_checkable
class Trainer(Protocol):
    """An offline learner: trains on the stored judgments themselves (DPO)."""

    @property
    def steps(self) -> int:
        """Progress so far, in the plan's unit (passes over the judgments)."""
        ...

    def set_judgments(self, data: TrainingData, segments: Sequence[Segment]) -> None:
        """Train on these judgments from now on (``data`` indexes into ``segments``)."""
        ...

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        """Train ``steps`` more steps, calling ``progress(n)`` as ``n`` steps get done."""
        ...

    def recent_metrics(self) -> dict[str, float]:
        """What the trainer measured lately, for the round's row of the metrics log."""
        ...


class QuerySource(Protocol):
    """Where queries come from: stores segments and the queries about them."""

    def start(self, segments: SegmentCache) -> None:
        """Before the first round: e.g. the initial policy's segments (a new run only)."""
        ...

    def collect(self, segments: SegmentCache) -> None:
        """After the agent trained: take in what its rollouts produced."""
        ...

    def ask(self, n: int, progress: int, segments: SegmentCache) -> None:
        """Store ``n`` new queries, asked at ``progress``."""
        ...

    def reference(self) -> list[int]:
        """Ids of the segments the learned reward is normalised on (mean 0, std 1)."""
        ...


class Plan(Protocol):
    """When queries are due and where rounds end, in the agent's unit of progress."""

    @property
    def total(self) -> int:
        """Progress at which the run ends."""
        ...

    def due(self, progress: int) -> int:
        """Queries that should have been asked by ``progress``."""
        ...

    def round_end(self, progress: int) -> int:
        """Where the round that starts at ``progress`` ends (at most ``total``)."""
        ...


@dataclass
class RewardFitting:
    """The reward model and how it is fitted; absent for an offline trainer."""

    learner: Learner
    """Fits the model on every trainable judgment."""
    build: Callable[[], RewardEnsemble]
    """Makes the model at the first refit (after the first judgments: the text game's model
    is built once the first responses are sampled, so its initialisation draws come after)."""
    model: RewardEnsemble | None = None
    """The model, once built (a resumed run passes the loaded one)."""


@dataclass(frozen=True)
class RoundResult:
    """What one round did and measured; one row of the metrics log."""

    round: int
    step: int
    labels_asked: int
    """Queries asked so far."""
    labels_judged: int
    """Answers given so far, of every kind (can't-tell and equal included)."""
    labels_trainable: int
    """Answers the last refit trained on (an "incomparable" answer teaches nothing)."""
    measured: dict[str, float]
    """The agent's own measurements (a control agent's true and learned return)."""
    fit: FitReport | None
    seconds: float

    def row(self) -> dict[str, float]:
        """The result as a flat row for the metrics log."""
        return {
            "round": self.round,
            "step": self.step,
            "labels_asked": self.labels_asked,
            "labels_judged": self.labels_judged,
            "labels_trainable": self.labels_trainable,
            **self.measured,
            **({} if self.fit is None else self.fit.row()),
            "seconds": self.seconds,
        }


class PreferenceLoop:
    """Drives an agent, a reward model and a judge through the store."""

    def __init__(
        self,
        *,
        source: QuerySource,
        plan: Plan,
        agent: Agent | Trainer,
        fitting: RewardFitting | None,
        store: PreferenceStore,
        oracle: Oracle | None,
        rng: np.random.Generator,
        max_wait: float | None = None,
        poll_seconds: float = 0.5,
        final_refit: bool = True,
        on_refit: Callable[[FitReport], None] | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
        on_wait: Callable[[int, float], None] | None = None,
        heartbeat: Callable[[TrainerState, int], None] | None = None,
        progress: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wire the parts of a run together; restores the learner's state from the store.

        Args:
            source: Stores segments and queries about them.
            plan: Queries due and round ends.
            agent: An online agent (trained against the model of ``fitting``) or an
                offline trainer (handed the judgments at each refit).
            fitting: The reward model and its learner; None for an offline trainer.
            store: Where segments, queries and judgments live.
            oracle: Judges new queries at once; None when people label through the store
                (a labeling window): then each refit waits until every query is answered.
            rng: Source of the loop's randomness (the learner's splits and resamples).
            max_wait: Seconds to wait for people's answers before a refit, at most (None:
                as long as it takes); the queries left stay pending and count later.
            poll_seconds: How often to look for a person's judgments while waiting.
            final_refit: Refit once more after the last round, so the saved model has seen
                the last judgments; False keeps the model the agent trained against.
            on_refit: Called after each fit of the reward model (to save it).
            on_round: Called after each round (logging, checkpoints).
            on_wait: Called while waiting for people, with the number of queries they
                have not answered and the seconds waited; with 0 when the wait is over.
            heartbeat: Told ``("waiting", n)`` while people have ``n`` queries to answer
                and ``("running", 0)`` when training goes on (``prefgym.store.Heartbeat.set``).
            progress: Called with the number of agent steps just done.
            clock: Seconds, for timing.
            sleep: Waits while a person labels.
        """
        if isinstance(agent, Trainer) == (fitting is not None):
            raise ValueError(
                "an offline trainer learns from the judgments (fitting=None); an online "
                "agent needs a reward model to learn against (a RewardFitting)"
            )
        self.source, self.plan, self.agent, self.fitting = source, plan, agent, fitting
        self.store, self.oracle, self.rng = store, oracle, rng
        if max_wait is not None and not max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds (or None: no limit), got {max_wait}")
        self.max_wait, self.poll_seconds, self.final_refit = max_wait, poll_seconds, final_refit
        self.on_refit, self.on_round, self.on_wait = on_refit, on_round, on_wait
        self.heartbeat, self.progress = heartbeat, progress
        self.clock, self.sleep = clock, sleep
        self.segments = SegmentCache(store)
        self._trainable = 0
        self._status: tuple[TrainerState, int] = ("running", 0)
        if fitting is not None:
            fitting.learner.load_state(self._learner_state(fitting.learner))

    def run(self) -> list[RoundResult]:
        """Run (or resume) the loop until the agent reaches the plan's end."""
        results: list[RoundResult] = []
        self.source.start(self.segments)
        self._judge_pending()
        self._ask()
        resumed = True  # the first round of a call may find a saved model that saw everything
        while True:
            started = self.clock()
            done = self.agent.steps >= self.plan.total
            if not done or self.final_refit:  # answers that nothing would train on: no wait
                self._wait_for_judgments()
            fit = None
            if not done:
                fit = self._refit(always=not resumed)
            elif self.final_refit:  # the final refit follows this call's training
                fit = self._refit(always=bool(results))
            resumed = False
            if done:
                break
            self.agent.learn(
                self.plan.round_end(self.agent.steps) - self.agent.steps, self.progress
            )
            self.source.collect(self.segments)
            self._ask()
            result = RoundResult(
                round=int(self.store.get_meta("round", 0)) + 1,
                step=self.agent.steps,
                labels_asked=self.store.n_queries(),
                labels_judged=self.store.n_judgments(),
                labels_trainable=self._trainable,
                measured=self.agent.recent_metrics(),
                fit=fit,
                seconds=self.clock() - started,
            )
            self.store.set_meta("round", result.round)
            results.append(result)
            if self.on_round is not None:
                self.on_round(result)
        return results

    def _beat(self, state: TrainerState, waiting_for: int = 0) -> None:
        """Tell the heartbeat a new state (nothing when it is unchanged)."""
        if self.heartbeat is not None and (state, waiting_for) != self._status:
            self._status = (state, waiting_for)
            self.heartbeat(state, waiting_for)

    def _ask(self) -> None:
        """Ask the queries due by now, and judge them if an oracle is at hand."""
        n = self.plan.due(self.agent.steps) - self.store.n_queries()
        if n > 0:
            self.source.ask(n, self.agent.steps, self.segments)
            self._judge_pending()

    def _judge_pending(self) -> None:
        if self.oracle is not None:
            judge_pending(self.store, self.oracle, self.segments)

    def _wait_for_judgments(self) -> None:
        """With people labeling, wait until every query asked is answered (or ``max_wait``)."""
        if self.oracle is not None:
            return
        started = self.clock()
        waited = False
        while True:
            pending = len(self.store.pending_queries())
            seconds = self.clock() - started
            if pending == 0 or (self.max_wait is not None and seconds >= self.max_wait):
                break
            waited = True
            self._beat("waiting", pending)
            if self.on_wait is not None:
                self.on_wait(pending, seconds)
            self.sleep(self.poll_seconds)
        if waited:
            self._beat("running")
            if self.on_wait is not None:
                self.on_wait(0, self.clock() - started)

    def _refit(self, *, always: bool) -> FitReport | None:
        """Fit the reward model on every trainable judgment and hand it to the agent.

        Args:
            always: Fit even when the model has seen every judgment already. Within a run
                every round refits; a resumed run hands its saved model over as it is
                unless something was judged since it was fitted, so it goes on as the
                uninterrupted run would have.
        """
        data = training_data(self.store)
        self._trainable = len(data.pairs) + len(data.rankings)
        if self._trainable == 0:
            return None
        segments = self.segments.load(data.segment_ids)
        if isinstance(self.agent, Trainer):
            self.agent.set_judgments(data, segments)
            return None
        assert self.fitting is not None  # an online agent comes with one (checked in __init__)
        report = None
        if always or self.fitting.model is None or self._judged_since_fit():
            report = self._fit(data, segments)
        informative = bool(data.rankings) or bool(np.any(data.targets != 0.5))
        # only ties: the model knows nothing, and normalising would blow up its noise
        self.agent.set_reward(self.fitting.model if informative else None)
        return report

    def _fit(self, data: TrainingData, segments: Sequence[Segment]) -> FitReport:
        """One fit, its normalisation, and the learner's state saved beside the judgments."""
        assert self.fitting is not None
        if self.fitting.model is None:
            self.fitting.model = self.fitting.build()
        model, learner = self.fitting.model, self.fitting.learner
        report = learner.fit(model, segments, data.pairs, data.targets, data.rankings, rng=self.rng)
        model.normalise(self.segments.load(self.source.reference()))
        if self.on_refit is not None:
            self.on_refit(report)
        # after the model is saved: a kill in between leaves a marker that asks for a refit
        self.store.set_meta(LEARNER_STATE, {**learner.state(), _FITTED: self._judged()})
        return report

    def _judged(self) -> list[int]:
        """The store's judgments as ``[count, last id]``: ids grow, an undo lowers the count."""
        judgments = self.store.judgments()
        return [len(judgments), judgments[-1].id if judgments else 0]

    def _judged_since_fit(self) -> bool:
        state = self.store.get_meta(LEARNER_STATE)
        return not isinstance(state, dict) or state.get(_FITTED) != self._judged()

    def _learner_state(self, learner: Learner) -> dict[str, Any]:
        """The learner's state saved in the store, else the legacy keys, else its own."""
        state = self.store.get_meta(LEARNER_STATE)
        if isinstance(state, dict):
            return state
        current = learner.state()
        return {k: self.store.get_meta(key, current[k]) for k, key in _LEGACY_LEARNER_KEYS.items()}


def describe(result: RoundResult) -> dict[str, Any]:
    """A short summary of a round for a progress bar's postfix."""
    accuracy = float("nan") if result.fit is None else result.fit.val_accuracy
    true_return = result.measured.get("true_return", float("nan"))
    return {
        "labels": result.labels_judged,
        "true": f"{true_return:.1f}",
        "rm_acc": f"{accuracy:.2f}",
    }
