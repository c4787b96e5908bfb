from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefgym.judges import (
    PRESETS,
    Calibration,
    Oracle,
    SyntheticOracle,
    TeacherConfig,
    describe_presets,
    parse_oracle,
    preference_probability,
    weighted_returns,
)
from prefgym.judgments import Preference
from prefgym.segments import Segment

L, R, E, INC = Preference.LEFT, Preference.RIGHT, Preference.EQUAL, Preference.INCOMPARABLE

returns = st.floats(-1e3, 1e3, allow_nan=False)
betas = st.one_of(st.floats(1e-3, 10.0), st.just(math.inf))


def seg(rewards: list[float] | np.ndarray) -> Segment:
    r = np.asarray(rewards, dtype=np.float64)
    t = len(r)
    return Segment(observations=np.zeros((t, 1)), actions=np.zeros((t, 1)), true_rewards=r)


def flat(total: float, t: int = 4) -> Segment:
    """A segment whose return ``total`` is spread evenly over ``t`` steps."""
    return seg(np.full(t, total / t))


def teacher(rng: np.random.Generator, **kwargs: float) -> SyntheticOracle:
    return SyntheticOracle(TeacherConfig(**kwargs), "test", rng)


def binomial_ok(k: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(k / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


# --- preference_probability -------------------------------------------------------------


@given(returns, returns, betas)
def test_probability_of_both_orders_sums_to_one(a: float, b: float, beta: float) -> None:
    total = preference_probability(a, b, beta) + preference_probability(b, a, beta)
    assert total == pytest.approx(1.0, abs=1e-12)


@given(returns, returns, returns, st.floats(1e-3, 10.0))
def test_probability_invariant_to_a_common_shift(a: float, b: float, c: float, beta: float) -> None:
    shifted = preference_probability(a + c, b + c, beta)
    assert shifted == pytest.approx(preference_probability(a, b, beta), abs=1e-9)


@given(returns, st.floats(0, 50), st.floats(0, 50), betas)
def test_probability_monotone_in_the_gap(base: float, g1: float, g2: float, beta: float) -> None:
    small, large = sorted((g1, g2))
    assert preference_probability(base + small, base, beta) <= preference_probability(
        base + large, base, beta
    )


def test_probability_strictly_increasing_for_finite_beta() -> None:
    gaps = np.linspace(-5, 5, 101)
    p = preference_probability(gaps, 0.0, 1.0)
    assert np.all(np.diff(p) > 0)
    assert p[100] == pytest.approx(1 / (1 + math.exp(-5)))


@given(returns, betas)
def test_probability_is_one_half_at_zero_gap(r: float, beta: float) -> None:
    assert preference_probability(r, r, beta) == 0.5


@given(returns, returns)
def test_infinite_beta_gives_hard_probabilities(a: float, b: float) -> None:
    p = float(preference_probability(a, b, math.inf))
    assert p == (1.0 if a > b else 0.0 if a < b else 0.5)


def test_probability_is_stable_and_vectorised() -> None:
    with np.errstate(all="raise"):
        p = preference_probability(np.array([1e6, -1e6, 0.0]), np.zeros(3), 50.0)
    np.testing.assert_array_equal(p, [1.0, 0.0, 0.5])
    assert preference_probability(np.zeros((2, 3)), np.zeros(3), 1.0).shape == (2, 3)


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan])
def test_probability_rejects_bad_beta(beta: float) -> None:
    with pytest.raises(ValueError, match=f"beta must be > 0, got {beta}"):
        preference_probability(1.0, 0.0, beta)


# --- weighted_returns -------------------------------------------------------------------


def test_weighted_returns_exact_weights() -> None:
    np.testing.assert_allclose(weighted_returns(np.eye(4), 0.9), [0.729, 0.81, 0.9, 1.0])
    np.testing.assert_array_equal(weighted_returns([[1.0, 2.0, 3.0]], 1.0), [6.0])


def test_late_reward_counts_more_than_early_reward() -> None:
    early, late = weighted_returns([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], 0.5)
    assert (early, late) == (0.25, 1.0)


