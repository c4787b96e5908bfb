from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefgym  # noqa: F401  (registers the environments)
from prefgym.loop import (
    SELECTIONS,
    Selection,
    candidate_pool,
    preference_probabilities,
    score_pairs,
    select_queries,
)
from prefgym.reward import LearnerConfig, RewardEnsemble, RewardModelConfig, fit
from prefgym.segments import Segment, make_vector_env, random_policy, rollout_segments


def _segment(observation: tuple[float, float]) -> Segment:
    return Segment(np.array([observation]), np.zeros(1, dtype=np.int64), np.zeros(1))


def _unordered(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(min(a, b)), int(max(a, b))) for a, b in pairs}


@pytest.fixture
def opposed() -> tuple[RewardEnsemble, list[Segment]]:
    """Two linear members that read different coordinates of one-step segments.

    Member 0's return is ``o[0]``, member 1's is ``o[1]``. Positions: 0 = A (2, 0),
    1 = B (0, 1), 2 = E and 3 = F (both (0, 0)), then C_k = (10k, 10k).

    * (A, B): members disagree most (P(left) 0.88 vs 0.27).
    * (E, F): both members say exactly 1/2: highest entropy, no disagreement.
    * pairs with some C_k: both members are nearly certain.
    """
    space = gym.spaces.Box(-np.inf, np.inf, (2,))
    config = RewardModelConfig(n_members=2, hidden_sizes=(), use_actions=False)
    ensemble = RewardEnsemble(space, gym.spaces.Discrete(2), config)
    with torch.no_grad():
        for i, member in enumerate(ensemble.members):
            (layer,) = [m for m in member.modules() if isinstance(m, torch.nn.Linear)]
            layer.weight.copy_(torch.eye(2)[i : i + 1])
            layer.bias.zero_()
    observations = [(2.0, 0.0), (0.0, 1.0), (0.0, 0.0), (0.0, 0.0)]
    observations += [(10.0 * k, 10.0 * k) for k in range(1, 11)]
    return ensemble, [_segment(o) for o in observations]


def test_disagreement_picks_the_pair_the_members_disagree_on(
    opposed: tuple[RewardEnsemble, list[Segment]], rng: np.random.Generator
) -> None:
    ensemble, segments = opposed
    queries = select_queries("disagreement", ensemble, segments, 1, rng, oversample=200)
    assert _unordered(queries) == {(0, 1)}
    returns = ensemble.segment_returns(segments, normalised=False)
    np.testing.assert_allclose(returns[:, :2], [[2.0, 0.0], [0.0, 1.0]])


def test_entropy_picks_the_pair_the_ensemble_cannot_call(
    opposed: tuple[RewardEnsemble, list[Segment]], rng: np.random.Generator
) -> None:
    ensemble, segments = opposed
    queries = select_queries("entropy", ensemble, segments, 2, rng, oversample=200)
    assert [tuple(sorted(q)) for q in queries.tolist()] == [(2, 3), (0, 1)]
    again = select_queries("disagreement", ensemble, segments, 3, rng, exclude={(1, 0)})
    assert (0, 1) not in _unordered(again)


def test_scores_match_their_definitions() -> None:
    returns = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pairs = np.array([[0, 1], [1, 0], [2, 2]])
    p = preference_probabilities(returns, pairs)
    sigmoid = 1 / (1 + np.exp(-np.array([[2.0, -2.0, 0.0], [-1.0, 1.0, 0.0]])))
    np.testing.assert_allclose(p, sigmoid)
    np.testing.assert_allclose(score_pairs("disagreement", returns, pairs), sigmoid.var(axis=0))
    mean = sigmoid.mean(axis=0)
    entropy = -(mean * np.log(mean) + (1 - mean) * np.log(1 - mean))
    np.testing.assert_allclose(score_pairs("entropy", returns, pairs), entropy)
    assert score_pairs("entropy", returns, pairs)[2] == pytest.approx(np.log(2))


