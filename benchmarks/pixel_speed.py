"""Pixel tasks: how fast they step, and how well preferences teach ArcadePong.

Speed: steps per second, single-threaded, of each arcade game (the bare env,
and through ``gymnasium.make`` with its wrappers) and of each Atari game
through the full preprocessing (frame skip 4, max-pool, score blanking,
84x84 resize, frame stack 4).

Learning (``--learning``): on ArcadePong, the preference loop with the
``oracle`` teacher (an ensemble of three CNN reward models with the compact
trunk, disagreement-based queries, segments of 25 frames, a refit every
10,000 steps) against PPO on the true reward, with the same PPO preset, seed and steps. Both
policies are scored by their true return (deterministic, 20 episodes of 500
steps); the ratio is of the improvement over a uniformly random policy,
``(preference - random) / (true reward - random)``. The hand-written expert is
shown for scale.

It prints tables and writes ``speed.csv`` (and ``learning.csv``) to ``--out``::

    OMP_NUM_THREADS=1 python benchmarks/pixel_speed.py
    OMP_NUM_THREADS=1 python benchmarks/pixel_speed.py --learning --steps 100000 --labels 200
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import prefgym
from prefgym.agents.sb3 import TrueRewardVecEnv
from prefgym.envs.registration import ENVS
from prefgym.runs import format_table

HERE = Path(__file__).resolve().parent
EPISODES = 20
EVAL_SEED = 10_000


def steps_per_second(env: gym.Env, steps: int, seed: int = 0) -> float:
    """Random-action steps per second (best of three runs of ``steps``)."""
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=steps)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for action in actions:
            *_, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        best = max(best, steps / (time.perf_counter() - start))
    return best


def speed_rows(arcade_steps: int, atari_steps: int) -> list[dict[str, Any]]:
    rows = []
    for info in ENVS:
        if info.family == "arcade":
            made = gym.make(info.id)
            bare = steps_per_second(made.unwrapped, arcade_steps)
            wrapped = steps_per_second(made, arcade_steps)
            rows.append({"env": info.id, "bare_steps_per_s": bare, "make_steps_per_s": wrapped})
        elif info.family == "atari":
            if importlib.util.find_spec("ale_py") is None:
                continue
            made = gym.make(info.id)
            bare = steps_per_second(made.unwrapped, atari_steps)
            wrapped = steps_per_second(made, atari_steps)
            rows.append({"env": info.id, "bare_steps_per_s": bare, "make_steps_per_s": wrapped})
            made.close()
    return rows


def policy_return(env_id: str, act: Any, episodes: int, seed: int) -> float:
    """Mean true return of ``act(env, observation) -> action`` over fresh episodes."""
    total = 0.0
    for k in range(episodes):
        env = gym.make(env_id)
        observation, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(act(env, observation))
            total += info["true_reward"]
            done = terminated or truncated
        env.close()
    return total / episodes


def train_true_reward(env_id: str, steps: int, seed: int) -> tuple[Any, float]:
    """PPO (the env's preset) on the true reward; returns the model and the wall time."""
    from prefgym.agents.sb3 import make_agent, make_vec_env
    from prefgym.runs import agent_preset

    config = agent_preset(env_id)
    venv = TrueRewardVecEnv(make_vec_env(env_id, config.n_envs, seed))
    model = make_agent(config, venv, seed)
    start = time.perf_counter()
    model.learn(steps)
    return model, time.perf_counter() - start


def train_preferences(
    env_id: str,
    steps: int,
    labels: int,
    seed: int,
    out: Path,
    *,
    oracle: str = "oracle",
    members: int = 3,
    round_steps: int = 10_000,
    segment_length: int = 25,
) -> tuple[Any, Any, float, list[dict[str, float]]]:
    """The preference loop wired as ``prefgym.cli._main`` wires it, with the env's reward CNN.

    Returns:
        The trained SB3 model, the reward model, the wall time, and the metrics rows.
    """
    import torch

    from prefgym.agents.sb3 import SB3Agent
    from prefgym.judges import SyntheticOracle, parse_oracle
    from prefgym.loop import LoopConfig, control_loop
    from prefgym.reward import Learner, RewardEnsemble
    from prefgym.runs import agent_preset, learner_preset, reward_model_preset
    from prefgym.store import PreferenceStore

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0])
    teacher = SyntheticOracle(parse_oracle(oracle), oracle, rng.spawn(1)[0])
    agent = SB3Agent.create(env_id, agent_preset(env_id), seed=seed, segment_length=segment_length)
    ensemble = RewardEnsemble(
        agent.envs.observation_space,
        agent.envs.action_space,
        reward_model_preset(env_id, members),
        generator=torch.Generator().manual_seed(seed),
    )
    rows: list[dict[str, float]] = []
    config = LoopConfig(
        labels=labels, steps=steps, segment_length=segment_length, round_steps=round_steps
    )
    store = PreferenceStore(out / "store.sqlite")
    loop = control_loop(
        env_id=env_id,
        agent=agent,
        ensemble=ensemble,
        learner=Learner(learner_preset(env_id)),
        store=store,
        oracle=teacher,
        config=config,
        rng=rng,
        on_round=lambda result: _log_round(rows, result.row()),
    )
    start = time.perf_counter()
    loop.run()
    seconds = time.perf_counter() - start
    store.close()
    agent.save(out / "agent")
    ensemble.save(out / "reward_model")
    return agent.model, ensemble, seconds, rows


