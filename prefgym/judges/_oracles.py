"""Oracles: judges of segment pairs, and the simulated teacher of B-Pref.

A synthetic oracle reads the hidden true rewards of two segments and answers
as B-Pref's simulated teacher (Lee et al., 2021) does, in this order:

1. **Skip.** The query is answered ``INCOMPARABLE`` when neither segment does
   anything worth judging: ``max(R_left, R_right) - offset < eps_skip * scale``.
2. **Equal.** The answer is ``EQUAL`` when ``|R_left - R_right| < eps_equal * scale``,
   and always when the myopically weighted returns tie exactly (never a coin
   flip, never a bias to one side).
3. **Choice.** ``P(left) = sigmoid(beta * (W_left - W_right))`` where ``W`` is the
   myopically weighted return: step ``t`` of a ``T``-step segment is weighted
   ``gamma ** (T - 1 - t)``, so the last step counts fully. ``beta = inf`` is the
   perfectly rational teacher, which always picks the higher ``W``.
4. **Mistake.** With probability ``eps_mistake`` a ``LEFT``/``RIGHT`` label is flipped.

Thresholds are relative to the average return of a segment. The oracle is
calibrated on a reference set of segments (:meth:`SyntheticOracle.calibrate`):
``offset`` is the lowest reference return and ``scale`` the mean of
``reference return - offset``. On B-Pref's tasks, whose returns start at 0,
``scale`` is exactly B-Pref's "average segment return"; the offset keeps the
thresholds meaningful where rewards are negative (Pendulum). An uncalibrated
oracle calibrates each call on the segments of that call, without keeping it.
As in B-Pref, the skip and equal tests use the plain (undiscounted) returns
``R``; only the choice uses the weighted returns ``W``.

K-wise rankings come from the same model (:meth:`SyntheticOracle.rank`):
Plackett-Luce sampling with weights ``exp(beta * W)`` without replacement, the
skip test on the best segment, and a mistake that swaps one random adjacent
pair. The equal threshold does not apply to rankings: a ranking has no tie.

Teachers are named by presets and their combinations, see :func:`parse_oracle`.
"""

from __future__ import annotations

import abc
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from prefgym.judgments import Preference
from prefgym.segments import Segment


@dataclass(frozen=True)
class TeacherConfig:
    """The simulated teacher of B-Pref; the defaults are the perfectly rational oracle."""

    beta: float = math.inf
    """Rationality: ``P(left) = sigmoid(beta * gap)``; ``inf`` gives deterministic labels."""
    gamma: float = 1.0
    """Myopic discount: step ``t`` of a ``T``-step segment is weighted ``gamma ** (T - 1 - t)``."""
    eps_mistake: float = 0.0
    """Probability that a left/right label is flipped."""
    eps_skip: float = 0.0
    """Skip threshold, as a fraction of the average segment return (0 never skips)."""
    eps_equal: float = 0.0
    """Equal threshold, as a fraction of the average segment return (0: exact ties only)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
        if not self.beta > 0:
            raise ValueError(
                f"beta must be > 0 (use math.inf for a deterministic teacher), got {self.beta}"
            )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1] (1 is not myopic), got {self.gamma}")
        if not 0 <= self.eps_mistake <= 1:
            raise ValueError(f"eps_mistake is a probability in [0, 1], got {self.eps_mistake}")
        for name in ("eps_skip", "eps_equal"):
            value = getattr(self, name)
            if not (0 <= value and math.isfinite(value)):
                raise ValueError(
                    f"{name} must be a finite fraction >= 0 of the average return, got {value}"
                )


_PRESET_FIELDS: dict[str, dict[str, float]] = {
    "oracle": {},
    "stoc": {"beta": 1.0},
    "mistake": {"eps_mistake": 0.1},
    "skip": {"eps_skip": 0.1},
    "equal": {"eps_equal": 0.1},
    "myopic": {"gamma": 0.9},
}

_PRESET_DESCRIPTIONS: dict[str, str] = {
    "oracle": "perfectly rational: always prefers the higher return",
    "stoc": "stochastic: Bradley-Terry choice with rationality beta=1",
    "mistake": "rational, but flips 10% of its left/right labels",
    "skip": "skips queries whose better segment returns under 10% of the average",
    "equal": "calls two segments equal when their returns differ by under 10% of the average",
    "myopic": "weights step t by 0.9^(T-1-t), so the end of a segment counts most",
}

PRESETS: dict[str, TeacherConfig] = {
    name: TeacherConfig(**overrides) for name, overrides in _PRESET_FIELDS.items()
}
"""B-Pref's six named teachers."""