@pytest.mark.parametrize(
    ("rewards", "gamma", "match"), [([1.0, 2.0], 0.9, r"\(n, T\)"), ([[1.0]], 1.5, "1.5")]
)
def test_weighted_returns_rejects_bad_input(rewards: list, gamma: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        weighted_returns(rewards, gamma)


# --- TeacherConfig, presets and parse_oracle --------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("beta", 0.0),
        ("beta", -2.0),
        ("gamma", 0.0),
        ("gamma", 1.1),
        ("eps_mistake", -0.1),
        ("eps_mistake", 1.5),
        ("eps_skip", -0.2),
        ("eps_equal", math.inf),
    ],
)
def test_config_rejects_bad_values_and_names_them(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{field} .*got {value}"):
        TeacherConfig(**{field: value})


def test_config_is_frozen_and_defaults_to_the_rational_oracle() -> None:
    config = TeacherConfig()
    assert config == PRESETS["oracle"]
    assert (config.beta, config.gamma) == (math.inf, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.beta = 1.0  # type: ignore[misc]


def test_presets_are_b_prefs() -> None:
    assert PRESETS == {
        "oracle": TeacherConfig(),
        "stoc": TeacherConfig(beta=1.0),
        "mistake": TeacherConfig(eps_mistake=0.1),
        "skip": TeacherConfig(eps_skip=0.1),
        "equal": TeacherConfig(eps_equal=0.1),
        "myopic": TeacherConfig(gamma=0.9),
    }
    described = describe_presets()
    assert [name for name, _ in described] == list(PRESETS)
    assert all(text and "\n" not in text for _, text in described)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("myopic", TeacherConfig(gamma=0.9)),
        ("stoc+mistake", TeacherConfig(beta=1.0, eps_mistake=0.1)),
        (" Skip + equal ", TeacherConfig(eps_skip=0.1, eps_equal=0.1)),
        ("mistake,beta=0.5,eps_equal=0.2", TeacherConfig(beta=0.5, eps_mistake=0.1, eps_equal=0.2)),
        ("beta=0.5,stoc", TeacherConfig(beta=0.5)),
        ("stoc,beta=inf", TeacherConfig()),
        ("stoc+mistake+skip+equal+myopic", TeacherConfig(1.0, 0.9, 0.1, 0.1, 0.1)),
        ("gamma=0.99", TeacherConfig(gamma=0.99)),
    ],
)
def test_parse_oracle_combinations(spec: str, expected: TeacherConfig) -> None:
    assert parse_oracle(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("stok", r"unknown oracle preset 'stok'.*did you mean 'stoc'\?.*oracle, stoc, mistake"),
        ("mistake+myopc", "did you mean 'myopic'"),
        ("mistake,betta=2", r"unknown teacher field 'betta'.*did you mean 'beta'\?"),
        ("zzz", r"unknown oracle preset 'zzz' in oracle spec 'zzz'\. Choices: oracle"),
        ("beta=high", "beta must be a number .* got 'high'"),
        ("stoc,beta=-1", "beta must be > 0.*got -1.0"),
        ("  ", "empty oracle spec"),
    ],
)
def test_parse_oracle_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_oracle(spec)


# --- Calibration ------------------------------------------------------------------------


def test_calibration_hand_computed(rng: np.random.Generator) -> None:
    assert Calibration.from_returns([0, 2, 4, 10]) == Calibration(offset=0.0, scale=4.0)
    assert Calibration.from_returns([-10, -8, -6, -4]) == Calibration(offset=-10.0, scale=3.0)
    oracle = teacher(rng)
    assert oracle.calibrate([flat(-4), flat(-10), flat(-6), flat(-8)]) == Calibration(-10.0, 3.0)
    assert oracle.calibration == Calibration(-10.0, 3.0)
    with pytest.raises(ValueError, match="got 0"):
        oracle.calibrate([])
    with pytest.raises(ValueError, match="scale=-1"):
        Calibration(offset=0.0, scale=-1.0)


