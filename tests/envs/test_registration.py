from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

import gymnasium as gym
import gymnasium.envs.registration as gym_registration
import pytest

import prefgym
from prefgym.envs.registration import (
    ALL_ENVS,
    ARCADE_HORIZON,
    ATARI_HORIZON,
    ENVS,
    NAMESPACE,
    TEXT_ENVS,
    TEXT_RESPONSE_LENGTH,
    EnvInfo,
    register_envs,
)

ARCADE = [pytest.param(info.id, id=info.id) for info in ENVS if info.family == "arcade"]
CHRISTIANO_SEVEN = ["Pong", "Breakout", "Enduro", "BeamRider", "Qbert", "Seaquest", "SpaceInvaders"]
FAMILIES = ("classic", "box2d", "mujoco", "arcade", "atari", "text")
ENTRY_MODULES = sorted({info.entry_point.split(":")[0] for info in ALL_ENVS})
"""The modules that hold the registered classes: none is imported by registering."""


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def _info(env_id: str) -> EnvInfo:
    return next(info for info in ALL_ENVS if info.id == env_id)


def test_three_games_are_registered() -> None:
    ids = [p.values[0] for p in ARCADE]
    expected = ["prefgym/ArcadePong-v0", "prefgym/ArcadeBreakout-v0", "prefgym/ArcadeEnduro-v0"]
    assert ids == expected


def test_registers_christianos_seven_games() -> None:
    assert [info.id for info in ENVS if info.family == "atari"] == [
        f"prefgym/{name}-v5" for name in CHRISTIANO_SEVEN
    ]
    assert all(info.extra == "atari" and info.horizon == ATARI_HORIZON for info in ENVS[-7:])


def test_a_typo_gets_gymnasiums_did_you_mean() -> None:
    with pytest.raises(gym.error.Error, match="Did you mean"):
        gym.make("prefgym/CartPol-v1")


def test_register_envs_is_idempotent() -> None:
    before = len(gym.registry)
    prefgym.register_envs()
    assert len(gym.registry) == before


def test_import_is_cheap() -> None:
    code = (
        "import sys, prefgym; print(sorted({'torch', 'pygame', 'transformers'} & set(sys.modules)))"
    )
    assert _python(code) == "[]"


def test_make_works_with_the_module_prefix_and_no_import() -> None:
    code = "import gymnasium; print(gymnasium.make('prefgym:prefgym/CartPole-v1').spec.id)"
    assert _python(code) == "prefgym/CartPole-v1"


def test_the_table_holds_every_task_once_under_the_namespace() -> None:
    assert ALL_ENVS == ENVS + TEXT_ENVS
    ids = [info.id for info in ALL_ENVS]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{NAMESPACE}/") for i in ids)
    assert {info.family for info in ALL_ENVS} == set(FAMILIES)
    assert all(info.family == "text" for info in TEXT_ENVS)
    assert not any(info.family == "text" for info in ENVS)
    families = [info.family for info in ALL_ENVS]
    assert families == sorted(families, key=FAMILIES.index)  # grouped as README's table


def test_each_family_needs_its_extra_and_has_its_horizon() -> None:
    for info in ALL_ENVS:
        expected_extra = None if info.family in ("classic", "arcade", "text") else info.family
        assert info.extra == expected_extra, info.id
        if info.family == "arcade":
            assert info.horizon == ARCADE_HORIZON and info.kwargs["game"] in info.id.lower()
        if info.family in ("classic", "box2d", "mujoco"):
            assert info.id == f"{NAMESPACE}/{info.kwargs['base_id']}"
            assert info.kwargs["termination"] in ("penalty", "absorb", "keep")
            mujoco = info.entry_point.endswith(":MujocoPreferenceEnv")
            assert mujoco == (info.family == "mujoco"), info.id
        if info.family == "text":
            assert info.kwargs["response_length"] == TEXT_RESPONSE_LENGTH
            tokens = info.id.endswith("Tokens-v0")
            assert info.horizon == (TEXT_RESPONSE_LENGTH if tokens else 1)
            assert info.entry_point.endswith(":TokenTextEnv" if tokens else ":TextEnv")


@pytest.mark.parametrize("info", [pytest.param(i, id=i.id) for i in ALL_ENVS])
def test_every_entry_is_registered_with_a_string_entry_point(info: EnvInfo) -> None:
    spec = gym.spec(info.id)
    assert isinstance(spec.entry_point, str) and spec.entry_point == info.entry_point
    module, _, name = info.entry_point.partition(":")
    assert module in ENTRY_MODULES and name.isidentifier()
    assert spec.namespace == NAMESPACE
    assert spec.max_episode_steps == info.horizon
    assert spec.kwargs == info.kwargs


def test_register_envs_fills_an_empty_registry_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh: dict[str, Any] = {}
    monkeypatch.setattr(gym_registration, "registry", fresh)
    monkeypatch.setattr(gym, "registry", fresh)
    register_envs()
    assert list(fresh) == [info.id for info in ALL_ENVS]
    specs = dict(fresh)
    register_envs()
    assert fresh.keys() == specs.keys()
    assert all(fresh[env_id] is spec for env_id, spec in specs.items())


def test_register_envs_leaves_an_existing_registration_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh: dict[str, Any] = {}
    monkeypatch.setattr(gym_registration, "registry", fresh)
    monkeypatch.setattr(gym, "registry", fresh)
    gym.register(id="prefgym/CartPole-v1", entry_point="somewhere.else:Env")
    register_envs()
    assert fresh["prefgym/CartPole-v1"].entry_point == "somewhere.else:Env"
    assert len(fresh) == len(ALL_ENVS)


def test_registering_imports_no_task_module() -> None:
    code = (
        "import sys, gymnasium, prefgym\n"
        f"print(sorted(set({ENTRY_MODULES!r}) & set(sys.modules)))\n"
        "gymnasium.make('prefgym/ArcadePong-v0')\n"
        f"print(sorted(set({ENTRY_MODULES!r}) & set(sys.modules)))"
    )
    before, after = _python(code).splitlines()
    assert before == "[]"
    assert after == "['prefgym.envs.arcade']"


@pytest.mark.parametrize(
    ("env_id", "attribute", "value"),
    [
        ("prefgym/CartPole-v1", "base_id", "CartPole-v1"),
        ("prefgym/Acrobot-v1", "shaping", 0.1),
        ("prefgym/ArcadeBreakout-v0", "game_name", "breakout"),
        ("prefgym/TextArithmetic-v0", "response_length", TEXT_RESPONSE_LENGTH),
    ],
)
def test_make_builds_the_class_the_table_names_with_its_arguments(
    env_id: str, attribute: str, value: object
) -> None:
    info = _info(env_id)
    env = gym.make(env_id)
    module, _, name = info.entry_point.partition(":")
    assert type(env.unwrapped) is getattr(importlib.import_module(module), name)
    assert env.spec is not None and env.spec.id == env_id
    assert env.spec.max_episode_steps == info.horizon
    assert getattr(env.unwrapped, attribute) == value
    env.close()


@pytest.mark.parametrize("info", [pytest.param(i, id=i.id) for i in ALL_ENVS])
def test_the_table_knows_each_action_space_kind(info: EnvInfo) -> None:
    if info.family in ("box2d", "mujoco", "atari"):
        pytest.importorskip({"box2d": "Box2D", "mujoco": "mujoco", "atari": "ale_py"}[info.family])
    env = gym.make(info.id)
    continuous = isinstance(env.action_space, gym.spaces.Box)
    env.close()
    assert info.actions == ("continuous" if continuous else "discrete")
