from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prefgym  # noqa: F401
from prefgym.judges import PRESETS, SyntheticOracle
from prefgym.loop import (
    LEARNER_STATE,
    LabelRounds,
    LabelSchedule,
    LoopConfig,
    PreferenceLoop,
    RewardFitting,
    RoundResult,
    SegmentCache,
    control_loop,
)
from prefgym.reward import Learner, RewardEnsemble, RewardModelConfig
from prefgym.segments import Segment
from prefgym.store import PreferenceStore, TrainingData
from tests.loop.fakes import CONFIG, ENV_ID, RandomAgent, small_loop


def _asked_pairs(store: PreferenceStore) -> list[frozenset[int]]:
    return [frozenset(q.segment_ids) for q in store.queries()]


@pytest.mark.parametrize("label_t0", [None, 50.0])  # the default T0 = steps / 5, and front-loaded
def test_spends_the_budget_on_schedule_and_never_asks_twice(
    tmp_path: Path, rng: np.random.Generator, label_t0: float | None
) -> None:
    config = replace(CONFIG, label_t0=label_t0)
    oracle = SyntheticOracle(PRESETS["oracle"], "oracle", rng)
    rounds: list[RoundResult] = []
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        agent = RandomAgent(config.segment_length)
        small_loop(store, agent, config, oracle=oracle, on_round=rounds.append).run()
        assert store.n_queries() == config.labels
        assert store.n_judgments(judge="oracle") == config.labels
        pairs = _asked_pairs(store)
        assert len(set(pairs)) == len(pairs)
    schedule = LabelSchedule(config.labels, config.steps, config.initial_fraction, t0=label_t0)
    assert [r.labels_asked for r in rounds] == [schedule.due(r.step) for r in rounds]
    assert rounds[-1].step == config.steps
    assert len(agent.rewards_set) == len(rounds) + 1  # a refit before every round and at the end
    assert all(r.fit is not None for r in rounds)


