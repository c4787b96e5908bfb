"""Learning from preferences on pixels: ArcadePong with a CNN reward model and CnnPolicy PPO.

The runs are wired by ``benchmarks/pixel_speed.py`` (as ``prefgym.cli._main`` wires a
run, with the reward model's compact trunk for the arcade games).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefgym.agents.sb3 import evaluate_true_return
from prefgym.reward import RewardEnsemble
from prefgym.runs import agent_preset
from prefgym.segments import Segment, make_vector_env, random_policy, rollout_segments

ENV_ID = "prefgym/ArcadePong-v0"
BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
SLOW_FRACTION = 0.5
"""The slow run must gain at least this share of what PPO on the true reward gains over
random play at the same number of steps. Measured with seed 0 (benchmarks/pixel_speed.py
--learning): random -12.5, PPO on the true reward -3.85, preferences -3.6, a share of 1.03."""


@pytest.fixture(scope="module")
def pixel_speed():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_pixel_speed", BENCHMARKS / "pixel_speed.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _expert_segments(n: int, length: int, seed: int) -> list[Segment]:
    """Segments of the hand-written expert, which wins far more points than random play."""
    env = gym.make(ENV_ID)
    observation, _ = env.reset(seed=seed)
    segments = []
    while len(segments) < n:
        observations, actions, rewards = [], [], []
        for _ in range(length):
            action = env.unwrapped.game.expert()
            observations.append(observation)
            actions.append(action)
            observation, _, _, truncated, info = env.step(action)
            rewards.append(info["true_reward"])
            if truncated:
                observation, _ = env.reset()
        segments.append(Segment(np.stack(observations), np.array(actions), np.array(rewards)))
    return segments


def _pair_accuracy(predicted: np.ndarray, true: np.ndarray) -> float:
    """Share of the pairs with different true returns that ``predicted`` orders the same way."""
    left, right = np.triu_indices(len(true), k=1)
    differ = true[left] != true[right]
    agree = np.sign(predicted[left] - predicted[right]) == np.sign(true[left] - true[right])
    return float(agree[differ].mean())


def test_a_short_preference_run_improves_pong_from_preferences(pixel_speed, tmp_path) -> None:
    # About 5 minutes on one core: 49k agent steps, 150 labels, one reward model. PPO on the
    # true reward itself shows no gain before about 30k steps.
    model, ensemble, _, rows = pixel_speed.train_preferences(
        ENV_ID, steps=49_152, labels=150, seed=0, out=tmp_path, members=1, round_steps=8192
    )
    assert rows and rows[-1]["labels_judged"] == 150
    assert model.policy.features_extractor.__class__.__name__ == "CompactCNN"
    # the agent trained on the fitted reward model's step rewards, scaled for PPO
    venv = model.get_env().venv
    assert venv.reward_fn == ensemble.step_rewards
    assert venv.reward_scale == agent_preset(ENV_ID).reward_scale < 1

    # on fresh segments the learned reward orders play as the hidden score does
    env = make_vector_env(ENV_ID, 4)
    env.action_space.seed(7)
    fresh = rollout_segments(env, random_policy(env.action_space), 60, 25, seed=7)
    fresh += _expert_segments(20, 25, seed=7)
    true = np.array([s.true_return for s in fresh])
    learned = ensemble.segment_returns(fresh).mean(0)
    assert _pair_accuracy(learned, true) >= 0.8  # measured 0.86
    assert learned[60:].mean() > learned[:60].mean()  # the expert's play over random play
    untrained = RewardEnsemble(
        ensemble.observation_space,
        ensemble.action_space,
        ensemble.config,
        generator=torch.Generator().manual_seed(1),
    )
    assert _pair_accuracy(untrained.segment_returns(fresh).mean(0), true) < 0.6

    # and the agent plays clearly better than chance: measured -8.1 against random play's -12.5
    rng = np.random.default_rng(0)
    random_return = pixel_speed.policy_return(
        ENV_ID, lambda env, _: int(rng.integers(env.action_space.n)), 20, 10_000
    )
    ours = evaluate_true_return(model, ENV_ID, 20, 10_000)[0]
    assert ours >= random_return + 2.5, (ours, random_return)


@pytest.mark.slow
def test_preference_ppo_reaches_a_fraction_of_true_reward_ppo(pixel_speed, tmp_path) -> None:
    # 100k steps and 200 labels with three reward models: about 25 minutes on two CPU cores
    steps = 100_000
    random_return = pixel_speed.policy_return(
        ENV_ID, lambda env, _: int(env.action_space.sample()), 20, 10_000
    )
    model, *_ = pixel_speed.train_preferences(ENV_ID, steps, labels=200, seed=0, out=tmp_path)
    ours = evaluate_true_return(model, ENV_ID, 20, 10_000)[0]
    true_model, _ = pixel_speed.train_true_reward(ENV_ID, steps, seed=0)
    true = evaluate_true_return(true_model, ENV_ID, 20, 10_000)[0]
    assert true > random_return + 3, "PPO on the true reward should learn ArcadePong"
    assert ours - random_return >= SLOW_FRACTION * (true - random_return), (
        ours,
        true,
        random_return,
    )
