from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import prefgym.reward._learner
from prefgym.errors import Failure
from prefgym.reward import DivergenceError, RewardEnsemble, RewardModelConfig
from prefgym.reward._learner import FitReport, Learner, LearnerConfig, _Problem, _scores_alone, fit
from prefgym.reward._losses import Judgments
from prefgym.segments import Segment, sample_pairs

OBS_DIM = 4
W = np.array([1.0, -2.0, 0.5, 1.5])


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ensemble(obs_dim: int = OBS_DIM, config: RewardModelConfig | None = None) -> RewardEnsemble:
    space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,))
    return RewardEnsemble(
        space,
        gym.spaces.Discrete(2),
        config if config is not None else RewardModelConfig(),
        generator=_generator(),
    )


def _linear_segments(
    rng: np.random.Generator, n: int, length: int = 10, w: np.ndarray = W
) -> list[Segment]:
    segments = []
    for _ in range(n):
        observations = rng.normal(size=(length, len(w)))
        segments.append(Segment(observations, rng.integers(0, 2, size=length), observations @ w))
    return segments


def _label(segments: list[Segment], pairs: np.ndarray) -> np.ndarray:
    """Left preferred iff its true return is higher; exact ties are 0.5."""
    returns = np.array([s.true_return for s in segments])
    gap = returns[pairs[:, 0]] - returns[pairs[:, 1]]
    return np.where(gap > 0, 1.0, np.where(gap < 0, 0.0, 0.5))


def test_linear_true_reward_is_recovered(rng: np.random.Generator) -> None:
    segments = _linear_segments(rng, 400)
    pairs = sample_pairs(len(segments), 1500, rng)
    ensemble = _ensemble()
    report = fit(ensemble, segments, pairs, _label(segments, pairs), rng=rng)
    assert isinstance(report, FitReport)
    assert report.n_val == round(1500 / math.e) and report.n_train == 1500 - report.n_val
    assert report.val_accuracy >= 0.95
    assert report.return_correlation > 0.9
    assert report.train_loss < math.log(2) and report.val_loss < math.log(2)
    assert 1 <= report.epochs <= LearnerConfig().max_epochs
    assert report.seconds > 0
    # The learner normalised the ensemble on the segments it fitted.
    steps = ensemble.step_rewards(
        np.concatenate([s.observations for s in segments]),
        np.concatenate([s.actions for s in segments]),
    )
    assert abs(float(steps.mean())) < 1e-4


def test_rankings_alone_recover_the_reward(rng: np.random.Generator) -> None:
    segments = _linear_segments(rng, 200)
    returns = np.array([s.true_return for s in segments])
    groups = [
        rng.choice(len(segments), size=int(rng.integers(2, 5)), replace=False) for _ in range(250)
    ]
    rankings = [g[np.argsort(-returns[g])].tolist() for g in groups]
    report = fit(
        _ensemble(), segments, np.zeros((0, 2), dtype=np.int64), np.zeros(0), rankings, rng=rng
    )
    assert math.isnan(report.val_accuracy)  # rankings are not counted as held-out pairs
    assert math.isfinite(report.val_loss)
    assert report.return_correlation > 0.85


def test_equal_targets_push_the_two_returns_together(rng: np.random.Generator) -> None:
    segments = [
        Segment(np.full((10, OBS_DIM), sign), np.zeros(10, dtype=np.int64), np.zeros(10))
        for sign in (3.0, -3.0)
    ]
    ensemble = _ensemble()
    before = np.abs(np.diff(ensemble.segment_returns(segments, normalised=False), axis=1))
    config = LearnerConfig(max_epochs=300, label_noise=0.0, normalise=False)
    report = fit(ensemble, segments, np.array([[0, 1]]), np.array([0.5]), config=config, rng=rng)
    after = np.abs(np.diff(ensemble.segment_returns(segments, normalised=False), axis=1))
    assert before.min() > 0.05
    assert (after < 0.1 * before).all()
    assert report.train_loss == pytest.approx(math.log(2), abs=1e-3)


@pytest.mark.parametrize("bootstrap", [False, True])
def test_bootstrap_gives_different_members(rng: np.random.Generator, bootstrap: bool) -> None:
    segments = _linear_segments(rng, 60)
    pairs = sample_pairs(len(segments), 80, rng)
    ensemble = _ensemble()
    state = ensemble.members[0].state_dict()
    for member in ensemble.members[1:]:
        member.load_state_dict(state)  # identical members: only the data can separate them
    config = LearnerConfig(max_epochs=10, bootstrap=bootstrap, normalise=False)
    fit(ensemble, segments, pairs, _label(segments, pairs), config=config, rng=rng)
    returns = ensemble.segment_returns(segments, normalised=False)
    if bootstrap:
        assert np.abs(returns[0] - returns[1]).max() > 1e-2
        assert np.abs(returns[1] - returns[2]).max() > 1e-2
    else:
        np.testing.assert_array_equal(returns[0], returns[1])
        np.testing.assert_array_equal(returns[0], returns[2])


