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
from prefgym.store import Heartbeat, PreferenceStore, TrainingData
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


def test_a_person_slower_than_the_rounds_has_every_judgment_trained_on(tmp_path: Path) -> None:
    """The loop waits for people before each refit: no round trains on a partial queue."""
    path = tmp_path / "store.sqlite"
    stop = threading.Event()

    def person() -> None:  # answers by true return, one at a time, through its own connection
        with PreferenceStore(path) as store:
            while not stop.is_set():
                for query in store.pending_queries(limit=1):
                    left, right = store.get_segments(query.segment_ids, frames=False)
                    better = "left" if left.true_return >= right.true_return else "right"
                    store.add_judgment(query.id, better, "person", seconds=0.02)
                time.sleep(0.02)

    rounds: list[RoundResult] = []
    waits: list[tuple[int, float]] = []
    with PreferenceStore(path) as store:
        config = LoopConfig(
            labels=40, steps=2_000, segment_length=10, round_steps=400, poll_seconds=0.01
        )
        thread = threading.Thread(target=person)
        thread.start()
        try:
            loop = small_loop(
                store,
                RandomAgent(10),
                config,
                oracle=None,
                on_round=rounds.append,
                on_wait=lambda n, s: waits.append((n, s)),
            )
            loop.run()
        finally:
            stop.set()
            thread.join()
        # each round trained on every answer to the queries asked before it
        asked_before = [config.schedule().initial] + [r.labels_asked for r in rounds[:-1]]
        assert [r.labels_trainable for r in rounds] == asked_before
        assert [r.fit.n_train + r.fit.n_val for r in rounds] == asked_before  # type: ignore[union-attr]
        assert store.n_judgments() == store.n_queries() == 40  # the last ones too (final refit)
        assert store.get_meta(LEARNER_STATE)["judgments"][0] == 40
        assert {j.judge for j in store.judgments()} == {"person"}
    assert waits and waits[-1][0] == 0 and any(n > 1 for n, _ in waits)


def test_waiting_beats_and_ends_the_moment_the_last_answer_arrives(tmp_path: Path) -> None:
    beats: list[tuple[str, int]] = []
    with PreferenceStore(tmp_path / "store.sqlite") as store:

        def sleep(seconds: float) -> None:  # a person answers one pair per poll
            status = store.trainer()
            assert status is not None
            beats.append((status.state, status.waiting_for))
            query = store.pending_queries(limit=1)[0]
            store.add_judgment(query.id, "left", "person")

        config = LoopConfig(labels=8, steps=400, segment_length=10, round_steps=400)
        with Heartbeat(store.path) as heartbeat:
            loop = small_loop(
                store, RandomAgent(10), config, oracle=None, sleep=sleep, heartbeat=heartbeat.set
            )
            loop.run()
        assert store.n_judgments() == 8 and store.pending_queries() == []
        assert store.trainer().state == "finished"  # type: ignore[union-attr]
    initial = config.schedule().initial
    assert beats[:initial] == [("waiting", n) for n in range(initial, 0, -1)]
    assert len(beats) == 8  # one poll per answer: none after the last answer of a wait


def test_max_wait_lets_the_run_go_on_without_answers(tmp_path: Path) -> None:
    """Nobody labels: each refit waits max_wait, the queries stay pending, nothing crashes."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with PreferenceStore(tmp_path / "store.sqlite") as store:
        config = LoopConfig(labels=8, steps=800, segment_length=10, round_steps=400)
        loop = small_loop(
            store,
            RandomAgent(10),
            config,
            oracle=None,
            sleep=sleep,
            max_wait=2.0,
            clock=lambda: now[0],
        )
        rounds = loop.run()
        assert [r.labels_judged for r in rounds] == [0, 0]
        assert [r.labels_trainable for r in rounds] == [0, 0]
        assert store.n_queries() == 8 and len(store.pending_queries()) == 8
    assert now[0] == pytest.approx(3 * 2.0)  # two rounds and the final refit, 2 s each
    with pytest.raises(ValueError, match="max_wait must be >= 0 seconds"):
        small_loop(store, RandomAgent(10), config, oracle=None, max_wait=-1.0)


def test_a_person_who_cannot_tell_anything_does_not_crash_the_run(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "store.sqlite") as store:

        def sleep(seconds: float) -> None:
            for query in store.pending_queries():
                store.add_judgment(query.id, "incomparable", "person")

        config = LoopConfig(labels=8, steps=800, segment_length=10, round_steps=400)
        agent = RandomAgent(10)
        rounds = small_loop(store, agent, config, oracle=None, sleep=sleep).run()
        assert store.n_judgments() == 8  # every answer counts against the budget, none re-asked
    assert [r.labels_trainable for r in rounds] == [0, 0]
    assert all(r.fit is None for r in rounds) and agent.steps == 800
    assert agent.rewards_set == []  # paid nothing: no model learned from ties


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