# --- judge ------------------------------------------------------------------------------


def test_oracle_is_abstract_and_synthetic_oracle_is_one(rng: np.random.Generator) -> None:
    with pytest.raises(TypeError):
        Oracle()  # type: ignore[abstract]
    oracle = SyntheticOracle.from_spec(" stoc+mistake ", rng)
    assert isinstance(oracle, Oracle)
    assert oracle.name == "stoc+mistake"
    assert oracle.config == TeacherConfig(beta=1.0, eps_mistake=0.1)


@given(st.lists(st.tuples(returns, returns), min_size=1, max_size=20))
def test_rational_oracle_labels_follow_the_true_order(pairs: list[tuple[float, float]]) -> None:
    oracle = teacher(np.random.default_rng(0))
    labels = oracle.judge([flat(a, 1) for a, _ in pairs], [flat(b, 1) for _, b in pairs])
    assert labels == [L if a > b else R if a < b else E for a, b in pairs]


@pytest.mark.parametrize("preset", list(PRESETS))
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=6))
def test_exact_ties_are_equal_for_every_preset(preset: str, rewards: list[float]) -> None:
    oracle = SyntheticOracle(PRESETS[preset], preset, np.random.default_rng(0))
    assert oracle.judge([seg(rewards)] * 3, [seg(rewards)] * 3) == [E] * 3


def test_tie_of_weighted_returns_is_equal_even_if_mistakes_are_certain(
    rng: np.random.Generator,
) -> None:
    oracle = teacher(rng, beta=1.0, eps_mistake=1.0)
    assert oracle.judge([seg([1.0, 2.0])], [seg([2.0, 1.0])]) == [E]
    # With a myopic teacher the same pair is no tie: the late 2 beats the late 1.
    myopic = teacher(rng, gamma=0.5)
    assert myopic.judge([seg([1.0, 2.0])], [seg([2.0, 1.0])]) == [L]


def test_myopic_teacher_prefers_the_late_reward(rng: np.random.Generator) -> None:
    left, right = [seg([1.0, 0.0, 0.0, 0.0])], [seg([0.0, 0.0, 0.0, 0.9])]
    assert teacher(rng).judge(left, right) == [L]  # plain returns 1.0 > 0.9
    assert teacher(rng, gamma=0.9).judge(left, right) == [R]  # weighted 0.729 < 0.9


def test_certain_mistakes_flip_every_label(rng: np.random.Generator) -> None:
    oracle = teacher(rng, eps_mistake=1.0)
    assert oracle.judge([flat(5), flat(1)], [flat(1), flat(5)]) == [R, L]


def test_mistake_preset_flips_about_a_tenth(rng: np.random.Generator) -> None:
    n = 20_000
    oracle = SyntheticOracle(PRESETS["mistake"], "mistake", rng)
    labels = oracle.judge([flat(10.0)] * n, [flat(0.0)] * n)
    assert set(labels) == {L, R}
    assert binomial_ok(labels.count(R), n, 0.1)


def test_stochastic_choice_follows_bradley_terry(rng: np.random.Generator) -> None:
    n = 20_000
    labels = teacher(rng, beta=1.0).judge([flat(1.0)] * n, [flat(0.0)] * n)
    assert binomial_ok(labels.count(L), n, 1 / (1 + math.exp(-1)))


def test_skip_threshold_hand_computed(rng: np.random.Generator) -> None:
    oracle = teacher(rng, eps_skip=0.1)
    oracle.calibrate([flat(0), flat(2), flat(4), flat(10)])  # offset 0, scale 4: skip under 0.4
    assert oracle.judge([flat(0.3), flat(0.5), flat(0.1)], [flat(0.1)] * 3) == [INC, L, INC]
    oracle.calibrate([flat(-10), flat(-8), flat(-6), flat(-4)])  # offset -10, scale 3: 0.3 over
    labels = oracle.judge(
        [flat(-9.8), flat(-9.6), flat(-9.9)], [flat(-9.9), flat(-9.9), flat(-9.6)]
    )
    assert labels == [INC, L, R]