@pytest.mark.parametrize("method", SELECTIONS)
def test_queries_are_distinct_and_skip_excluded_pairs(
    method: Selection, opposed: tuple[RewardEnsemble, list[Segment]], rng: np.random.Generator
) -> None:
    ensemble, segments = opposed
    n = len(segments)
    exclude = {(0, 1), (3, 2), (5, 4)}
    queries = select_queries(method, ensemble, segments, 20, rng, oversample=3, exclude=exclude)
    assert queries.shape == (20, 2)
    assert queries.dtype == np.int64
    assert ((queries >= 0) & (queries < n)).all()
    assert (queries[:, 0] != queries[:, 1]).all()
    chosen = _unordered(queries)
    assert len(chosen) == 20
    assert not chosen & {(0, 1), (2, 3), (4, 5)}


def test_every_remaining_pair_can_be_asked_once(rng: np.random.Generator) -> None:
    segments = [_segment((float(i), 0.0)) for i in range(5)]  # 10 pairs
    exclude = {(0, 1), (2, 0), (3, 4)}
    queries = select_queries("uniform", None, segments, 7, rng, exclude=exclude)
    assert len(_unordered(queries)) == 7
    assert _unordered(queries) | {(0, 1), (0, 2), (3, 4)} == {
        (a, b) for a in range(5) for b in range(a + 1, 5)
    }
    with pytest.raises(ValueError, match="asked for 8 queries but only 7 pairs of 5 segments"):
        select_queries("uniform", None, segments, 8, rng, exclude=exclude)


def test_uniform_orients_pairs_both_ways(rng: np.random.Generator) -> None:
    segments = [_segment((float(i), 0.0)) for i in range(40)]
    queries = select_queries("uniform", None, segments, 200, rng)
    left_smaller = float(np.mean(queries[:, 0] < queries[:, 1]))
    assert 0.35 < left_smaller < 0.65
    assert len(np.unique(queries[:, 0])) == 40


def test_large_pools_are_drawn_without_listing_every_pair(rng: np.random.Generator) -> None:
    n = 3000  # 4.5 million pairs: sampled with rejection, not enumerated
    exclude = {(int(a), int(b)) for a, b in rng.integers(0, 30, size=(200, 2)) if a != b}
    pool = candidate_pool(n, 500, rng, exclude)
    assert pool.shape == (500, 2)
    assert len(_unordered(pool)) == 500
    assert not _unordered(pool) & _unordered(np.array(sorted(exclude)))


def test_errors_name_the_bad_input(
    opposed: tuple[RewardEnsemble, list[Segment]], rng: np.random.Generator
) -> None:
    ensemble, segments = opposed
    with pytest.raises(ValueError, match="method must be one of .* got 'random'"):
        select_queries("random", ensemble, segments, 1, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an ensemble"):
        select_queries("entropy", None, segments, 1, rng)
    with pytest.raises(ValueError, match="at least 2 segments"):
        select_queries("uniform", None, segments[:1], 1, rng)
    assert select_queries("entropy", ensemble, segments, 0, rng).shape == (0, 2)


@pytest.mark.parametrize("env_id", ["prefgym/CartPole-v1", "prefgym/Pendulum-v1"])
def test_fit_then_select_on_real_envs(env_id: str, rng: np.random.Generator) -> None:
    env = make_vector_env(env_id, 2)
    env.action_space.seed(0)
    segments = rollout_segments(env, random_policy(env.action_space), 30, 10, seed=0)
    ensemble = RewardEnsemble(
        env.single_observation_space,
        env.single_action_space,
        generator=torch.Generator().manual_seed(0),
    )
    env.close()
    asked = select_queries("uniform", ensemble, segments, 20, rng)
    returns = np.array([s.true_return for s in segments])
    targets = (returns[asked[:, 0]] > returns[asked[:, 1]]).astype(float)
    targets[returns[asked[:, 0]] == returns[asked[:, 1]]] = 0.5
    report = fit(ensemble, segments, asked, targets, config=LearnerConfig(max_epochs=5), rng=rng)
    assert report.n_train + report.n_val == 20
    exclude = {(int(a), int(b)) for a, b in asked}
    for method in ("disagreement", "entropy"):
        queries = select_queries(method, ensemble, segments, 10, rng, exclude=exclude)
        assert queries.shape == (10, 2)
        assert not _unordered(queries) & _unordered(asked)
