from __future__ import annotations

import math
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
from prefgym.loop import LabelSchedule, LoopConfig, PreferenceLoop, RoundResult, control_loop
from prefgym.reward import Learner, LearnerConfig, RewardEnsemble, RewardModelConfig
from prefgym.segments import Policy, Segment, make_vector_env, rollout_segments
from prefgym.store import PreferenceStore

ENV_ID = "prefgym/CartPole-v1"


class RandomAgent:
    """An agent that never learns: its 'training' is random play, cut into segments."""

    def __init__(self, segment_length: int, steps: int = 0) -> None:
        self.steps = steps
        self.segment_length = segment_length
        self.env = make_vector_env(ENV_ID, 2)
        self.rewards_set: list[RewardEnsemble | None] = []
        self._segments: list[Segment] = []

    def policy(self) -> Policy:
        space = self.env.single_action_space
        return lambda observations: np.array([space.sample() for _ in observations])

    def set_reward(self, model: RewardEnsemble | None) -> None:
        self.rewards_set.append(model)

    def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
        n = steps // self.segment_length
        self._segments += rollout_segments(
            self.env, self.policy(), n, self.segment_length, seed=self.steps
        )
        self.steps += steps
        if progress is not None:
            progress(steps)

    def pop_segments(self) -> list[Segment]:
        segments, self._segments = self._segments, []
        return segments

    def recent_metrics(self) -> dict[str, float]:
        return {"true_return": math.nan, "learned_return": math.nan}


def _loop(
    store: PreferenceStore,
    agent: RandomAgent,
    config: LoopConfig,
    *,
    oracle: SyntheticOracle | None,
    on_round: Callable[[RoundResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    seed: int = 0,
) -> PreferenceLoop:
    space = gym.make(ENV_ID)
    ensemble = RewardEnsemble(
        space.observation_space,
        space.action_space,
        RewardModelConfig(n_members=2, hidden_sizes=(16,)),
    )
    return control_loop(
        env_id=ENV_ID,
        agent=agent,
        ensemble=ensemble,
        learner=Learner(LearnerConfig(max_epochs=5, normalise=False)),
        store=store,
        oracle=oracle,
        config=config,
        rng=np.random.default_rng(seed),
        on_round=on_round,
        sleep=sleep,
    )


CONFIG = LoopConfig(labels=40, steps=2_000, segment_length=10, round_steps=400, pool_size=200)


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
        _loop(store, agent, config, oracle=oracle, on_round=rounds.append).run()
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
            _loop(store, RandomAgent(10), config, oracle=None, on_round=rounds.append).run()
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
        _loop(store, RandomAgent(10), config, oracle=None, sleep=sleep).run()
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
            _loop(
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
        _loop(store, resumed, CONFIG, oracle=oracle, seed=1).run()
        judged_after = {j.query_id: j.preference for j in store.judgments()}
        assert store.n_queries() == CONFIG.labels == len(judged_after)
        pairs = _asked_pairs(store)
        assert len(set(pairs)) == len(pairs)
    assert all(judged_after[q] == p for q, p in judged_before.items())


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="selection must be"):
        LoopConfig(selection="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="segment_length must be positive"):
        LoopConfig(segment_length=0)
    for t0 in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=f"label_t0 must be a finite number .*, got {t0}"):
            LoopConfig(label_t0=t0)
    with pytest.raises(ValueError, match="initial_fraction must be in"):
        LoopConfig(initial_fraction=1.5)
    with pytest.raises(ValueError, match="rollout_envs must be positive, got 0"):
        LoopConfig(rollout_envs=0)


@pytest.mark.parametrize("rollout_envs", [3, 16])
def test_the_initial_segments_come_from_rollout_envs_envs_at_once(
    tmp_path: Path, rng: np.random.Generator, rollout_envs: int
) -> None:
    batches: list[int] = []

    class CountingAgent(RandomAgent):
        """Counts the batches the loop asks its policy for, outside its own training."""

        def policy(self) -> Policy:
            act = super().policy()

            def counted(observations: np.ndarray) -> np.ndarray:
                batches.append(len(observations))
                return act(observations)

            return counted

        def learn(self, steps: int, progress: Callable[[int], None] | None = None) -> None:
            n = steps // self.segment_length
            policy = super().policy()
            self._segments += rollout_segments(self.env, policy, n, self.segment_length, seed=0)
            self.steps += steps

    config = replace(CONFIG, steps=400, rollout_envs=rollout_envs)
    oracle = SyntheticOracle(PRESETS["oracle"], "oracle", rng)
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        _loop(store, CountingAgent(config.segment_length), config, oracle=oracle).run()
        initial = store.n_segments() - config.steps // config.segment_length
    assert batches and set(batches) == {rollout_envs}
    assert initial == max(20, int(config.schedule().initial * config.initial_segments_per_label))


def test_label_t0_shapes_the_schedule() -> None:
    assert CONFIG.schedule().t0 is None  # the schedule's own steps / 5
    config = replace(CONFIG, label_t0=50.0)
    assert config.schedule().t0 == 50.0
    first_round = CONFIG.round_steps
    assert config.schedule().due(first_round) > CONFIG.schedule().due(first_round)


def test_a_person_gets_clips_with_frames(tmp_path: Path) -> None:
    config = LoopConfig(
        labels=12, steps=800, segment_length=10, round_steps=400, keep_frames=True, frame_stride=4
    )
    with PreferenceStore(tmp_path / "store.sqlite") as store:

        def sleep(seconds: float) -> None:  # a person answers everything pending
            for query in store.pending_queries():
                store.add_judgment(query.id, "left", "person")

        _loop(store, RandomAgent(10), config, oracle=None, sleep=sleep).run()
        asked = {i for q in store.queries() for i in q.segment_ids}
        segments = store.get_segments(sorted(asked), frames=True)
    assert len(asked) >= 2
    for segment in segments:
        assert segment.frames is not None
        assert segment.frames.shape == (10, 100, 150, 3)  # CartPole's 400x600 at stride 4


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
            _loop(store, agent, config, oracle=oracle).run()
        model = agent.rewards_set[-1]
        assert (model is not None) == informative
        if model is not None:
            paid = model.step_rewards(observations, actions)
            assert paid.shape == (50,) and np.ptp(paid) > 0