def test_equal_threshold_hand_computed(rng: np.random.Generator) -> None:
    oracle = teacher(rng, eps_equal=0.1)
    oracle.calibrate([flat(0), flat(2), flat(4), flat(10)])  # equal within 0.4
    assert oracle.judge([flat(5.0), flat(5.0), flat(5.3)], [flat(5.3), flat(5.5), flat(5.0)]) == [
        E,
        R,
        E,
    ]
    oracle.calibrate([flat(-10), flat(-8), flat(-6), flat(-4)])  # equal within 0.3
    assert oracle.judge([flat(-5.0), flat(-5.0)], [flat(-5.2), flat(-5.4)]) == [E, L]


def test_skip_comes_before_equal(rng: np.random.Generator) -> None:
    oracle = teacher(rng, eps_skip=0.1, eps_equal=0.1)
    oracle.calibrate([flat(0), flat(2), flat(4), flat(10)])
    assert oracle.judge([flat(0.2), flat(3.0)], [flat(0.1), flat(3.1)]) == [INC, E]


def test_uncalibrated_oracle_calibrates_on_the_batch(rng: np.random.Generator) -> None:
    # Batch returns 0.5, 10, 0.2, 9: offset 0.2, scale 18.9 / 4 = 4.725, skip under 0.4725.
    oracle = teacher(rng, eps_skip=0.1)
    assert oracle.judge([flat(0.5), flat(10.0)], [flat(0.2), flat(9.0)]) == [INC, L]
    assert oracle.calibration is None
    # Calibrated on larger returns, the same second pair is skipped too.
    oracle.calibrate([flat(0.0), flat(300.0)])  # skip under 15
    assert oracle.judge([flat(0.5), flat(10.0)], [flat(0.2), flat(9.0)]) == [INC, INC]


def test_zero_skip_never_skips_below_the_calibration(rng: np.random.Generator) -> None:
    oracle = teacher(rng)
    oracle.calibrate([flat(0.0), flat(10.0)])
    assert oracle.judge([flat(-5.0)], [flat(-6.0)]) == [L]


def test_same_seed_same_labels_different_seed_different_labels() -> None:
    left, right = [flat(0.1 * i) for i in range(200)], [flat(0.1 * i + 0.2) for i in range(200)]

    def labels(seed: int) -> list[Preference]:
        return SyntheticOracle.from_spec("stoc", np.random.default_rng(seed)).judge(left, right)

    assert labels(1) == labels(1)
    assert labels(1) != labels(2)


@pytest.mark.parametrize(
    ("preset", "low", "high"),
    [
        ("oracle", 1.0, 1.0),
        ("stoc", 0.98, 1.0),
        ("mistake", 0.86, 0.94),
        ("skip", 0.99, 1.0),
        ("equal", 0.99, 1.0),
        ("myopic", 1.0, 1.0),
    ],
)
def test_presets_agree_with_the_true_order_on_separated_pairs(
    preset: str, low: float, high: float, rng: np.random.Generator
) -> None:
    n = 2000
    base = rng.uniform(10, 50, n)
    other = base + rng.choice([-1, 1], n) * rng.uniform(5, 15, n)
    oracle = SyntheticOracle(PRESETS[preset], preset, rng)
    labels = oracle.judge([flat(x, 10) for x in base], [flat(x, 10) for x in other])
    truth = [L if a > b else R for a, b in zip(base, other, strict=True)]
    agreement = np.mean([a == b for a, b in zip(labels, truth, strict=True)])
    assert low <= agreement <= high


def test_judge_handles_mixed_lengths_and_empty_batches(rng: np.random.Generator) -> None:
    oracle = teacher(rng, gamma=0.5)
    # weighted: [0.5*1 + 1*0] = 0.5 vs [0.25*0 + 0.5*0 + 1*0.6] = 0.6
    assert oracle.judge([seg([1.0, 0.0])], [seg([0.0, 0.0, 0.6])]) == [R]
    assert oracle.judge([], []) == []
    with pytest.raises(ValueError, match="got 2 and 1"):
        oracle.judge([flat(1), flat(2)], [flat(1)])