def _gradients(problem: _Problem, ids: np.ndarray) -> tuple[float, list[torch.Tensor]]:
    problem.ensemble.zero_grad(set_to_none=False)
    loss = problem.batch_loss(ids)
    loss.backward()
    return loss.item(), [
        torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for p in problem.ensemble.parameters()
    ]


def test_members_score_only_the_segments_their_resample_weighs(
    rng: np.random.Generator,
) -> None:
    segments = _linear_segments(rng, 40)
    pairs = sample_pairs(len(segments), 60, rng)
    judgments = Judgments(len(segments), pairs, _label(segments, pairs), [[3, 1, 2], [5, 4]])
    weights = rng.poisson(1.0, size=(3, judgments.n)).astype(float)
    weights[2, :10] = 0.0  # member 2 weighs none of the first batch's judgments
    ensemble = _ensemble()
    scored = [0, 0, 0]
    for m, member in enumerate(ensemble.members):
        member.register_forward_hook(
            lambda module, args, out, m=m: scored.__setitem__(m, scored[m] + len(out))
        )
    problem = _Problem(ensemble, segments, judgments, weights, eps=0.1)
    assert problem._per_member
    for ids in (np.arange(10), np.arange(judgments.n)):
        scored[:] = [0, 0, 0]
        loss, gradients = _gradients(problem, ids)
        needed = [len(np.unique(judgments.positions(ids[weights[m, ids] > 0]))) for m in range(3)]
        assert scored == needed
        problem._per_member = False  # every member scores every segment of the batch
        shared_loss, shared_gradients = _gradients(problem, ids)
        problem._per_member = True
        assert loss == pytest.approx(shared_loss, rel=1e-6)
        for g, shared in zip(gradients, shared_gradients, strict=True):
            torch.testing.assert_close(g, shared, rtol=1e-5, atol=1e-7)
        per_member = problem.mean_loss(ids, weighted=True)
        problem._per_member = False
        assert per_member == pytest.approx(problem.mean_loss(ids, weighted=True), rel=1e-6)
        problem._per_member = True
    assert scored[2] > 0  # on the whole data member 2 scores too
    # A batch no member weighs still gives a loss to step on (of zero).
    weights[:, :3] = 0.0
    problem = _Problem(ensemble, segments, judgments, weights, eps=0.1)
    loss, gradients = _gradients(problem, np.arange(3))
    assert loss == 0.0 and all((g == 0).all() for g in gradients)


