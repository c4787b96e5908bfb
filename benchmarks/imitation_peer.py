"""One preference-comparisons run of the `imitation` library on a prefgym task.

This script runs inside the separate virtual environment that
``benchmarks/label_efficiency.py`` creates (``benchmarks/.venv-imitation``,
imitation 1.0.1 with the gymnasium 0.29 and Stable-Baselines3 2.2 it pins),
never in prefgym's own environment. It takes a JSON spec and writes a JSON
result::

    python benchmarks/imitation_peer.py SPEC.json RESULT.json

The task is the prefgym environment itself (the repository root is put on
``sys.path``; ``prefgym.envs`` needs nothing but gymnasium), with a wrapper that
pays ``info["true_reward"]`` as the reward, because imitation's synthetic
gatherer reads the trajectories' rewards. The agent is SB3 PPO with the
hyper-parameters of prefgym's preset (passed in the spec), trained by
imitation on its learned reward. The result is scored like prefgym's
``evaluate_true_return``: the deterministic policy on fresh envs, episode
``k`` reset with seed ``eval_seed + k``, summing ``info["true_reward"]``.
The spec's ``env_kwargs`` go to ``gymnasium.make`` (``{"base_id": "Hopper-v4"}``
where gymnasium 0.29 lacks the v5 task), and the trained policy's weights are
saved to ``policy_path`` so that the caller can score it on prefgym's own task.

imitation's components are set as its ``train_preference_comparisons``
script sets them by default, except for what the spec fixes (label budget,
agent steps, segment length, iterations, the teacher):

* reward net: ``BasicRewardNet`` (MLP 32-32 on observation and action) with a
  ``RunningNorm`` input layer, wrapped in ``NormalizedRewardNet(RunningNorm)``;
* fragmenter: ``RandomFragmenter(warning_threshold=0)`` (no active selection);
* reward trainer: ``BasicRewardTrainer`` with the cross-entropy loss, ``epochs=3``,
  batch size 32, learning rate 1e-3;
* ``PreferenceComparisons``: ``transition_oversampling=1``,
  ``initial_comparison_frac=0.1``, ``initial_epoch_multiplier=200``,
  ``query_schedule="hyperbolic"``, unbounded comparison queue;
* ``AgentTrainer``: ``exploration_frac=0``.

The teacher is imitation's ``SyntheticGatherer``: ``temperature = 1 / beta``
(0, a deterministic teacher, for ``beta = inf``), sampling hard labels; a
B-Pref mistake rate ``eps_mistake`` flips each hard label with that
probability. B-Pref's skip, equal and myopic teachers have no counterpart in
imitation; the caller passes only ``beta`` and ``eps_mistake``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_true_reward_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """The prefgym task with its hidden reward paid as the reward."""
    import gymnasium as gym

    class TrueReward(gym.Wrapper):
        def step(self, action: Any) -> Any:
            obs, _, terminated, truncated, info = self.env.step(action)
            return obs, float(info["true_reward"]), terminated, truncated, info

    return TrueReward(gym.make(env_id, **env_kwargs))


def evaluate(
    model: Any, env_id: str, env_kwargs: dict[str, Any], episodes: int, seed: int
) -> tuple[float, float]:
    """Mean and std of the deterministic policy's true return over fresh episodes."""
    import gymnasium as gym

    envs = [gym.make(env_id, **env_kwargs) for _ in range(episodes)]
    observations = np.stack([env.reset(seed=seed + k)[0] for k, env in enumerate(envs)])
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    while running.any():
        active = np.flatnonzero(running)
        actions, _ = model.predict(observations[active], deterministic=True)
        for index, action in zip(active, actions, strict=True):
            obs, _, terminated, truncated, info = envs[index].step(action)
            returns[index] += float(info["true_reward"])
            observations[index] = obs
            running[index] = not (terminated or truncated)
    for env in envs:
        env.close()
    return float(returns.mean()), float(returns.std())


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import imitation
    import torch
    from imitation.algorithms import preference_comparisons as pc
    from imitation.data.wrappers import RolloutInfoWrapper
    from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    import prefgym

    torch.set_num_threads(1)
    prefgym.register_envs()
    env_id, seed, ppo = spec["env_id"], int(spec["seed"]), spec["ppo"]
    env_kwargs = dict(spec.get("env_kwargs", {}))
    teacher = spec["teacher"]
    beta, eps_mistake = float(teacher["beta"]), float(teacher["eps_mistake"])

    class MistakeGatherer(pc.SyntheticGatherer):
        """imitation's synthetic gatherer, then each hard label flipped with ``eps``."""

        def __init__(self, eps: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.eps = eps

        def __call__(self, fragment_pairs: Any) -> np.ndarray:
            preferences = super().__call__(fragment_pairs)
            if self.eps > 0:
                hard = preferences != 0.5
                flip = self.rng.random(len(preferences)) < self.eps
                preferences = np.where(hard & flip, 1.0 - preferences, preferences)
            return preferences.astype(np.float32)

    started, cpu_started = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(seed)
    venv = DummyVecEnv(
        [lambda: RolloutInfoWrapper(make_true_reward_env(env_id, env_kwargs))] * int(ppo["n_envs"])
    )
    venv.seed(seed)
    reward_net = NormalizedRewardNet(
        BasicRewardNet(
            venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm
        ),
        RunningNorm,
    )
    agent = PPO(
        "MlpPolicy",
        venv,
        n_steps=int(ppo["n_steps"]),
        batch_size=int(ppo["batch_size"]),
        n_epochs=int(ppo["n_epochs"]),
        gae_lambda=float(ppo["gae_lambda"]),
        gamma=float(ppo["gamma"]),
        learning_rate=float(ppo["learning_rate"]),
        clip_range=float(ppo["clip_range"]),
        ent_coef=float(ppo["ent_coef"]),
        vf_coef=float(ppo["vf_coef"]),
        max_grad_norm=float(ppo["max_grad_norm"]),
        use_sde=bool(ppo.get("use_sde", False)),
        sde_sample_freq=int(ppo.get("sde_sample_freq", -1)),
        policy_kwargs={"net_arch": list(ppo["net_arch"])},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    trainer = pc.AgentTrainer(
        algorithm=agent, reward_fn=reward_net, venv=venv, exploration_frac=0.0, rng=rng
    )
    gatherer = MistakeGatherer(
        eps_mistake, temperature=0.0 if math.isinf(beta) else 1.0 / beta, sample=True, rng=rng
    )
    reward_trainer = pc.BasicRewardTrainer(
        pc.PreferenceModel(reward_net), pc.CrossEntropyRewardLoss(), rng=rng, epochs=3
    )
    comparisons = pc.PreferenceComparisons(
        trainer,
        reward_net,
        num_iterations=int(spec["iterations"]),
        fragmenter=pc.RandomFragmenter(warning_threshold=0, rng=rng),
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=int(spec["segment_length"]),
        transition_oversampling=1,
        initial_comparison_frac=0.1,
        allow_variable_horizon=False,
        query_schedule="hyperbolic",
    )
    stats = comparisons.train(
        total_timesteps=int(spec["steps"]), total_comparisons=int(spec["labels"])
    )
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    mean, std = evaluate(agent, env_id, env_kwargs, int(spec["episodes"]), int(spec["eval_seed"]))
    if "policy_path" in spec:
        torch.save(agent.policy.state_dict(), spec["policy_path"])
    return {
        "true_return_mean": mean,
        "true_return_std": std,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "agent_steps": int(agent.num_timesteps),
        "comparisons": len(comparisons.dataset),
        "reward_accuracy": float(stats["reward_accuracy"]),
        "imitation": imitation.__version__,
    }


def main() -> int:
    if len(sys.argv) != 3:
        print(f"usage: {sys.argv[0]} SPEC.json RESULT.json", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = run(spec)
    Path(sys.argv[2]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
