from __future__ import annotations

import numpy as np
import pytest

from prefgym.judges import SyntheticOracle
from prefgym.judgments import Preference
from prefgym.segments import Segment
from prefgym.text import is_text_segment, text_segment, text_summary


def _segment(score: float, *, scale: float = 10.0, fluent: bool = True) -> Segment:
    judged = {
        "prompt": "review of the cafe : the soup was",
        "response": f"response scoring {score}",
        "true_reward": score * scale,
        "true_score": score,
        "fluent": fluent,
        "ended": True,
        "response_tokens": 3,
    }
    return text_segment(
        np.arange(1, 9), np.array([5, 6, 1, 0]), judged, env_id="prefgym/TextSentiment-v0"
    )


def test_the_deterministic_oracle_prefers_the_higher_score() -> None:
    oracle = SyntheticOracle.from_spec("oracle", np.random.default_rng(0))
    left = [_segment(s) for s in (0.5, -1.0, 0.25)]
    right = [_segment(s) for s in (-0.5, 1.0, 0.25)]
    assert oracle.judge(left, right) == [Preference.LEFT, Preference.RIGHT, Preference.EQUAL]


def test_the_mistake_oracle_flips_about_eps_of_text_judgments(rng: np.random.Generator) -> None:
    oracle = SyntheticOracle.from_spec("mistake", rng)
    n = 4000
    left = [_segment(1.0)] * n
    right = [_segment(-1.0)] * n
    flipped = np.mean([p == Preference.RIGHT for p in oracle.judge(left, right)])
    assert flipped == pytest.approx(oracle.config.eps_mistake, abs=0.02)


def test_the_stochastic_oracle_is_informative_at_the_game_s_reward_scale(
    rng: np.random.Generator,
) -> None:
    """stoc is Bradley-Terry with beta = 1 on the true reward: a 0.25 score gap is judged
    right ~92% of the time at the game's scale of 10, ~56% unscaled."""
    oracle = SyntheticOracle.from_spec("stoc", rng)
    n = 4000

    def right_rate(scale: float) -> float:
        left = [_segment(0.25, scale=scale)] * n
        right = [_segment(0.0, scale=scale)] * n
        return float(np.mean([p == Preference.LEFT for p in oracle.judge(left, right)]))

    assert right_rate(10.0) == pytest.approx(1 / (1 + np.exp(-2.5)), abs=0.02)
    assert right_rate(1.0) == pytest.approx(1 / (1 + np.exp(-0.25)), abs=0.03)


def test_k_wise_rankings_order_responses_by_score() -> None:
    oracle = SyntheticOracle.from_spec("oracle", np.random.default_rng(0))
    scores = [0.0, 1.0, -0.5, 0.5, -1.0]
    order = oracle.rank([_segment(s) for s in scores])
    assert [scores[i] for i in order] == sorted(scores, reverse=True)


def test_a_text_segment_is_one_step_with_its_text() -> None:
    segment = _segment(0.5, fluent=False)
    assert is_text_segment(segment) and segment.length == 1
    assert segment.true_return == 5.0 and segment.info["true_score"] == 0.5
    assert text_summary([segment])["fluency"] == 0.0
    with pytest.raises(ValueError, match="at least one segment"):
        text_summary([])