# --- rank -------------------------------------------------------------------------------


def test_rational_ranking_sorts_and_keeps_ties_in_order(rng: np.random.Generator) -> None:
    segments = [flat(r) for r in (3, 1, 4, 1, 5)]
    assert teacher(rng).rank(segments) == (4, 2, 0, 1, 3)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_plackett_luce_frequencies(beta: float, rng: np.random.Generator) -> None:
    n, rewards = 5000, np.array([0.0, 1.0, 2.0])
    oracle = teacher(rng, beta=beta)
    segments = [flat(r) for r in rewards]
    orders = [oracle.rank(segments) for _ in range(n)]
    firsts = np.bincount([order[0] for order in orders if order is not None], minlength=3)
    weights = np.exp(beta * rewards)
    for k, p in zip(firsts, weights / weights.sum(), strict=True):
        assert binomial_ok(int(k), n, float(p))
    # Without replacement: P(2, 1, 0) = w2 / (w0 + w1 + w2) * w1 / (w0 + w1).
    p_sorted = weights[2] / weights.sum() * weights[1] / (weights[0] + weights[1])
    assert binomial_ok(orders.count((2, 1, 0)), n, float(p_sorted))


def test_myopic_weighting_applies_to_rankings(rng: np.random.Generator) -> None:
    segments = [seg([1.0, 0.0, 0.0]), seg([0.0, 0.0, 0.9])]
    assert teacher(rng).rank(segments) == (0, 1)
    assert teacher(rng, gamma=0.9).rank(segments) == (1, 0)


def test_ranking_mistake_swaps_one_adjacent_pair(rng: np.random.Generator) -> None:
    segments = [flat(r) for r in (4, 3, 2, 1)]
    always = teacher(rng, eps_mistake=1.0)
    for _ in range(20):
        order = always.rank(segments)
        assert order is not None
        moved = [i for i in range(4) if order[i] != i]
        assert len(moved) == 2 and moved[1] == moved[0] + 1
        assert order[moved[0]] == moved[1]
    n = 4000
    sometimes = SyntheticOracle(PRESETS["mistake"], "mistake", rng)
    wrong = sum(sometimes.rank(segments) != (0, 1, 2, 3) for _ in range(n))
    assert binomial_ok(wrong, n, 0.1)


def test_ranking_skips_and_ignores_the_equal_threshold(rng: np.random.Generator) -> None:
    oracle = teacher(rng, eps_skip=0.1, eps_equal=0.5)
    oracle.calibrate([flat(0), flat(2), flat(4), flat(10)])  # skip under 0.4
    assert oracle.rank([flat(0.1), flat(0.3)]) is None
    assert oracle.rank([flat(5.0), flat(5.1), flat(0.3)]) == (1, 0, 2)
    with pytest.raises(ValueError, match="at least 2 segments, got 1"):
        oracle.rank([flat(1.0)])


def test_ranking_reproducible_under_a_seed() -> None:
    segments = [flat(0.1 * i) for i in range(8)]

    def ranks(seed: int) -> list[tuple[int, ...] | None]:
        oracle = SyntheticOracle.from_spec("stoc", np.random.default_rng(seed))
        return [oracle.rank(segments) for _ in range(5)]

    assert ranks(3) == ranks(3)
    assert ranks(3) != ranks(4)


# --- finite returns only ------------------------------------------------------------------

