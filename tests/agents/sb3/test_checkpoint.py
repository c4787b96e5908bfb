"""Agent checkpoints in safetensors and JSON (``prefgym.agents.sb3._checkpoint``)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from stable_baselines3 import SAC
from stable_baselines3.common.save_util import recursive_getattr

from prefgym.agents.sb3 import AgentConfig, SB3Agent
from prefgym.files import settle_directory
from tests.agents.sb3.helpers import CARTPOLE, PENDULUM, obs_plus_action

CONFIGS = {
    "ppo": (CARTPOLE, AgentConfig(n_envs=2, n_steps=32, batch_size=32, n_epochs=1)),
    "sac": (
        PENDULUM,
        AgentConfig(algo="sac", n_envs=2, learning_starts=16, sac_batch_size=16),
    ),
}


class Fixed:
    """A stand-in reward model: the agent pays what its ``step_rewards`` gives."""

    def __init__(self, step_rewards: Any) -> None:
        self.step_rewards = step_rewards


def _trained(algo: str, seed: int = 0, steps: int = 64) -> SB3Agent:
    env_id, config = CONFIGS[algo]
    agent = SB3Agent.create(env_id, config, seed=seed, segment_length=5)
    agent.set_reward(Fixed(obs_plus_action))  # type: ignore[arg-type]
    agent.learn(steps)
    return agent


def _train_on(agent: SB3Agent) -> SB3Agent:
    agent.set_reward(Fixed(obs_plus_action))  # type: ignore[arg-type]
    agent.learn(64)
    return agent


def _load(algo: str, path: Path, seed: int = 1) -> SB3Agent:
    env_id, config = CONFIGS[algo]
    return SB3Agent.load(path, env_id, config, seed=seed, segment_length=5)


def _optimizers(agent: SB3Agent) -> dict[str, Any]:
    names = [n for n in agent.model._get_torch_save_params()[0] if n != "policy"]
    return {n: recursive_getattr(agent.model, n).state_dict() for n in names}


def _observations(agent: SB3Agent) -> np.ndarray:
    space = agent.envs.observation_space
    space.seed(0)
    return np.stack([space.sample() for _ in range(16)]).clip(-1, 1)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_round_trip_gives_the_same_predictions_optimizers_and_counters(
    algo: str, tmp_path: Path
) -> None:
    agent = _trained(algo)
    agent.save(tmp_path / "agent")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]  # nothing left beside it
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == [
        "agent.json",
        "agent.safetensors",
    ]
    loaded = _load(algo, tmp_path / "agent")
    fresh = SB3Agent.create(CONFIGS[algo][0], CONFIGS[algo][1], seed=1, segment_length=5)
    weights = agent.model.policy.state_dict()
    assert any(
        not torch.equal(value, fresh.model.policy.state_dict()[key])
        for key, value in weights.items()
    )  # trained: a fresh agent would not pass for it
    for key, value in loaded.model.policy.state_dict().items():
        assert torch.equal(value, weights[key]), key
    observations = _observations(agent)
    np.testing.assert_array_equal(
        loaded.model.predict(observations, deterministic=True)[0],
        agent.model.predict(observations, deterministic=True)[0],
    )
    for name, saved in _optimizers(agent).items():
        restored = _optimizers(loaded)[name]
        assert restored["param_groups"] == saved["param_groups"], name
        assert saved["state"] and restored["state"].keys() == saved["state"].keys(), name
        for index, entry in saved["state"].items():
            for stat, value in entry.items():
                torch.testing.assert_close(restored["state"][index][stat], value, rtol=0, atol=0)
    model = agent.model
    assert loaded.steps == agent.steps == 64
    assert loaded.model._n_updates == model._n_updates > 0
    assert loaded.model._current_progress_remaining == model._current_progress_remaining
    if isinstance(model, SAC):
        assert isinstance(loaded.model, SAC)
        torch.testing.assert_close(loaded.model.log_ent_coef, model.log_ent_coef, rtol=0, atol=0)
        assert model.log_ent_coef.item() != 0.0  # it has been trained
        optimizer = loaded.model.ent_coef_optimizer
        assert optimizer is not None
        assert optimizer.param_groups[0]["params"][0] is loaded.model.log_ent_coef


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_a_loaded_agent_trains_on_exactly_as_after_sb3s_own_load(algo: str, tmp_path: Path) -> None:
    """The same weights after 64 more steps as SB3's zip gives (the seed SB3 saved: 0)."""
    agent = _trained(algo)
    agent.save(tmp_path / "agent")
    agent.model.save(tmp_path / "agent.zip")
    env_id, config = CONFIGS[algo]
    # each loaded, then trained, in turn: loading seeds torch's global generator
    ours = _train_on(_load(algo, tmp_path / "agent", seed=0))
    theirs = _train_on(
        SB3Agent.load_sb3_zip(tmp_path / "agent.zip", env_id, config, seed=0, segment_length=5)
    )
    weights = [ours.model.policy.state_dict(), theirs.model.policy.state_dict()]
    assert ours.steps == theirs.steps == 128
    assert ours.model._n_updates == theirs.model._n_updates > agent.model._n_updates
    assert any(
        not torch.equal(v, agent.model.policy.state_dict()[k]) for k, v in weights[0].items()
    )
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_sac_with_a_fixed_entropy_coefficient_round_trips(tmp_path: Path) -> None:
    config = replace(CONFIGS["sac"][1], sac_ent_coef=0.3)
    agent = SB3Agent.create(PENDULUM, config, seed=0, segment_length=5)
    agent.learn(32)
    agent.save(tmp_path / "agent")
    assert "variables/ent_coef_tensor" in load_file(tmp_path / "agent" / "agent.safetensors")
    loaded = SB3Agent.load(tmp_path / "agent", PENDULUM, config, seed=1, segment_length=5)
    assert isinstance(loaded.model, SAC) and loaded.model.ent_coef_optimizer is None
    assert loaded.model.ent_coef_tensor.item() == pytest.approx(0.3)


