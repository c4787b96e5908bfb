from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

import pytest

from prefgym.cli._flags import FlagGroup, check_resume, field_docs


@dataclass(frozen=True)
class Settings:
    """A config like the suite's: documented fields with defaults."""

    env_id: str = "prefgym/CartPole-v1"
    """The environment."""
    steps: int = 100
    """Steps of the run, 100% of them."""
    lr: float = 1e-3
    """Step size."""
    t0: float | None = None
    """Decay constant; None means steps / 5."""
    mode: Literal["fast", "slow"] = "fast"
    """How to go."""
    verbose: bool = False
    """Say more."""
    band: tuple[float, float] = (1.0, 2.0)
    """Not spelled on a command line."""


def _parse(group: FlagGroup, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    parser.add_argument("--resume")
    group.add_to(parser)
    return parser.parse_args(argv)


def test_one_option_per_field_with_its_docstring_and_default_as_help() -> None:
    parser = argparse.ArgumentParser()
    FlagGroup(Settings, names={"env_id": "env"}).add_to(parser)
    text = " ".join(parser.format_help().split())
    assert "--env ENV_ID The environment. (default: prefgym/CartPole-v1)" in text
    assert "--steps STEPS Steps of the run, 100% of them. (default: 100)" in text
    assert "--t0 T0 Decay constant; None means steps / 5." in text  # no "(default: None)"
    assert "--mode {fast,slow}" in text and "(default: false)" in text
    assert "--band" not in text  # a tuple has no command-line spelling


def test_given_options_become_typed_fields_and_the_rest_keep_their_defaults() -> None:
    group = FlagGroup(Settings, names={"env_id": "env"})
    args = _parse(group, ["--steps", "7", "--lr", "0.5", "--t0", "2e6", "--verbose", "yes"])
    given = group.given(args)
    assert given == {"steps": 7, "lr": 0.5, "t0": 2e6, "verbose": True}
    assert Settings(**given) == Settings(steps=7, lr=0.5, t0=2e6, verbose=True)
    assert group.flags_given(args) == ["--steps", "--lr", "--t0", "--verbose"]
    assert group.given(_parse(group, [])) == {}


def test_bad_values_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    group = FlagGroup(Settings)
    for argv, message in (
        (["--mode", "quick"], "invalid choice: 'quick'"),
        (["--steps", "many"], "invalid int value: 'many'"),
        (["--verbose", "perhaps"], "expected true or false, got 'perhaps'"),
    ):
        with pytest.raises(SystemExit):
            _parse(group, argv)
        assert message in capsys.readouterr().err


def test_prefixes_and_aliases_spell_nested_configs() -> None:
    group = FlagGroup(Settings, prefix="ppo-", aliases={"lr": ["--learning-rate"]})
    assert group.given(_parse(group, ["--ppo-steps", "3"])) == {"steps": 3}
    assert group.given(_parse(group, ["--learning-rate", "0.1"])) == {"lr": 0.1}
    assert group.flags_given(_parse(group, ["--ppo-lr", "0.1"])) == ["--ppo-lr"]


def test_resume_refuses_settings_beside_it() -> None:
    group = FlagGroup(Settings)
    args = _parse(group, ["--resume", "runs/a", "--steps", "3", "--out", "b"])
    with pytest.raises(ValueError, match=r"config.json; drop --steps, --out"):
        check_resume(args, group.flags_given(args))
    check_resume(_parse(group, ["--resume", "runs/a"]), [])


def test_field_docs_read_each_docstring_as_one_line() -> None:
    docs = field_docs(Settings)
    assert docs["t0"] == "Decay constant; None means steps / 5."
    assert set(docs) == {"env_id", "steps", "lr", "t0", "mode", "verbose", "band"}
