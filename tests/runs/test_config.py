from __future__ import annotations

import json
from dataclasses import replace

import pytest

from prefgym.loop import ATARI_T0
from prefgym.runs import text_task_name
from prefgym.runs.config import (
    TextTrainConfig,
    TrainConfig,
    check_env_id,
    default_label_t0,
    queries_per_round,
    round_starts,
)
from prefgym.schema import from_json


def test_config_checks_name_the_value() -> None:
    with pytest.raises(ValueError, match="myopia does not apply"):
        TextTrainConfig(oracle="myopic")
    with pytest.raises(ValueError, match="responses_per_prompt"):
        TextTrainConfig(responses_per_prompt=12)
    with pytest.raises(ValueError, match="dpo trains on pairs"):
        TextTrainConfig(algo="dpo", responses_per_prompt=4)
    with pytest.raises(ValueError, match="algo"):
        TextTrainConfig(algo="a2c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="single-step text env"):
        text_task_name("prefgym/CartPole-v1")
    assert text_task_name("prefgym/TextArithmetic-v0") == "arithmetic"


def test_rankings_count_their_pairs_and_rounds_split_the_budget() -> None:
    one_round = TextTrainConfig(labels=600, responses_per_prompt=4, label_rounds=1)
    assert queries_per_round(one_round) == [100]
    counts = queries_per_round(TextTrainConfig(labels=1000, label_rounds=4, iterations=40))
    assert sum(counts) == 1000 and len(counts) == 4 and counts[0] == max(counts) == 500
    assert queries_per_round(TextTrainConfig(algo="grpo", grpo_reward="oracle")) == [0]
    default = json.loads(json.dumps(TextTrainConfig().to_json()))
    assert from_json(TextTrainConfig, default, "config.json: text") == TextTrainConfig()


def test_a_text_config_survives_its_json() -> None:
    config = TextTrainConfig(algo="grpo", labels=300, iterations=8, responses_per_prompt=3)
    assert from_json(TextTrainConfig, json.loads(json.dumps(config.to_json())), "text") == config
    assert round_starts(replace(config, label_rounds=4)) == [0, 2, 4, 6]


def test_train_config_checks_name_the_value() -> None:
    with pytest.raises(ValueError, match="Did you mean 'prefgym/CartPole-v1'"):
        TrainConfig(env_id="prefgym/CartPol-v1")
    with pytest.raises(ValueError, match="text game; train it with `prefgym text train"):
        check_env_id("prefgym/TextSentiment-v0")
    with pytest.raises(ValueError, match="algo must be 'ppo' or 'sac'"):
        TrainConfig(algo="a2c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="members must be >= 1, got 0"):
        TrainConfig(members=0)
    with pytest.raises(ValueError, match="segment_length must be positive"):
        TrainConfig(segment_length=0)


def test_train_config_refuses_what_would_fail_later() -> None:
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        TrainConfig(seed=-1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -3"):
        TextTrainConfig(seed=-3)
    with pytest.raises(ValueError, match="algo 'sac' needs continuous .*CartPole-v1 has discrete"):
        TrainConfig(algo="sac")
    with pytest.raises(ValueError, match="algo 'sac' needs continuous .*Pong-v0 has discrete"):
        TrainConfig(env_id="prefgym/ArcadePong-v0", algo="sac")
    assert TrainConfig(env_id="prefgym/Pendulum-v1", algo="sac").algo == "sac"
    with pytest.raises(
        ValueError,
        match=r"segment_length 501 is longer than prefgym/CartPole-v1's horizon of 500 steps; "
        "use at most 500",
    ):
        TrainConfig(segment_length=501)
    assert TrainConfig(segment_length=500).segment_length == 500


@pytest.mark.parametrize("spec", ["Human", "humna", "HUMAN"])
def test_an_unknown_oracle_lists_human_among_the_choices(spec: str) -> None:
    with pytest.raises(ValueError, match=r"did you mean 'human'\?.*Choices: .*myopic, human$"):
        TrainConfig(oracle=spec)
    with pytest.raises(ValueError, match="'human' .* combines with nothing"):
        TrainConfig(oracle="stoc+human")
    with pytest.raises(
        ValueError, match=r"did you mean 'rlaif'\?.*Choices: .*myopic, rlaif, human$"
    ):
        TextTrainConfig(oracle="RLAIF")
    assert TextTrainConfig(oracle="human").oracle == "human"  # people may label text runs
    with pytest.raises(ValueError, match="people have none: use grpo_reward='model'"):
        TextTrainConfig(oracle="human", algo="grpo", grpo_reward="oracle")


def test_the_loop_gets_the_runs_settings_and_atari_gets_christianos_t0() -> None:
    loop = TrainConfig(labels=60, steps=1_000, round_steps=250, selection="entropy").loop_config()
    assert (loop.labels, loop.steps, loop.round_steps, loop.selection) == (
        60,
        1_000,
        250,
        "entropy",
    )
    assert not loop.keep_frames and TrainConfig(oracle="human").loop_config().keep_frames
    assert default_label_t0("prefgym/CartPole-v1") is None
    assert default_label_t0("prefgym/Pong-v5") == float(ATARI_T0)
