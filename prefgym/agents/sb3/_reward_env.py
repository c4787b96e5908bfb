"""A Stable-Baselines3 VecEnv wrapper that pays the agent a learned reward.

A prefgym environment gives the agent reward 0 and reports the hidden task
reward in ``info["true_reward"]``. :class:`LearnedRewardVecEnv` replaces the
zeros with ``reward_fn(observations, actions)``: the reward of taking action
``a_t`` in observation ``o_t``, computed in one batched call per vector step.
It also keeps the bookkeeping the preference loop needs: per-episode true and
learned returns, a count of steps, and (optionally) the training rollouts cut
into segments for the judge.

SB3's vectorised environments reset a finished episode in the same step: the
observation they return for it is the first one of the next episode, and the
last one of the finished episode is in ``infos[i]["terminal_observation"]``.
The reward of a step only needs the observation the action was taken in, which
the wrapper keeps from the previous step, so the reset observation never leaks
into a finishing step's reward, and it becomes the observation of the next one.

An on-policy agent needs no reward before its rollout is complete, so with
``deferred=True`` the wrapper pays 0 at each step, keeps the rollout's
(observation, action) pairs, and :meth:`~LearnedRewardVecEnv.settle` computes
all their learned rewards in one batched call at the rollout's end
(:func:`prefgym.agents.sb3._build.pay_rollout_rewards` hands them to PPO). One call
per rollout instead of one per vector step is what keeps a preference run
close to the cost of plain RL.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from prefgym.segments import TRUE_REWARD_KEY, RewardFn, Segment, SegmentCutter


class EpisodeRecord(NamedTuple):
    """Summary of one finished training episode."""

    true_return: float
    """Sum of the hidden true rewards."""
    learned_return: float
    """Sum of the rewards the agent was paid."""
    length: int
    """Number of steps."""


class LearnedRewardVecEnv(VecEnvWrapper):
    """Replaces a VecEnv's rewards with a learned reward of (observation, action).

    Infos pass through unchanged, except that the info of an environment whose
    episode ended gains ``"episode_true_return"`` and ``"episode_learned_return"``.
    Wrap :class:`~stable_baselines3.common.vec_env.VecMonitor` around this
    wrapper (not under it) to have SB3 log the learned returns.
    """

    def __init__(
        self,
        venv: VecEnv,
        reward_fn: RewardFn | None = None,
        *,
        segment_length: int | None = None,
        max_segments: int = 10_000,
        max_episodes: int = 100,
        env_id: str | None = None,
        deferred: bool = False,
        settle_batch: int = 4096,
        reward_scale: float = 1.0,
        pay_true: bool = False,
    ) -> None:
        """Wrap ``venv``.

        Args:
            venv: A VecEnv whose infos carry ``"true_reward"`` (any ``prefgym/`` env).
            reward_fn: The learned reward; None pays 0 until :meth:`set_reward_fn`.
            segment_length: Cut the rollouts into segments of this many steps for
                :meth:`pop_segments`; None cuts nothing.
            max_segments: Most segments kept between two :meth:`pop_segments`;
                the oldest are dropped first.
            max_episodes: Most finished episodes kept for :meth:`recent_episodes`.
            env_id: Recorded on the segments; None reads the id of the wrapped envs.
            deferred: Pay 0 at each step and compute the learned rewards of all steps
                since the last :meth:`settle` in one batch when it is called; finished
                episodes reach :meth:`recent_episodes` then, and their infos carry no
                ``"episode_learned_return"``.
            settle_batch: Most (observation, action) pairs per ``reward_fn`` call in
                :meth:`settle`.
            reward_scale: The agent is paid ``reward_scale * reward_fn(o, a)``.
            pay_true: Pay each step's hidden ``info["true_reward"]`` instead (the plain-RL
                baseline of a sweep: the same envs, segments and records as a preference
                run); ``reward_fn`` and ``deferred`` must be left unset.
        """
        super().__init__(venv)
        if segment_length is not None and segment_length < 1:
            raise ValueError(f"segment_length must be >= 1 or None, got {segment_length}")
        if max_segments < 1:
            raise ValueError(f"max_segments must be >= 1, got {max_segments}")
        if max_episodes < 1:
            raise ValueError(f"max_episodes must be >= 1, got {max_episodes}")
        if settle_batch < 1:
            raise ValueError(f"settle_batch must be >= 1, got {settle_batch}")
        if pay_true and (deferred or reward_fn is not None):
            raise ValueError("pay_true pays the hidden reward: leave reward_fn and deferred unset")
        if not (np.isfinite(reward_scale) and reward_scale > 0):
            raise ValueError(f"reward_scale must be a finite number > 0, got {reward_scale}")
        self._reward_fn = reward_fn
        self.pay_true = pay_true
        self.reward_scale = reward_scale
        self.deferred = deferred
        self.settle_batch = settle_batch
        self._unsettled: list[tuple[np.ndarray, np.ndarray]] = []
        self._unsettled_ends: list[tuple[int, int, float, int]] = []
        """Episodes that ended since the last settle: (step, env, true return, length)."""
        self.segment_length = segment_length
        self.env_id = _env_id(venv) if env_id is None else env_id
        self._segments: deque[Segment] = deque(maxlen=max_segments)
        self._episodes: deque[EpisodeRecord] = deque(maxlen=max_episodes)
        self._cutter: SegmentCutter | None = None
        self._last_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._true_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._learned_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._total_steps = 0
        self._new_cutter()

    @property
    def reward_fn(self) -> RewardFn | None:
        """The reward paid to the agent now; None pays 0."""
        return self._reward_fn

    def set_reward_fn(self, reward_fn: RewardFn | None) -> None:
        """Pay ``reward_fn`` from the next step on (e.g. after refitting the reward model)."""
        self._reward_fn = reward_fn

    @property
    def total_steps(self) -> int:
        """Environment steps taken through this wrapper, summed over the ``num_envs`` envs."""
        return self._total_steps

    def recent_episodes(self) -> list[EpisodeRecord]:
        """The most recently finished episodes, oldest first."""
        return list(self._episodes)

    def pop_segments(self) -> list[Segment]:
        """Return the segments cut since the last call, oldest first, and forget them."""
        segments = list(self._segments)
        self._segments.clear()
        return segments

    def reset(self) -> np.ndarray:
        """Reset every env; unfinished episodes and partial segments are dropped."""
        obs = _as_array(self.venv.reset())
        self._last_obs = obs.copy()
        self._true_returns[:] = 0.0
        self._learned_returns[:] = 0.0
        self._lengths[:] = 0
        self._unsettled.clear()
        self._unsettled_ends.clear()
        self._new_cutter()
        return obs

    @property
    def unsettled_steps(self) -> int:
        """Vector steps taken since the last :meth:`settle` (always 0 unless ``deferred``)."""
        return len(self._unsettled)

    def settle(self) -> np.ndarray:
        """The learned rewards of every step since the last call, computed in batches.

        Returns:
            Rewards of shape ``(steps, num_envs)``, in step order; all zeros while
            there is no reward function.
        """
        steps = len(self._unsettled)
        rewards = np.zeros((steps, self.num_envs), dtype=np.float32)
        if steps and self._reward_fn is not None:
            observations = np.stack([o for o, _ in self._unsettled])
            actions = np.stack([a for _, a in self._unsettled])
            n = steps * self.num_envs
            observations = observations.reshape(n, *observations.shape[2:])
            actions = actions.reshape(n, *actions.shape[2:])
            flat = rewards.reshape(n)
            for start in range(0, n, self.settle_batch):
                stop = min(start + self.settle_batch, n)
                flat[start:stop] = self.paid_rewards(observations[start:stop], actions[start:stop])
        ends = iter(self._unsettled_ends)
        end = next(ends, None)
        for step in range(steps):
            self._learned_returns += rewards[step]
            while end is not None and end[0] == step:
                _, env, true_return, length = end
                learned = float(self._learned_returns[env])
                self._episodes.append(EpisodeRecord(true_return, learned, length))
                self._learned_returns[env] = 0.0
                end = next(ends, None)
        self._unsettled.clear()
        self._unsettled_ends.clear()
        return rewards

    def step_async(self, actions: np.ndarray) -> None:
        """Send ``actions`` to the envs, keeping a copy for the reward."""
        self._actions = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Wait for the step and pay the learned reward of (last observation, action)."""
        if self._last_obs is None or self._actions is None:
            raise RuntimeError("call reset() and then step_async(actions) before step_wait()")
        obs, _, dones, infos = self.venv.step_wait()
        observations, actions = self._last_obs, self._actions
        true_rewards = _true_rewards(infos)
        if self.pay_true:
            rewards = true_rewards.astype(np.float32)
        elif self.deferred:
            rewards = np.zeros(self.num_envs, dtype=np.float32)
            self._unsettled.append((observations, actions))
        else:
            rewards = self._learned_rewards(observations, actions)

        self._total_steps += self.num_envs
        self._true_returns += true_rewards
        self._learned_returns += rewards
        self._lengths += 1
        infos = list(infos)
        for i in np.flatnonzero(dones):
            true_return, length = float(self._true_returns[i]), int(self._lengths[i])
            if self.deferred:  # its learned return is known once the rollout is settled
                self._unsettled_ends.append((len(self._unsettled) - 1, int(i), true_return, length))
                infos[i] = dict(infos[i], episode_true_return=true_return)
            else:
                learned_return = float(self._learned_returns[i])
                self._episodes.append(EpisodeRecord(true_return, learned_return, length))
                infos[i] = dict(
                    infos[i],
                    episode_true_return=true_return,
                    episode_learned_return=learned_return,
                )
                self._learned_returns[i] = 0.0
            self._true_returns[i] = 0.0
            self._lengths[i] = 0

        if self._cutter is not None:
            for segment in self._cutter.add(observations, actions, true_rewards, dones):
                info = {"total_steps": self._total_steps}
                self._segments.append(dataclasses.replace(segment, info=info))

        next_obs = _as_array(obs)
        self._last_obs = next_obs.copy()  # for a finished env, the first of its next episode
        self._actions = None
        return next_obs, rewards, dones, infos

    def _learned_rewards(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if self._reward_fn is None:
            return np.zeros(self.num_envs, dtype=np.float32)
        return self.paid_rewards(observations, actions)

    def paid_rewards(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """What the agent is paid for ``(observations, actions)``: ``reward_scale * reward_fn``.

        Returns:
            Rewards ``(n,)`` float32 of observations ``(n, *obs_shape)`` and actions
            ``(n, *act_shape)``.
        """
        if self._reward_fn is None:
            raise RuntimeError("no reward function yet: call set_reward_fn first")
        rewards = np.asarray(self._reward_fn(observations, actions), dtype=np.float32)
        if rewards.shape != (len(observations),):
            raise ValueError(
                f"reward_fn must return one reward per (observation, action) pair, shape "
                f"({len(observations)},), got shape {rewards.shape}; reduce any ensemble or "
                "per-step axis before returning"
            )
        return rewards if self.reward_scale == 1 else rewards * np.float32(self.reward_scale)

    def _new_cutter(self) -> None:
        if self.segment_length is None:
            self._cutter = None
        else:
            self._cutter = SegmentCutter(self.num_envs, self.segment_length, env_id=self.env_id)


def _as_array(obs: VecEnvObs) -> np.ndarray:
    if not isinstance(obs, np.ndarray):
        raise TypeError(
            f"LearnedRewardVecEnv needs array observations, got {type(obs).__name__}; "
            "flatten dict or tuple observation spaces first (gymnasium.wrappers.FlattenObservation)"
        )
    return np.array(obs, copy=True)  # a VecEnv may reuse its observation buffer


def _true_rewards(infos: list[dict[str, Any]]) -> np.ndarray:
    missing = [i for i, info in enumerate(infos) if TRUE_REWARD_KEY not in info]
    if missing:
        raise KeyError(
            f"the infos of envs {missing} have no {TRUE_REWARD_KEY!r} key (keys: "
            f"{sorted(infos[missing[0]])}); LearnedRewardVecEnv needs an env that reports its "
            "hidden reward there: use a prefgym/ env such as 'prefgym/CartPole-v1'"
        )
    return np.array([info[TRUE_REWARD_KEY] for info in infos], dtype=np.float64)


def _env_id(venv: VecEnv) -> str:
    try:
        spec = venv.get_attr("spec", indices=[0])[0]
    except AttributeError:
        return ""
    return "" if spec is None else str(spec.id)


class TrueRewardVecEnv(VecEnvWrapper):
    """Pays each step's ``info["true_reward"]``: plain RL on the hidden reward, a baseline."""

    def __init__(self, venv: VecEnv) -> None:
        """Wrap ``venv``, whose infos carry ``"true_reward"`` (any ``prefgym/`` env)."""
        super().__init__(venv)

    def reset(self) -> VecEnvObs:
        """Reset every env."""
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env and pay its true reward."""
        observations, _, dones, infos = self.venv.step_wait()
        return observations, _true_rewards(infos).astype(np.float32), dones, infos
