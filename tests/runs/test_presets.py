"""The per-task presets: agent, reward model and learner settings."""

from __future__ import annotations

from prefgym.runs import agent_preset, learner_preset, reward_model_preset

ARCADE_ID = "prefgym/ArcadePong-v0"


def test_the_presets_use_the_cheap_cnns_for_arcade_games() -> None:
    assert agent_preset(ARCADE_ID).cnn == "compact"
    assert reward_model_preset(ARCADE_ID).cnn == "compact"
    assert not reward_model_preset(ARCADE_ID).use_actions
    assert agent_preset("prefgym/Pong-v5").cnn == "nature"
    assert reward_model_preset("prefgym/Pong-v5").cnn == "christiano"
    assert reward_model_preset("prefgym/CartPole-v1").use_actions


def test_acrobots_reward_model_is_the_narrow_one() -> None:
    assert reward_model_preset("prefgym/Acrobot-v1").hidden_sizes == (32, 32)
    assert reward_model_preset("prefgym/CartPole-v1").hidden_sizes == (64, 64)


def test_only_acrobots_first_fit_takes_min_steps() -> None:
    assert learner_preset(ARCADE_ID).min_steps == learner_preset("prefgym/Pong-v5").min_steps == 0
    assert learner_preset("prefgym/CartPole-v1").min_steps == 0
    assert learner_preset("prefgym/Acrobot-v1").min_steps == 200
    assert not learner_preset("prefgym/Acrobot-v1").normalise  # the loop normalises