def test_uses_judgments_that_arrive_late(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    stop = threading.Event()

    def person() -> None:  # answers by true return, slowly, through its own connection
        with PreferenceStore(path) as store:
            while not stop.is_set():
                for query in store.pending_queries(limit=3):
                    left, right = store.get_segments(query.segment_ids, frames=False)
                    better = "left" if left.true_return >= right.true_return else "right"
                    store.add_judgment(query.id, better, "person")
                time.sleep(0.05)

    rounds: list[RoundResult] = []
    with PreferenceStore(path) as store:
        config = LoopConfig(
            labels=40, steps=2_000, segment_length=10, round_steps=400, poll_seconds=0.01
        )
        thread = threading.Thread(target=person)
        thread.start()
        try:
            small_loop(store, RandomAgent(10), config, oracle=None, on_round=rounds.append).run()
        finally:
            stop.set()
            thread.join()
        trained_on = [r.fit.n_train + r.fit.n_val for r in rounds if r.fit is not None]
        assert trained_on == sorted(trained_on) and trained_on[-1] > trained_on[0]
        assert {j.judge for j in store.judgments()} == {"person"}


def test_waits_for_a_persons_first_judgment(tmp_path: Path) -> None:
    waits: list[float] = []
    with PreferenceStore(tmp_path / "store.sqlite") as store:

        def sleep(seconds: float) -> None:  # the person answers during the third wait
            waits.append(seconds)
            if len(waits) == 3:
                (query, *_) = store.pending_queries()
                store.add_judgment(query.id, "left", "person")

        config = LoopConfig(
            labels=8, steps=400, segment_length=10, round_steps=400, poll_seconds=0.25
        )
        small_loop(store, RandomAgent(10), config, oracle=None, sleep=sleep).run()
    assert waits == [0.25, 0.25, 0.25]


class Crash(Exception):
    pass


def test_resumes_after_a_crash_without_losing_or_reasking(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "store.sqlite"

    def crash_in_round_2(result: RoundResult) -> None:
        if result.round == 2:
            raise Crash

    agent = RandomAgent(CONFIG.segment_length)
    with PreferenceStore(path) as store:
        with pytest.raises(Crash):
            small_loop(
                store,
                agent,
                CONFIG,
                oracle=SyntheticOracle(PRESETS["oracle"], "oracle", rng),
                on_round=crash_in_round_2,
            ).run()
        judged_before = {j.query_id: j.preference for j in store.judgments()}
    steps_at_crash = agent.steps
    with PreferenceStore(path) as store:
        resumed = RandomAgent(CONFIG.segment_length, steps=steps_at_crash)
        oracle = SyntheticOracle(PRESETS["oracle"], "oracle", np.random.default_rng(1))
        small_loop(store, resumed, CONFIG, oracle=oracle, seed=1).run()
        judged_after = {j.query_id: j.preference for j in store.judgments()}
        assert store.n_queries() == CONFIG.labels == len(judged_after)
        pairs = _asked_pairs(store)
        assert len(set(pairs)) == len(pairs)
    assert all(judged_after[q] == p for q, p in judged_before.items())


def test_pays_nothing_while_every_judgment_is_a_tie(tmp_path: Path) -> None:
    def ties(left: object, right: object) -> list[str]:
        return ["equal"] * len(left)  # type: ignore[arg-type]

    def says_left(left: object, right: object) -> list[str]:
        return ["left"] * len(left)  # type: ignore[arg-type]

    observations = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    actions = np.zeros(50, dtype=np.int64)
    for judge, informative in ((ties, False), (says_left, True)):
        oracle = SyntheticOracle(PRESETS["oracle"], "oracle", np.random.default_rng(0))
        oracle.judge = judge  # type: ignore[method-assign]
        agent = RandomAgent(10)
        config = replace(CONFIG, labels=10, steps=800)
        with PreferenceStore(tmp_path / f"{informative}.sqlite") as store:
            small_loop(store, agent, config, oracle=oracle).run()
        model = agent.rewards_set[-1]
        assert (model is not None) == informative
        if model is not None:
            paid = model.step_rewards(observations, actions)
            assert paid.shape == (50,) and np.ptp(paid) > 0


class PairsOfNew:
    """A query source that asks about pairs of fresh random segments (as the text game asks
    about fresh responses), each labelled with the round it was asked in."""

    def __init__(self, store: PreferenceStore, rng: np.random.Generator) -> None:
        self.store, self.rng = store, rng
        self.asked_at: list[int] = []

    def start(self, segments: SegmentCache) -> None:
        pass

    def collect(self, segments: SegmentCache) -> None:
        pass

    def ask(self, n: int, progress: int, segments: SegmentCache) -> None:
        self.asked_at.append(progress)
        fresh = [
            Segment(
                observations=self.rng.normal(size=(3, 4)).astype(np.float32),
                actions=np.zeros((3,), dtype=np.int64),
                true_rewards=self.rng.normal(size=3),
                env_id=ENV_ID,
            )
            for _ in range(2 * n)
        ]
        ids = segments.add(fresh, round=len(self.asked_at) - 1)
        self.store.add_queries([(ids[i], ids[i + 1]) for i in range(0, len(ids), 2)])

    def reference(self) -> list[int]:
        return self.store.segment_ids(round=0)


class OfflineTrainer:
    """Trains on the judgments themselves (as DPO does): records what it was handed."""

    def __init__(self) -> None:
        self.steps = 0
        self.handed: list[tuple[int, int]] = []

    def set_judgments(self, data: TrainingData, segments: object) -> None:
        self.handed.append((self.steps, len(data.pairs)))

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        self.steps += steps

    def recent_metrics(self) -> dict[str, float]:
        return {}


def test_an_offline_trainer_gets_every_judgment_at_each_labelling_round(tmp_path: Path) -> None:
    oracle = SyntheticOracle(PRESETS["oracle"], "oracle", np.random.default_rng(0))
    trainer = OfflineTrainer()
    plan = LabelRounds(counts=(6, 3, 3), starts=(0, 4, 8), total=10)
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        source = PairsOfNew(store, np.random.default_rng(1))
        loop = PreferenceLoop(
            source=source,
            plan=plan,
            agent=trainer,
            fitting=None,
            store=store,
            oracle=oracle,
            rng=np.random.default_rng(2),
            final_refit=False,
        )
        rounds = loop.run()
        assert store.n_queries() == store.n_judgments() == 12
    assert source.asked_at == [0, 4, 8]
    assert trainer.handed == [(0, 6), (4, 9), (8, 12)]  # none after the last round
    assert [r.step for r in rounds] == [4, 8, 10]


def test_an_offline_trainer_with_a_reward_model_is_refused(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        with pytest.raises(ValueError, match="an offline trainer learns from the judgments"):
            PreferenceLoop(
                source=PairsOfNew(store, np.random.default_rng(1)),
                plan=LabelRounds((1,), (0,), 1),
                agent=OfflineTrainer(),
                fitting=RewardFitting(Learner(), build=lambda: None),  # type: ignore[arg-type,return-value]
                store=store,
                oracle=None,
                rng=np.random.default_rng(0),
            )


def test_the_learner_state_is_restored_from_the_store(tmp_path: Path) -> None:
    """From the loop's own key, and from the two keys runs of earlier releases wrote."""
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        for meta, expected in (
            ({"weight_decay": 0.25, "learner_steps": 40}, (0.25, 40)),
            ({LEARNER_STATE: {"weight_decay": 0.5, "steps": 7}}, (0.5, 7)),
        ):
            for key, value in meta.items():
                store.set_meta(key, value)
            learner = Learner()
            small = LoopConfig(labels=4, steps=100, segment_length=10, round_steps=100)
            control_loop(
                env_id=ENV_ID,
                agent=RandomAgent(10),
                ensemble=RewardEnsemble(
                    gym.make(ENV_ID).observation_space,
                    gym.make(ENV_ID).action_space,
                    RewardModelConfig(n_members=1, hidden_sizes=(4,)),
                ),
                learner=learner,
                store=store,
                oracle=None,
                config=small,
                rng=np.random.default_rng(0),
            )
            assert (learner.weight_decay, learner.steps) == expected