finite_rewards = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=15, deadline=None)
@given(
    rewards=st.lists(finite_rewards, min_size=4, max_size=6),
    bad=non_finite,
    where=st.integers(0, 5),
    preset=st.sampled_from(list(PRESETS)),
)
def test_a_non_finite_true_reward_is_refused_by_segment(
    rewards: list[list[float]], bad: float, where: int, preset: str
) -> None:
    oracle = SyntheticOracle(PRESETS[preset], preset, np.random.default_rng(0))
    rewards = rewards[: len(rewards) // 2 * 2]  # every segment in a pair
    where %= len(rewards)
    segments = [seg(r) for r in rewards]
    segments[where] = seg([*rewards[where], bad])
    half = len(segments) // 2
    side, i = ("left", where) if where < half else ("right", where - half)
    with pytest.raises(ValueError, match=rf"{side} segment {i} .*true reward {bad} at step"):
        oracle.judge(segments[:half], segments[half : 2 * half])
    with pytest.raises(ValueError, match=rf"^segment {where} .*true reward {bad}"):
        oracle.rank(segments)
    with pytest.raises(ValueError, match=rf"^segment {where} "):
        oracle.calibrate(segments)
    assert oracle.calibration is None


@settings(max_examples=15, deadline=None)
@given(
    rewards=st.lists(finite_rewards, min_size=2, max_size=6),
    preset=st.sampled_from(list(PRESETS)),
    seed=st.integers(0, 2**32 - 1),
)
def test_finite_rewards_always_get_a_valid_answer(
    rewards: list[list[float]], preset: str, seed: int
) -> None:
    oracle = SyntheticOracle(PRESETS[preset], preset, np.random.default_rng(seed))
    segments = [seg(r) for r in rewards]
    half = len(segments) // 2
    labels = oracle.judge(segments[:half], segments[half : 2 * half])
    assert len(labels) == half and all(isinstance(label, Preference) for label in labels)
    order = oracle.rank(segments)
    assert order is None or sorted(order) == list(range(len(segments)))


def test_a_return_that_overflows_is_refused_by_segment(rng: np.random.Generator) -> None:
    oracle = SyntheticOracle(PRESETS["stoc"], "stoc", rng)
    huge = seg([1e308, 1e308])
    with pytest.raises(ValueError, match=r"right segment 0 .*overflows float64"):
        oracle.judge([flat(1.0)], [huge])
    with pytest.raises(ValueError, match=r"segment 1 .*overflows float64"):
        oracle.rank([flat(1.0), huge, flat(2.0)])
    assert oracle.judge([seg([1e300])], [seg([-1e300])]) == [L]  # large but finite is fine
    with pytest.raises(ValueError, match="span -1e[+]308 to 1e[+]308, too far apart"):
        oracle.judge([seg([1e308])], [seg([-1e308])])


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from([f.name for f in dataclasses.fields(TeacherConfig)]),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_a_teacher_is_valid_or_refused_naming_field_value_and_range(
    field: str, value: float
) -> None:
    allowed = {
        "beta": value > 0,
        "gamma": 0 < value <= 1,
        "eps_mistake": 0 <= value <= 1,
        "eps_skip": 0 <= value < math.inf,
        "eps_equal": 0 <= value < math.inf,
    }[field]
    if allowed:
        assert getattr(TeacherConfig(**{field: value}), field) == value
        return
    ranges = {"beta": "> 0", "gamma": r"\(0, 1\]", "eps_mistake": r"\[0, 1\]", "eps_skip": ">= 0"}
    got = re.escape(f"got {value}")
    with pytest.raises(ValueError, match=rf"{field} .*{ranges.get(field, '>= 0')}.*{got}"):
        TeacherConfig(**{field: value})
    with pytest.raises(ValueError, match=rf"{field} .*{got}"):
        parse_oracle(f"{field}={value!r}")


def test_a_teacher_field_must_be_a_number() -> None:
    with pytest.raises(ValueError, match="eps_mistake must be a number, got '0.1'"):
        TeacherConfig(eps_mistake="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta must be a number, got True"):
        TeacherConfig(beta=True)


def test_other_judges_are_named_among_the_choices() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'human'\?.*Choices: .*myopic, human$"):
        parse_oracle("Human", others=("human",))
    with pytest.raises(ValueError, match=r"Choices: oracle, stoc, mistake, skip, equal, myopic$"):
        parse_oracle("Human")
    with pytest.raises(
        ValueError, match="'human' in oracle spec 'mistake\\+human' is no simulated"
    ):
        parse_oracle("mistake+human", others=("human",))