def test_scoring_per_member_fits_as_scoring_the_whole_batch(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    segments = _linear_segments(rng, 50)
    pairs = sample_pairs(len(segments), 67, rng)  # the last minibatch holds one judgment
    config = LearnerConfig(max_epochs=3, batch_size=8, normalise=False)
    returns = []
    for per_member in (True, False):
        monkeypatch.setattr(
            prefgym.reward._learner, "_scores_alone", lambda ensemble, answer=per_member: answer
        )
        ensemble = _ensemble()
        fit(
            ensemble,
            segments,
            pairs,
            _label(segments, pairs),
            config=config,
            rng=np.random.default_rng(3),
        )
        returns.append(ensemble.segment_returns(segments, normalised=False))
    np.testing.assert_allclose(returns[0], returns[1], rtol=1e-4, atol=1e-4)


def test_only_mlp_members_score_their_own_subsets() -> None:
    assert _scores_alone(_ensemble())
    assert not _scores_alone(_ensemble(config=RewardModelConfig(n_members=1)))
    frames = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    pixels = RewardEnsemble(frames, gym.spaces.Discrete(3), generator=_generator())
    assert not _scores_alone(pixels)  # dropout, batch norm or shifted frames draw per batch


def test_overfitting_doubles_weight_decay(rng: np.random.Generator) -> None:
    obs_dim = 100  # 8 training pairs of 100-dimensional segments: easy to memorise
    segments = _linear_segments(rng, 30, length=5, w=rng.normal(size=obs_dim))
    pairs = sample_pairs(len(segments), 12, rng)
    config = LearnerConfig(max_epochs=300, patience=300, label_noise=0.0, weight_decay=1e-5)
    learner = Learner(config)
    report = learner.fit(_ensemble(obs_dim), segments, pairs, _label(segments, pairs), rng=rng)
    assert report.val_loss > 1.5 * report.train_loss
    assert report.weight_decay == 1e-5
    assert report.next_weight_decay == learner.weight_decay == 2e-5


def test_well_regularised_fit_halves_weight_decay(rng: np.random.Generator) -> None:
    segments = _linear_segments(rng, 300, length=5)
    pairs = sample_pairs(len(segments), 400, rng)
    config = LearnerConfig(max_epochs=5, weight_decay=0.5)
    ensemble, learner = _ensemble(config=RewardModelConfig(hidden_sizes=())), Learner(config)
    report = learner.fit(ensemble, segments, pairs, _label(segments, pairs), rng=rng)
    assert report.val_loss < 1.1 * report.train_loss
    assert report.next_weight_decay == learner.weight_decay == 0.25
    # The next call warm-starts with the tuned value and the same optimiser.
    optimizer = learner._optimizer
    report = learner.fit(ensemble, segments, pairs, _label(segments, pairs), rng=rng)
    assert report.weight_decay == 0.25
    assert learner._optimizer is optimizer
    assert optimizer is not None and optimizer.param_groups[0]["weight_decay"] == 0.25


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_datasets_train_without_a_split(rng: np.random.Generator, n: int) -> None:
    segments = _linear_segments(rng, 4)
    pairs = np.array([[0, 1], [2, 3], [1, 2]])[:n]
    config = LearnerConfig(max_epochs=3)
    report = fit(_ensemble(), segments, pairs, _label(segments, pairs), config=config, rng=rng)
    assert (report.n_train, report.n_val, report.epochs) == (n, 0, 3)
    assert math.isnan(report.val_loss) and math.isnan(report.val_accuracy)
    assert report.next_weight_decay == report.weight_decay == config.weight_decay
    assert math.isfinite(report.train_loss)


@pytest.mark.parametrize("min_steps", [0, 40])
def test_small_fits_take_min_steps_before_the_held_out_loss_may_stop_them(
    rng: np.random.Generator, min_steps: int
) -> None:
    segments = _linear_segments(rng, 40)
    pairs = sample_pairs(len(segments), 30, rng)  # 19 train, 11 held out: one step an epoch
    config = LearnerConfig(max_epochs=10, patience=1, min_steps=min_steps, batch_size=64)
    report = fit(_ensemble(), segments, pairs, _label(segments, pairs), config=config, rng=rng)
    assert report.n_val > 0
    if min_steps:
        assert report.epochs >= min_steps  # past max_epochs, whatever the held-out loss did
    else:
        assert report.epochs <= config.max_epochs


def test_min_steps_count_over_the_calls_so_later_fits_stop_on_the_held_out_loss(
    rng: np.random.Generator,
) -> None:
    segments = _linear_segments(rng, 40)
    pairs = sample_pairs(len(segments), 30, rng)
    config = LearnerConfig(max_epochs=10, patience=1, min_steps=40, batch_size=64)
    learner, ensemble = Learner(config), _ensemble()
    first = learner.fit(ensemble, segments, pairs, _label(segments, pairs), rng=rng)
    assert first.epochs >= 40 and learner.steps == first.epochs  # one step an epoch
    second = learner.fit(ensemble, segments, pairs, _label(segments, pairs), rng=rng)
    assert second.epochs <= config.max_epochs
    assert learner.steps == first.epochs + second.epochs


def test_min_steps_lift_a_small_fit_off_its_initial_weights() -> None:
    """A reward that is a product of action and observation, as Acrobot's energy gain is: on
    50 judgments (32 trained, one step an epoch), patience counted in epochs alone stopped the
    fit a few steps from its random start."""
    correlations = {}
    for min_steps in (0, 200):
        rng = np.random.default_rng(2)
        segments = []
        for _ in range(100):
            observations = rng.normal(size=(10, OBS_DIM))
            actions = rng.integers(0, 2, size=10)
            segments.append(Segment(observations, actions, (2 * actions - 1) * observations[:, 0]))
        pairs = sample_pairs(len(segments), 50, rng)
        config = LearnerConfig(min_steps=min_steps, normalise=False)
        report = fit(_ensemble(), segments, pairs, _label(segments, pairs), config=config, rng=rng)
        correlations[min_steps] = report.return_correlation
    assert correlations[200] > max(0.5, correlations[0] + 0.3), correlations


def test_same_seed_gives_the_same_fit() -> None:
    segments = _linear_segments(np.random.default_rng(5), 40)
    pairs = sample_pairs(40, 50, np.random.default_rng(6))
    config = LearnerConfig(max_epochs=4)
    reports = [
        fit(
            _ensemble(),
            segments,
            pairs,
            _label(segments, pairs),
            config=config,
            rng=np.random.default_rng(7),
        )
        for _ in range(2)
    ]
    fields = ("train_loss", "val_loss", "val_accuracy", "return_correlation", "epochs")
    assert [getattr(reports[0], f) for f in fields] == [getattr(reports[1], f) for f in fields]


def test_errors_name_the_bad_input(rng: np.random.Generator) -> None:
    segments = _linear_segments(rng, 5)
    ensemble = _ensemble()
    with pytest.raises(ValueError, match=r"pairs\[1\] = \[2, 7\] is out of range: there are 5"):
        fit(ensemble, segments, np.array([[0, 1], [2, 7]]), np.array([1.0, 0.0]), rng=rng)
    with pytest.raises(ValueError, match=r"segment 0 has 10 steps but segment 5 has 3"):
        fit(
            ensemble,
            segments + _linear_segments(rng, 1, length=3),
            np.array([[0, 5]]),
            np.ones(1),
            rng=rng,
        )
    with pytest.raises(ValueError, match=r"targets\[0\] = nan"):
        fit(ensemble, segments, np.array([[0, 1]]), np.array([np.nan]), rng=rng)
    with pytest.raises(ValueError, match="one target per pair: 1 pairs, 2 targets"):
        fit(ensemble, segments, np.array([[0, 1]]), np.ones(2), rng=rng)
    with pytest.raises(ValueError, match="compares segment 3 with itself"):
        fit(ensemble, segments, np.array([[3, 3]]), np.ones(1), rng=rng)
    with pytest.raises(ValueError, match=r"rankings\[0\] = \[4, 9\] is out of range"):
        fit(ensemble, segments, np.zeros((0, 2), dtype=int), np.zeros(0), [[4, 9]], rng=rng)
    with pytest.raises(ValueError, match="at least one judgment"):
        fit(ensemble, segments, np.zeros((0, 2), dtype=int), np.zeros(0), rng=rng)


def test_standardised_inputs_learn_a_reward_over_parts_of_very_different_scales() -> None:
    """Every part counts the same in the true reward, but parts differ 1000-fold in scale."""
    scale, offset = np.array([0.05, 1.0, 20.0, 50.0]), np.array([3.0, 0.0, -40.0, 0.0])

    def segments(rng: np.random.Generator, n: int) -> list[Segment]:
        z = rng.normal(size=(n, 10, 4))
        return [Segment(x * scale + offset, rng.integers(0, 2, size=10), x.sum(1)) for x in z]

    correlation = {}
    for standardise in (False, True):
        rng = np.random.default_rng(0)
        train = segments(rng, 200)
        pairs = sample_pairs(len(train), 300, rng)
        ensemble = _ensemble()
        config = LearnerConfig(standardise_inputs=standardise)
        fit(ensemble, train, pairs, _label(train, pairs), config=config, rng=rng)
        fresh = segments(np.random.default_rng(1), 300)
        predicted = ensemble.segment_returns(fresh).mean(0)
        correlation[standardise] = np.corrcoef(predicted, [s.true_return for s in fresh])[0, 1]
    assert correlation[True] > 0.95
    assert correlation[False] < 0.85  # without it the small-scale part is all but ignored


def test_the_learners_state_survives_a_json_round_trip(rng: np.random.Generator) -> None:
    """What a resumed run restores: the tuned L2 and the step count, through the store's JSON."""
    import json

    segments = _linear_segments(rng, 20)
    pairs = np.array([[i, i + 1] for i in range(0, 18, 2)])
    targets = np.array([float(segments[a].true_return > segments[b].true_return) for a, b in pairs])
    learner = Learner(LearnerConfig(max_epochs=5, val_fraction=0.3))
    learner.fit(_ensemble(), segments, pairs, targets, rng=rng)
    state = json.loads(json.dumps(learner.state()))
    resumed = Learner(LearnerConfig(max_epochs=5, val_fraction=0.3))
    resumed.load_state(state)
    assert (resumed.weight_decay, resumed.steps) == (learner.weight_decay, learner.steps)
    assert resumed.steps > 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"weight_decay": "big", "steps": 3}, "weight_decay must be a finite number, got 'big'"),
        ({"weight_decay": float("nan"), "steps": 3}, "weight_decay must be a finite number"),
        ({"weight_decay": -1.0, "steps": 3}, "weight_decay must be >= 0, got -1.0"),
        ({"weight_decay": 0.1, "steps": 2.5}, "steps must be an integer >= 0, got 2.5"),
        ({"weight_decay": 0.1}, "steps must be an integer >= 0, got None"),
    ],
)
def test_a_bad_saved_state_is_refused_by_name(state: dict[str, object], message: str) -> None:
    learner = Learner()
    with pytest.raises(ValueError, match=message):
        learner.load_state(state)
    assert (learner.weight_decay, learner.steps) == (LearnerConfig().weight_decay, 0)