_FIELDS = tuple(f.name for f in fields(TeacherConfig))


def describe_presets() -> list[tuple[str, str]]:
    """The presets as ``(name, one-line description)``, in B-Pref's order."""
    return [(name, _PRESET_DESCRIPTIONS[name]) for name in PRESETS]


def _unknown(kind: str, value: str, choices: Sequence[str], spec: str) -> ValueError:
    close = difflib.get_close_matches(value.lower(), choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return ValueError(
        f"unknown {kind} {value!r} in oracle spec {spec!r}{hint} Choices: {', '.join(choices)}"
    )


def parse_oracle(spec: str, *, others: Sequence[str] = ()) -> TeacherConfig:
    """Parse a teacher from presets joined by ``+`` and ``field=value`` overrides.

    Items are separated by commas; presets combine (each sets its own fields)
    and overrides are applied after all presets, whatever their position.
    For example ``"stoc+mistake"`` or ``"mistake,beta=0.5,eps_equal=0.2"``.

    Args:
        spec: The specification; a preset name alone is the preset.
        others: Judges that are no teacher but that the caller takes in place of a
            spec (a run's ``human``); the error for an unknown preset lists them
            among the choices. The caller handles them; here they are an error.

    Returns:
        The teacher's configuration.

    Raises:
        ValueError: For an empty spec, an unknown preset or field (with a
            suggestion), a value that is not a number, or an invalid teacher.
    """
    if not spec.strip():
        raise ValueError(f"empty oracle spec {spec!r}; try a preset: {', '.join(PRESETS)}")
    if spec.strip().lower() in others:  # another judge, misspelt: "Human" for "human"
        raise _unknown("oracle preset", spec.strip(), [*PRESETS, *others], spec)
    settings: dict[str, float] = {}
    overrides: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if "=" in item:
            key, _, text = item.partition("=")
            key = key.strip()
            if key not in _FIELDS:
                raise _unknown("teacher field", key, _FIELDS, spec)
            try:
                overrides[key] = float(text)
            except ValueError:
                raise ValueError(
                    f"{key} must be a number in oracle spec {spec!r}, got {text.strip()!r}"
                ) from None
            continue
        for name in item.split("+"):
            name = name.strip().lower()
            if name in others:
                raise ValueError(
                    f"{name!r} in oracle spec {spec!r} is no simulated teacher and combines with "
                    f"nothing: give {name!r} alone, exactly so spelled"
                )
            if name not in _PRESET_FIELDS:
                raise _unknown("oracle preset", name, [*PRESETS, *others], spec)
            settings.update(_PRESET_FIELDS[name])
    settings.update(overrides)
    return TeacherConfig(**settings)


def weighted_returns(rewards: ArrayLike, gamma: float) -> np.ndarray:
    """Myopically weighted returns: step ``t`` of ``T`` weighted ``gamma ** (T - 1 - t)``.

    Args:
        rewards: Per-step rewards, ``(n, T)``.
        gamma: Discount in ``(0, 1]``; 1 gives the plain sum.

    Returns:
        Weighted returns, ``(n,)`` float64.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 2:
        raise ValueError(f"rewards must have shape (n, T), got shape {rewards.shape}")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if gamma == 1:
        return rewards.sum(axis=1)
    weights = gamma ** np.arange(rewards.shape[1] - 1, -1, -1, dtype=np.float64)
    return rewards @ weights


def preference_probability(r_left: ArrayLike, r_right: ArrayLike, beta: float) -> np.ndarray:
    """Bradley-Terry probability that the left segment is preferred.

    ``sigmoid(beta * (r_left - r_right))``, computed without overflow; with
    ``beta = inf`` it is 1, 0 or 0.5 as the left return is higher, lower or equal.

    Args:
        r_left: Returns of the left segments, any shape broadcastable with ``r_right``.
        r_right: Returns of the right segments.
        beta: Rationality, ``> 0`` (``math.inf`` allowed).

    Returns:
        ``P(left)`` with the broadcast shape, float64.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    gap = np.asarray(r_left, dtype=np.float64) - np.asarray(r_right, dtype=np.float64)
    if math.isinf(beta):
        return 0.5 + 0.5 * np.sign(gap)
    with np.errstate(under="ignore"):  # far tails underflow to exactly 0 or 1, as they should
        return np.exp(-np.logaddexp(0.0, -beta * gap))


@dataclass(frozen=True)
class Calibration:
    """What the skip and equal thresholds are relative to."""

    offset: float
    """The lowest reference return."""
    scale: float
    """The average reference return above ``offset``: the "average segment return"."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset) and math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(
                f"a calibration needs a finite offset and a finite scale >= 0, "
                f"got offset={self.offset}, scale={self.scale}"
            )

    @classmethod
    def from_returns(cls, returns: ArrayLike) -> Calibration:
        """Calibrate on reference returns ``(n,)``, ``n >= 1``."""
        returns = np.asarray(returns, dtype=np.float64).reshape(-1)
        if returns.size == 0:
            raise ValueError("calibration needs at least one reference segment, got 0")
        offset = float(returns.min())
        with np.errstate(over="ignore"):
            scale = float(np.mean(returns - offset))
        if math.isfinite(offset) and not math.isfinite(scale):
            raise ValueError(
                f"the reference returns span {offset} to {float(returns.max())}, too far apart "
                "for float64 to hold their mean spread; scale the rewards down"
            )
        return cls(offset=offset, scale=scale)


class Oracle(abc.ABC):
    """Anything that judges pairs of segments: a synthetic teacher or a person."""

    name: str
    """The judge recorded in the store with each judgment."""

    @abc.abstractmethod
    def judge(self, left: Sequence[Segment], right: Sequence[Segment]) -> list[Preference]:
        """Judge the pairs ``(left[i], right[i])``.

        Args:
            left: The left segments.
            right: The right segments, as many as ``left``.

        Returns:
            One preference per pair.
        """

    def rank(self, segments: Sequence[Segment]) -> tuple[int, ...] | None:
        """Order K >= 3 segments best first (positions into ``segments``); None skips the query.

        Raises:
            TypeError: This judge compares pairs only.
        """
        raise TypeError(
            f"judge {self.name!r} compares pairs only; ask it pairs (responses_per_prompt=2)"
        )


_LABELS = (Preference.LEFT, Preference.RIGHT, Preference.EQUAL, Preference.INCOMPARABLE)
_LEFT, _RIGHT, _EQUAL, _INCOMPARABLE = range(4)


def _returns(
    segments: Sequence[Segment], gamma: float, names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Plain and myopically weighted true returns of the segments, each ``(n,)``.

    Raises:
        ValueError: A segment's true rewards hold NaN or an infinity; ``names[i]``
            (default ``segment i``) names segment ``i`` in the message.
    """
    rows = [np.asarray(s.true_rewards, dtype=np.float64).reshape(-1) for s in segments]
    for i, row in enumerate(rows):
        if not np.isfinite(row).all():
            step = int(np.flatnonzero(~np.isfinite(row))[0])
            name = f"segment {i}" if names is None else names[i]
            raise ValueError(
                f"{name} (env_id {segments[i].env_id!r}) has true reward {row[step]} at step "
                f"{step}; a teacher judges finite returns only: drop the segment, or find where "
                "its reward stopped being finite"
            )
    if len({len(row) for row in rows}) == 1:
        rewards = np.stack(rows)
        with np.errstate(over="ignore"):
            plain, weighted = rewards.sum(axis=1), weighted_returns(rewards, gamma)
    else:
        with np.errstate(over="ignore"):
            plain = np.array([row.sum() for row in rows])
            weighted = np.array([weighted_returns(row[None], gamma)[0] for row in rows])
    overflow = np.flatnonzero(~(np.isfinite(plain) & np.isfinite(weighted)))
    if len(overflow):
        i = int(overflow[0])
        name = f"segment {i}" if names is None else names[i]
        raise ValueError(
            f"{name} (env_id {segments[i].env_id!r}) has finite true rewards whose return "
            f"overflows float64 (largest |reward| {np.abs(rows[i]).max()}); scale the rewards down"
        )
    return plain, weighted


class SyntheticOracle(Oracle):
    """B-Pref's simulated teacher, judging from the hidden true rewards."""

    def __init__(
        self,
        config: TeacherConfig,
        name: str,
        rng: np.random.Generator,
        *,
        calibration: Calibration | None = None,
    ) -> None:
        """Create a teacher.

        Args:
            config: How the teacher answers.
            name: The judge recorded in the store (a preset name or spec).
            rng: The only source of randomness.
            calibration: Thresholds' reference; None calibrates on each batch.
        """
        self.config = config
        self.name = name
        self.rng = rng
        self.calibration = calibration

    @classmethod
    def from_spec(cls, spec: str, rng: np.random.Generator) -> SyntheticOracle:
        """A teacher from a spec of :func:`parse_oracle`, named by the spec."""
        return cls(parse_oracle(spec), spec.strip(), rng)

    def calibrate(self, segments: Sequence[Segment]) -> Calibration:
        """Fix the thresholds' reference to these segments' returns, and return it."""
        if not segments:
            raise ValueError("calibration needs at least one reference segment, got 0")
        self.calibration = Calibration.from_returns(_returns(segments, 1.0)[0])
        return self.calibration

    def _skipped(self, best: np.ndarray, calibration: Calibration) -> np.ndarray:
        if self.config.eps_skip == 0:
            return np.zeros(best.shape, dtype=bool)
        return best - calibration.offset < self.config.eps_skip * calibration.scale

    def judge(self, left: Sequence[Segment], right: Sequence[Segment]) -> list[Preference]:
        """Judge the pairs ``(left[i], right[i])``: skip, equal, choice, then mistake."""
        if len(left) != len(right):
            raise ValueError(
                f"left and right must hold as many segments, got {len(left)} and {len(right)}"
            )
        n = len(left)
        if n == 0:
            return []
        names = [f"left segment {i}" for i in range(n)] + [f"right segment {i}" for i in range(n)]
        plain, weighted = _returns([*left, *right], self.config.gamma, names)
        calibration = self.calibration
        if calibration is None:
            calibration = Calibration.from_returns(plain)
        choice_draws = self.rng.random(n)
        mistake_draws = self.rng.random(n)

        p_left = preference_probability(weighted[:n], weighted[n:], self.config.beta)
        prefer_left = (choice_draws < p_left) ^ (mistake_draws < self.config.eps_mistake)
        labels = np.where(prefer_left, _LEFT, _RIGHT)
        equal = (weighted[:n] == weighted[n:]) | (
            np.abs(plain[:n] - plain[n:]) < self.config.eps_equal * calibration.scale
        )
        labels[equal] = _EQUAL
        labels[self._skipped(np.maximum(plain[:n], plain[n:]), calibration)] = _INCOMPARABLE
        return [_LABELS[code] for code in labels]

    def rank(self, segments: Sequence[Segment]) -> tuple[int, ...] | None:
        """Rank segments best first by Plackett-Luce sampling on ``exp(beta * W)``.

        With ``beta = inf`` the order is by weighted return, descending, ties
        kept in the given order. With probability ``eps_mistake`` one random
        adjacent pair of the order is swapped. The equal threshold does not apply.

        Args:
            segments: At least two segments.

        Returns:
            Indices into ``segments``, best first, or None when the teacher
            skips (the best segment is under the skip threshold).
        """
        k = len(segments)
        if k < 2:
            raise ValueError(f"a ranking needs at least 2 segments, got {k}")
        plain, weighted = _returns(segments, self.config.gamma)
        calibration = self.calibration
        if calibration is None:
            calibration = Calibration.from_returns(plain)
        gumbels = self.rng.gumbel(size=k)
        mistake_draw = self.rng.random()
        swap_at = int(self.rng.integers(k - 1))

        if self._skipped(plain.max(keepdims=True), calibration)[0]:
            return None
        if math.isinf(self.config.beta):
            keys = weighted
        else:
            # Gumbel-max: sorting log-weights plus Gumbel noise samples Plackett-Luce.
            keys = self.config.beta * (weighted - weighted.max()) + gumbels
        order = np.argsort(-keys, kind="stable")
        if mistake_draw < self.config.eps_mistake:
            order[[swap_at, swap_at + 1]] = order[[swap_at + 1, swap_at]]
        return tuple(int(i) for i in order)