def _log_round(rows: list[dict[str, float]], row: dict[str, float]) -> None:
    rows.append(row)
    print(
        f"  round {row['round']:.0f}: step {row['step']:.0f}, labels {row['labels_judged']:.0f}, "
        f"true return {row['true_return']:.1f}, rm accuracy {row.get('rm_val_accuracy', 0):.2f}, "
        f"rm fit {row.get('rm_fit_seconds', 0):.0f}s, epochs {row.get('rm_epochs', 0):.0f}, "
        f"round {row['seconds']:.0f}s",
        flush=True,
    )


def learning_row(
    env_id: str, steps: int, labels: int, seed: int, out: Path, members: int = 3
) -> dict[str, Any]:
    from prefgym.agents.sb3 import evaluate_true_return

    rng = np.random.default_rng(seed)
    random_return = policy_return(
        env_id, lambda env, _: int(rng.integers(env.action_space.n)), EPISODES, EVAL_SEED
    )
    expert_return = policy_return(
        env_id, lambda env, _: env.unwrapped.game.expert(), EPISODES, EVAL_SEED
    )
    ours, _, ours_seconds, rows = train_preferences(
        env_id, steps, labels, seed, out / "run", members=members
    )
    ours_return = evaluate_true_return(ours, env_id, EPISODES, EVAL_SEED)[0]
    true, true_seconds = train_true_reward(env_id, steps, seed)
    true_return = evaluate_true_return(true, env_id, EPISODES, EVAL_SEED)[0]
    gain = true_return - random_return
    return {
        "env": env_id,
        "steps": steps,
        "labels": labels,
        "members": members,
        "seed": seed,
        "random": random_return,
        "expert": expert_return,
        "preferences": ours_return,
        "ppo_true": true_return,
        "ratio_vs_random": (ours_return - random_return) / gain if gain > 0 else float("nan"),
        "preferences_s": ours_seconds,
        "ppo_true_s": true_seconds,
        "final_rm_accuracy": rows[-1].get("rm_val_accuracy", float("nan")) if rows else None,
        "final_rm_correlation": rows[-1].get("rm_return_correlation", float("nan"))
        if rows
        else None,
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pixel_speed")
    parser.add_argument("--arcade-steps", type=int, default=20_000)
    parser.add_argument("--atari-steps", type=int, default=2_000)
    parser.add_argument("--learning", action="store_true", help="also run the ArcadePong study")
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps (--learning)")
    parser.add_argument("--labels", type=int, default=200, help="label budget (--learning)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--members", type=int, default=3, help="reward-model ensemble size")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed table")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    prefgym.register_envs()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_speed:
        rows = speed_rows(args.arcade_steps, args.atari_steps)
        print(
            format_table(
                ["env", "steps/s (bare env)", "steps/s (gymnasium.make)"],
                [[r["env"], r["bare_steps_per_s"], r["make_steps_per_s"]] for r in rows],
            )
        )
        write_csv(args.out / "speed.csv", rows)
    if args.learning:
        row = learning_row(
            "prefgym/ArcadePong-v0", args.steps, args.labels, args.seed, args.out, args.members
        )
        print()
        print(format_table(list(row), [list(row.values())]))
        write_csv(args.out / "learning.csv", [row])


if __name__ == "__main__":
    main()