def test_nan_in_the_weights_is_refused(tmp_path: Path) -> None:
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / "agent.safetensors"
    tensors = load_file(file)
    key = next(k for k in tensors if k.startswith("policy/") and k.endswith("weight"))
    tensors[key][0, 0] = float("nan")
    save_file(tensors, file)
    with pytest.raises(ValueError, match=f"{file} holds non-finite values in '{key}'.*damaged"):
        _load("ppo", tmp_path / "agent")


def test_infinity_in_the_optimizer_state_is_refused(tmp_path: Path) -> None:
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / "agent.safetensors"
    tensors = load_file(file)
    tensors["policy.optimizer/0/exp_avg_sq"][0] = float("inf")
    save_file(tensors, file)
    with pytest.raises(ValueError, match="non-finite values in 'policy.optimizer/0/exp_avg_sq'"):
        _load("ppo", tmp_path / "agent")


def test_nan_in_the_json_is_refused(tmp_path: Path) -> None:
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / "agent.json"
    meta = json.loads(file.read_text())
    meta["optimizers"]["policy.optimizer"]["param_groups"][0]["lr"] = float("nan")
    file.write_text(json.dumps(meta))  # json writes NaN, and reads it back
    with pytest.raises(ValueError, match="lr is not a finite number"):
        _load("ppo", tmp_path / "agent")


def _random(size: int) -> bytes:
    return np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "random bytes": lambda data: _random(len(data)),
    "a huge header size": lambda data: (2**40).to_bytes(8, "little") + data[8:],
    "a header of another shape": lambda data: b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", ["agent.safetensors", "agent.json"])
def test_a_damaged_file_is_named(name: str, damage: str, tmp_path: Path) -> None:
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / name
    file.write_bytes(DAMAGE[damage](file.read_bytes()))
    with pytest.raises(ValueError, match=str(file)):
        _load("ppo", tmp_path / "agent")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.pop("policy/action_net.bias"),
            "missing policy/action_net.bias|missing action_net.bias",
        ),
        (lambda t: t.update(extra=torch.zeros(1)), "unexpected tensors extra"),
        (
            lambda t: t.update({"policy/action_net.bias": torch.zeros(3)}),
            r"action_net.bias is .*\(3,\)",
        ),
        (lambda t: t.update({"policy.optimizer/99/exp_avg": torch.zeros(1)}), "does not have"),
        (
            lambda t: t.update({"policy.optimizer/0/exp_avg": torch.zeros(2)}),
            r"exp_avg is .*\(2,\)",
        ),
    ],
)
def test_tensors_that_do_not_fit_the_agent_are_refused(
    change: Any, message: str, tmp_path: Path
) -> None:
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / "agent.safetensors"
    tensors = load_file(file)
    change(tensors)
    save_file(tensors, file)
    with pytest.raises(ValueError, match=message) as error:
        _load("ppo", tmp_path / "agent")
    assert str(file) in str(error.value)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    _trained("ppo").save(tmp_path / "agent")
    config = replace(CONFIGS["ppo"][1], net_arch=(32, 32))
    with pytest.raises(ValueError, match=r"net_arch=\[64, 64\].*net_arch=\[32, 32\]"):
        SB3Agent.load(tmp_path / "agent", CARTPOLE, config, seed=0, segment_length=5)
    with pytest.raises(ValueError, match="holds a ppo agent"):
        SB3Agent.load(tmp_path / "agent", PENDULUM, CONFIGS["sac"][1], seed=0, segment_length=5)
    moved = replace(CONFIGS["ppo"][1], device="auto")  # where it runs may change
    assert SB3Agent.load(tmp_path / "agent", CARTPOLE, moved, seed=0, segment_length=5).steps == 64


def test_a_checkpoint_of_another_format_or_none_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no agent checkpoint"):
        _load("ppo", tmp_path / "agent")
    _trained("ppo").save(tmp_path / "agent")
    file = tmp_path / "agent" / "agent.json"
    meta = json.loads(file.read_text())
    file.write_text(json.dumps(dict(meta, version=99)))
    with pytest.raises(ValueError, match="version 99; this prefgym reads"):
        _load("ppo", tmp_path / "agent")
    file.write_text(json.dumps(dict(meta, counters={"num_timesteps": -1})))
    with pytest.raises(ValueError, match=f"{file} is not .*counters"):
        _load("ppo", tmp_path / "agent")
    (tmp_path / "agent" / "agent.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="agent.safetensors is missing"):
        _load("ppo", tmp_path / "agent")


@pytest.mark.parametrize(
    ("killed_at", "steps", "left_beside"),
    [
        ("agent.json", 64, []),  # while the new files are written
        ("agent.old", 64, ["agent.new"]),  # new files complete, the old still in place
        ("agent", 128, ["agent.new", "agent.old"]),  # between the swap's two renames
    ],
)
def test_a_kill_during_save_leaves_a_checkpoint_that_loads(
    killed_at: str,
    steps: int,
    left_beside: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "agent"
    agent = _trained("ppo")
    agent.save(path)
    agent.learn(64)
    replace_file = os.replace

    def killed(source: Any, target: Any) -> None:
        if Path(target).name == killed_at:
            raise OSError("killed")
        replace_file(source, target)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError, match="killed"):
        agent.save(path)
    monkeypatch.undo()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert [name for name in before if name != "agent"] == left_beside
    assert _load("ppo", path).steps == steps
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # a reader changes nothing
    settle_directory(path)  # what the next trainer does under its lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]
    assert _load("ppo", path).steps == steps