# --- non-finite data and divergence -------------------------------------------------------


def _weights(ensemble: RewardEnsemble) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in ensemble.state_dict().items()}


def _finite(ensemble: RewardEnsemble) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in ensemble.state_dict().values())


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(["observations", "actions"]),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
    segment=st.integers(0, 5),
    step=st.integers(0, 4),
)
def test_non_finite_inputs_are_refused_before_any_step(
    name: str, bad: float, segment: int, step: int
) -> None:
    rng = np.random.default_rng(0)
    segments = _linear_segments(rng, 6, length=5)
    arrays = {"observations": segments[segment].observations.copy(), "actions": rng.normal(size=5)}
    arrays[name][step] = bad
    segments[segment] = Segment(
        arrays["observations"], arrays["actions"], segments[segment].true_rewards
    )
    ensemble = _ensemble()
    before = _weights(ensemble)
    learner = Learner(LearnerConfig(max_epochs=2))
    with pytest.raises(ValueError, match=rf"segment {segment} .*has {bad} in its {name}"):
        learner.fit(ensemble, segments, np.array([[0, 1], [2, 3], [4, 5]]), np.ones(3), rng=rng)
    after = _weights(ensemble)
    assert all(torch.equal(before[k], after[k]) for k in before) and learner.steps == 0


