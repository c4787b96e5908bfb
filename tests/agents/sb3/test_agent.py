"""The SB3 agent behind the loop's protocol (``prefgym.agents.sb3._agent``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC

from prefgym.agents.sb3 import (
    AgentConfig,
    LearnedRewardVecEnv,
    PayAtRolloutEnd,
    SB3Agent,
    make_agent,
    make_vec_env,
    no_reward,
)
from tests.agents.sb3.helpers import CARTPOLE, PENDULUM, obs_plus_action, pendulum_reward, stored

# small PPO rollouts (2 envs x 32 steps), one cheap epoch: each learn() takes a fraction of a second
SMALL_PPO = AgentConfig(n_envs=2, n_steps=32, batch_size=32, n_epochs=1)


class Fixed:
    """A stand-in reward model: the agent pays what its ``step_rewards`` gives."""

    def __init__(self, step_rewards: Any) -> None:
        self.step_rewards = step_rewards


def constant(value: float) -> Fixed:
    return Fixed(lambda observations, actions: np.full(len(observations), value))


@pytest.mark.parametrize("env_id", [CARTPOLE, PENDULUM])
def test_rewards_paid_at_the_rollouts_end_train_ppo_exactly_as_rewards_paid_each_step(
    env_id: str,
) -> None:
    # 7-step episodes end inside the rollouts, so time-limit bootstrapping is exercised
    config = AgentConfig(n_envs=2, n_steps=16, batch_size=8, n_epochs=2)
    buffers = []
    for deferred in (False, True):
        venv = LearnedRewardVecEnv(
            make_vec_env(env_id, 2, seed=0, env_kwargs={"max_episode_steps": 7}),
            obs_plus_action,
            deferred=deferred,
        )
        model = make_agent(config, venv, seed=0)
        assert isinstance(model, PPO)
        model.learn(32, callback=PayAtRolloutEnd(venv) if deferred else None)
        buffer = model.rollout_buffer
        buffers.append((buffer.rewards.copy(), buffer.returns.copy(), buffer.advantages.copy()))
    for now, later in zip(*buffers, strict=True):
        np.testing.assert_allclose(later, now, rtol=1e-5, atol=1e-6)
    assert np.abs(buffers[0][0]).sum() > 0


def test_an_agent_pays_and_relabels_the_learned_reward_times_its_reward_scale() -> None:
    config = AgentConfig(algo="sac", n_envs=1, learning_starts=10_000, reward_scale=0.25)
    agent = SB3Agent.create(PENDULUM, config, seed=0, segment_length=5)
    agent.set_reward(Fixed(obs_plus_action))  # type: ignore[arg-type]
    agent.learn(12)
    model = agent.model
    assert isinstance(model, SAC) and model.replay_buffer is not None
    observations, actions = stored(model, 12)
    np.testing.assert_allclose(
        model.replay_buffer.rewards[:12].reshape(-1),
        0.25 * obs_plus_action(observations, actions),
        atol=1e-5,
    )
    agent.set_reward(Fixed(pendulum_reward))  # type: ignore[arg-type]
    np.testing.assert_allclose(  # relabelled with the scale too
        model.replay_buffer.rewards[:12].reshape(-1),
        0.25 * pendulum_reward(observations, actions),
        rtol=1e-5,
    )
    agent.set_reward(None)  # every judgment a tie: nothing is paid
    assert not model.replay_buffer.rewards[:12].any()
    with pytest.raises(ValueError, match="reward_scale must be a finite number > 0, got -1"):
        AgentConfig(reward_scale=-1)


@pytest.mark.parametrize(("algo", "env_id"), [("ppo", CARTPOLE), ("sac", PENDULUM)])
def test_create_wraps_the_envs_for_the_algorithm(algo: str, env_id: str) -> None:
    config = AgentConfig(algo=algo, n_envs=2, n_steps=32, batch_size=32, reward_scale=0.5)  # type: ignore[arg-type]
    agent = SB3Agent.create(env_id, config, seed=0, segment_length=5)
    assert isinstance(agent.model, PPO if algo == "ppo" else SAC)
    assert agent.model.get_env() is agent.envs and isinstance(agent.envs, LearnedRewardVecEnv)
    assert agent.envs.num_envs == 2 and agent.envs.reward_scale == 0.5
    assert agent.envs.deferred == (algo == "ppo")  # PPO is paid at each rollout's end
    assert agent.steps == 0


def test_no_reward_is_zero_for_every_step() -> None:
    rewards = no_reward(np.ones((5, 4)), np.ones(5))
    assert rewards.dtype == np.float32 and rewards.shape == (5,) and not rewards.any()


@pytest.mark.parametrize("paid", [3.0, None])
def test_the_agent_is_paid_the_model_or_nothing(paid: float | None) -> None:
    agent = SB3Agent.create(PENDULUM, SMALL_PPO, seed=0, segment_length=5)
    agent.set_reward(constant(7.0))  # type: ignore[arg-type]
    agent.set_reward(None if paid is None else constant(paid))  # type: ignore[arg-type]
    agent.learn(512)  # 8 rollouts of 32 steps per env; each env ends a 200-step episode
    expected = 0.0 if paid is None else paid
    # the last rollout (steps 224 to 255) holds no time limit, to whose step PPO would add a
    # bootstrapped value
    np.testing.assert_array_equal(agent.model.rollout_buffer.rewards, expected)
    episodes = agent.envs.recent_episodes()
    assert [e.length for e in episodes] == [200, 200]
    for episode in episodes:
        assert episode.learned_return == pytest.approx(expected * 200)
        assert episode.true_return < -1  # Pendulum's own reward, whatever the agent is paid


def test_recent_metrics_are_nan_before_any_episode_then_the_last_twenty_means() -> None:
    # SAC before learning_starts only collects: 24 Pendulum episodes in about a second
    config = AgentConfig(algo="sac", n_envs=4, learning_starts=100_000, buffer_size=10_000)
    agent = SB3Agent.create(PENDULUM, config, seed=0, segment_length=5)
    before = agent.recent_metrics()
    assert before.keys() == {"true_return", "learned_return"}
    assert all(math.isnan(value) for value in before.values())
    agent.set_reward(Fixed(lambda observations, actions: observations[:, 0] + 2.0))  # type: ignore[arg-type]
    agent.learn(4800)
    episodes = agent.envs.recent_episodes()
    assert len(episodes) == 24
    last = episodes[-20:]
    means = {
        name: [np.mean([getattr(e, name) for e in group]) for group in (episodes, last)]
        for name in ("true_return", "learned_return")
    }
    assert all(whole != recent for whole, recent in means.values())  # the window matters
    metrics = agent.recent_metrics()
    for name, (_, recent) in means.items():
        assert metrics[name] == pytest.approx(recent)
    assert metrics["true_return"] < -100  # whole episodes of Pendulum, not single steps
    assert 200 < metrics["learned_return"] < 600  # 200 steps paid cos(angle) + 2


def test_learn_reports_progress_and_trains_whole_ppo_rollouts() -> None:
    agent = SB3Agent.create(CARTPOLE, SMALL_PPO, seed=0, segment_length=5)
    reported: list[int] = []
    agent.learn(10, progress=reported.append)
    assert agent.steps == 64 and reported == [2] * 32  # a rollout of 2 envs x 32 steps
    agent.learn(64)
    assert agent.steps == 128  # counted on, not reset
    assert agent.envs.unsettled_steps == 0  # every rollout was paid at its end


def test_pop_segments_hands_over_each_segment_once() -> None:
    agent = SB3Agent.create(CARTPOLE, SMALL_PPO, seed=0, segment_length=5)
    assert agent.pop_segments() == []
    agent.learn(64)
    segments = agent.pop_segments()
    assert segments and all(s.length == 5 and s.env_id == CARTPOLE for s in segments)
    assert all(s.observations.shape == (5, 4) for s in segments)
    assert agent.pop_segments() == []


def test_the_policy_acts_on_a_batch(rng: np.random.Generator) -> None:
    agent = SB3Agent.create(CARTPOLE, SMALL_PPO, seed=0, segment_length=5)
    observations = rng.normal(size=(6, 4)).astype(np.float32) * 0.05
    actions = agent.policy()(observations)
    assert actions.shape == (6,) and set(actions.tolist()) <= {0, 1}


def _parameters(model: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.parametrize(("algo", "env_id"), [("ppo", CARTPOLE), ("sac", PENDULUM)])
def test_save_and_load_give_the_same_agent(
    algo: str, env_id: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    config = AgentConfig(
        algo=algo,  # type: ignore[arg-type]
        n_envs=2,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        learning_starts=16,
        sac_batch_size=16,
    )
    agent = SB3Agent.create(env_id, config, seed=0, segment_length=5)
    agent.set_reward(Fixed(obs_plus_action))  # type: ignore[arg-type]
    agent.learn(64)
    fresh = SB3Agent.create(env_id, config, seed=0, segment_length=5)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(_parameters(agent.model), _parameters(fresh.model), strict=True)
    ]
    assert any(changed)  # trained: a fresh agent of this seed would not pass for it
    path = tmp_path / "agent"
    agent.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]  # no temporary left
    loaded = SB3Agent.load(path, env_id, config, seed=1, segment_length=5)
    assert type(loaded.model) is type(agent.model) and loaded.steps == agent.steps == 64
    assert loaded.envs.deferred == agent.envs.deferred
    for a, b in zip(_parameters(loaded.model), _parameters(agent.model), strict=True):
        torch.testing.assert_close(a, b)
    space = agent.envs.observation_space
    observations = np.stack([space.sample() for _ in range(8)]).clip(-1, 1)
    np.testing.assert_array_equal(
        loaded.model.predict(observations, deterministic=True)[0],
        agent.model.predict(observations, deterministic=True)[0],
    )
    agent.save(path)  # written over in place
    loaded.learn(64)
    assert loaded.steps == 128
