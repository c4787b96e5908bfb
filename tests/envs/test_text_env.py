from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import prefgym  # noqa: F401  (registers the ids)
from prefgym.envs.registration import TEXT_ENVS, EnvInfo
from prefgym.envs.text_env import TextEnv, TokenTextEnv, left_pad
from prefgym.text import is_text_segment, text_segment, text_summary

TEXT_PARAMS = [pytest.param(info, id=info.id) for info in TEXT_ENVS]


def _response(env: TextEnv, text: str) -> np.ndarray:
    ids = env.codec.encode(text) + [env.codec.eos_id]
    action = np.full(env.response_length, env.codec.pad_id, dtype=np.int64)
    action[: len(ids)] = ids
    return action


@pytest.mark.parametrize("info", TEXT_PARAMS)
def test_passes_gymnasium_env_checker(info: EnvInfo) -> None:
    check_env(gym.make(info.id).unwrapped)


@pytest.mark.parametrize("info", TEXT_PARAMS)
def test_is_deterministic_under_a_seed(info: EnvInfo) -> None:
    env_id = info.id

    def run(seed: int) -> tuple[list[np.ndarray], list[dict]]:
        env = gym.make(env_id)
        env.action_space.seed(seed)
        observations, infos = [], []
        for episode in range(3):
            observation, _ = env.reset(seed=seed if episode == 0 else None)
            observations.append(
                observation["prompt_ids" if "prompt_ids" in observation else "context_ids"]
            )
            done = False
            while not done:
                _, reward, terminated, truncated, step_info = env.step(env.action_space.sample())
                assert reward == 0.0  # the true score is hidden
                done = terminated or truncated
            infos.append(step_info)
        return observations, infos

    first, second = run(5), run(5)
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]


def test_a_known_response_is_scored_and_its_text_reported() -> None:
    env = TextEnv("sentiment")
    env.reset(seed=0, options={"prompt": "review of the cafe : the soup was"})
    _, reward, terminated, _, info = env.step(_response(env, "great ."))
    assert (reward, terminated) == (0.0, True)
    assert info["response"] == "great ."
    assert info["true_score"] == pytest.approx(env.task.score(info["prompt"], "great ."))
    assert info["true_reward"] == pytest.approx(10 * info["true_score"])  # the default scale
    assert info["true_score"] > 0.5
    assert info["fluent"] and info["ended"]
    assert info["response_tokens"] == len(env.codec.encode("great ."))


def test_a_response_without_eos_is_not_fluent_and_not_ended() -> None:
    env = TextEnv("sentiment", response_length=4)
    env.reset(seed=0, options={"prompt": "review of the cafe : the soup was"})
    ids = (env.codec.encode("great . the staff were very nice .") * 2)[:4]
    info = env.step(np.array(ids))[4]
    assert not info["ended"] and not info["fluent"]
    assert info["response_tokens"] == 4


def test_step_checks_the_action_and_the_episode() -> None:
    env = TextEnv("arithmetic")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.response_length, dtype=np.int64))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="16 token ids"):
        env.step(np.zeros(3, dtype=np.int64))
    env.step(np.zeros(env.response_length, dtype=np.int64))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.response_length, dtype=np.int64))


def test_bad_arguments_name_the_value_and_the_fix() -> None:
    with pytest.raises(ValueError, match="Did you mean 'sentiment'"):
        TextEnv("sentimnt")
    with pytest.raises(ValueError, match="prompt_length"):
        TextEnv(prompt_length=0)
    with pytest.raises(ValueError, match="reward_scale"):
        TextEnv(reward_scale=0.0)
    with pytest.raises(ValueError, match="render_mode"):
        TextEnv(render_mode="rgb_array")
    with pytest.raises(ValueError, match="raise prompt_length"):
        TextEnv("arithmetic", prompt_length=3).reset(seed=0)


def test_left_pad_puts_the_prompt_at_the_end() -> None:
    ids, mask = left_pad([7, 8], 4, pad_id=0)
    assert ids.tolist() == [0, 0, 7, 8] and mask.tolist() == [0, 0, 1, 1]


def test_the_token_level_game_scores_what_the_single_step_game_scores() -> None:
    prompt = "question : what is 3 plus 4 ? answer :"
    single, tokens = TextEnv("arithmetic"), TokenTextEnv("arithmetic")
    single.reset(seed=0, options={"prompt": prompt})
    action = _response(single, "it is 7 .")
    expected = single.step(action)[4]
    observation, _ = tokens.reset(seed=0, options={"prompt": prompt})
    n_prompt = int(observation["context_mask"].sum())
    rewards = []
    for token in action:
        observation, reward, terminated, truncated, info = tokens.step(token)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert set(rewards) == {0.0}
    assert info == expected
    assert (
        int(observation["context_mask"].sum())
        == n_prompt + len(single.codec.encode("it is 7 .")) + 1
    )
    assert tokens.render() is None


def test_the_token_level_game_truncates_a_response_that_never_ends() -> None:
    env = TokenTextEnv("sentiment", response_length=3, render_mode="ansi")
    env.reset(seed=1)
    outcomes = [env.step(5)[2:4] for _ in range(3)]
    assert outcomes == [(False, False), (False, False), (False, True)]
    assert "|" in env.render()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(5)


def test_text_segments_carry_the_text_and_the_score() -> None:
    env = TextEnv("sentiment")
    observation, _ = env.reset(seed=0, options={"prompt": "review of the cafe : the soup was"})
    action = _response(env, "awful .")
    judged = env.step(action)[4]
    segment = text_segment(
        observation["prompt_ids"], action, judged, env_id="prefgym/TextSentiment-v0"
    )
    assert segment.length == 1 and is_text_segment(segment)
    assert segment.observations.shape == (1, env.prompt_length)
    assert segment.actions.shape == (1, env.response_length)
    assert segment.true_return == judged["true_reward"] < 0
    assert segment.info["response"] == "awful ." and segment.info["fluent"]
    summary = text_summary([segment, segment])
    assert summary["fluency"] == 1.0 and summary["true_score"] == judged["true_score"]
    assert segment.info["true_score"] * env.reward_scale == segment.true_return
    with pytest.raises(ValueError, match="judge_response"):
        text_segment(observation["prompt_ids"], action, {"prompt": "x"})