@settings(max_examples=10, deadline=None)
@given(lr=st.floats(1e-4, 1e30), seed=st.integers(0, 2**16))
def test_any_learning_rate_leaves_finite_weights(lr: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    segments = _linear_segments(rng, 12, length=5)
    pairs = sample_pairs(len(segments), 20, rng)
    ensemble = _ensemble(config=RewardModelConfig(n_members=2, hidden_sizes=(8,)))
    config = LearnerConfig(lr=lr, max_epochs=3, label_noise=0.0, normalise=False)
    try:
        report = fit(ensemble, segments, pairs, _label(segments, pairs), config=config, rng=rng)
    except DivergenceError as error:
        assert "diverged" in str(error) and f"lr={lr}" in str(error)
    else:
        assert math.isfinite(report.train_loss)
    assert _finite(ensemble)


def test_a_diverging_step_is_undone_and_the_next_fit_starts_afresh(
    rng: np.random.Generator,
) -> None:
    segments = _linear_segments(rng, 20, length=5)
    pairs = sample_pairs(len(segments), 30, rng)
    targets = _label(segments, pairs)
    ensemble = _ensemble()
    before = _weights(ensemble)
    learner = Learner(LearnerConfig(lr=1e38, label_noise=0.0))
    with pytest.raises(
        DivergenceError, match=r"diverged at Adam step 1 \(epoch 1\).*restored.*lr=1e\+38"
    ):
        learner.fit(ensemble, segments, pairs, targets, rng=rng)
    after = _weights(ensemble)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the step before it went bad
    assert learner.steps == 0 and learner._optimizer is None
    assert isinstance(DivergenceError("x"), Failure)  # the command's exit status 1
    learner.config = LearnerConfig(max_epochs=2)
    assert math.isfinite(learner.fit(ensemble, segments, pairs, targets, rng=rng).train_loss)


def test_an_ensemble_with_non_finite_weights_is_refused(rng: np.random.Generator) -> None:
    segments = _linear_segments(rng, 4, length=5)
    ensemble = _ensemble()
    with torch.no_grad():
        next(ensemble.parameters())[0] = math.nan
    with pytest.raises(ValueError, match="weights hold NaN or inf before the fit"):
        fit(ensemble, segments, np.array([[0, 1]]), np.ones(1), rng=rng)


@pytest.mark.parametrize(
    ("field", "value"), [("lr", math.inf), ("lr", math.nan), ("weight_decay", math.nan)]
)
def test_a_non_finite_setting_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{field} must be a finite number.*got {value}"):
        LearnerConfig(**{field: value})
