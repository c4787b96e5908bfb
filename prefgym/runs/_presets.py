"""Agent hyper-parameters that suit each task (after the RL Baselines3 Zoo's tuned values)."""

from __future__ import annotations

from dataclasses import replace

from prefgym.agents.sb3 import AgentConfig, Algo
from prefgym.reward import LearnerConfig, RewardModelConfig

_PPO: dict[str, AgentConfig] = {
    "prefgym/CartPole-v1": AgentConfig(
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gae_lambda=0.8,
        gamma=0.98,
        learning_rate=1e-3,
    ),
    "prefgym/Acrobot-v1": AgentConfig(n_envs=16, n_steps=256, n_epochs=4, gae_lambda=0.94),
    "prefgym/MountainCarContinuous-v0": AgentConfig(
        n_envs=1,
        n_steps=8,
        batch_size=8,
        n_epochs=10,
        gae_lambda=0.9,
        gamma=0.9999,
        learning_rate=7.77e-5,
        ent_coef=0.00429,
        clip_range=0.1,
        max_grad_norm=5,
    ),
    "prefgym/Pendulum-v1": AgentConfig(
        n_envs=4,
        n_steps=1024,
        batch_size=64,
        n_epochs=10,
        gae_lambda=0.95,
        gamma=0.9,
        learning_rate=1e-3,
        use_sde=True,
        sde_sample_freq=4,
    ),
    "prefgym/LunarLander-v3": AgentConfig(
        n_envs=16,
        n_steps=1024,
        batch_size=64,
        n_epochs=4,
        gae_lambda=0.98,
        gamma=0.999,
        ent_coef=0.01,
    ),
}
_ARCADE_PPO = AgentConfig(
    n_envs=8,
    n_steps=64,
    batch_size=256,
    n_epochs=10,
    gamma=0.95,
    learning_rate=5e-4,
    ent_coef=0.01,
    net_arch=(64,),
    cnn="compact",
    reward_scale=0.1,
)
"""PPO on the arcade games from pixels on a CPU: the compact extractor, many epochs. The learned
reward is paid at a tenth of its std-1 scale, near that of the games' sparse scores: at full
scale the value loss takes the clipped gradient and the policy learns little."""
_ATARI_PPO = AgentConfig(
    n_envs=8,
    n_steps=128,
    batch_size=256,
    n_epochs=4,
    gamma=0.99,
    learning_rate=2.5e-4,
    clip_range=0.1,
    ent_coef=0.01,
    net_arch=(256,),
    cnn="nature",
)
"""The RL Baselines3 Zoo's PPO for Atari (constant rates instead of linear decay)."""
_ARCADE = ("ArcadePong-v0", "ArcadeBreakout-v0", "ArcadeEnduro-v0")
_ATARI = ("Pong", "Breakout", "Enduro", "BeamRider", "Qbert", "Seaquest", "SpaceInvaders")
_PPO.update({f"prefgym/{name}": _ARCADE_PPO for name in _ARCADE})
_PPO.update({f"prefgym/{name}-v5": _ATARI_PPO for name in _ATARI})

_SAC: dict[str, AgentConfig] = {
    "prefgym/Pendulum-v1": AgentConfig(algo="sac", n_envs=1, learning_rate=1e-3),
    "prefgym/MountainCarContinuous-v0": AgentConfig(
        algo="sac",
        n_envs=1,
        learning_rate=3e-4,
        buffer_size=50_000,
        sac_batch_size=512,
        gamma=0.9999,
        tau=0.01,
        train_freq=32,
        gradient_steps=32,
        learning_starts=0,
    ),
}
_MUJOCO_PPO = AgentConfig(
    n_envs=1,
    n_steps=2048,
    batch_size=64,
    n_epochs=10,
    gae_lambda=0.95,
    gamma=0.99,
    learning_rate=3e-4,
)


def agent_preset(env_id: str, algo: Algo = "ppo") -> AgentConfig:
    """Tuned settings for ``algo`` on ``env_id``; SB3's defaults for tasks without a preset."""
    table = _PPO if algo == "ppo" else _SAC
    if env_id in table:
        return table[env_id]
    if algo == "ppo" and env_id.endswith("-v5"):
        return _MUJOCO_PPO
    return replace(AgentConfig(), algo=algo)


def reward_model_preset(env_id: str, n_members: int = 3) -> RewardModelConfig:
    """The reward model that suits ``env_id``.

    Pixel tasks score observations only, r(o) as in Christiano et al.'s Atari
    runs: with the action as an input, a model fitted to early, random play
    learns a bias for or against single actions, which PPO exploits at once.
    The arcade games get the compact trunk, which fits faster on a CPU; Atari gets
    Christiano et al.'s. Acrobot's members have two hidden layers of 32 rather than
    64: its fits are the part of its wall time the preference loop adds.
    """
    name = env_id.split("/")[-1]
    if name in _ARCADE:
        return RewardModelConfig(n_members=n_members, use_actions=False, cnn="compact")
    if name.removesuffix("-v5") in _ATARI:
        return RewardModelConfig(n_members=n_members, use_actions=False, cnn="christiano")
    if name == "Acrobot-v1":
        return RewardModelConfig(n_members=n_members, hidden_sizes=(32, 32))
    return RewardModelConfig(n_members=n_members)


def learner_preset(env_id: str) -> LearnerConfig:
    """How the loop fits ``env_id``'s reward model (it normalises the model itself).

    Acrobot's first fit takes 200 Adam steps before its held-out loss may stop it: its 50
    initial judgments make one step an epoch, and what r(o, a) must learn there, torque
    times the second joint's speed, needs more than the handful of steps that early
    stopping allows. Other tasks stop on the held-out loss from the first epoch.
    """
    name = env_id.split("/")[-1]
    return LearnerConfig(normalise=False, min_steps=200 if name == "Acrobot-v1" else 0)
