from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.lm.config import TextRewardConfig


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="backbone"):
        TextRewardConfig(backbone="bert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_members"):
        TextRewardConfig(n_members=0)


def test_model_specs_are_checked_without_loading_anything(tmp_path: Path) -> None:
    from prefgym.lm.config import check_model_spec

    for spec in ("base", "sft", "sft-sentiment", str(tmp_path)):
        check_model_spec(spec)
    for spec, message in (
        ("sfx", "got 'sfx'"),
        ("sft-poetry", "sft-sentiment"),
        (str(tmp_path / "missing"), "no such directory"),
    ):
        with pytest.raises(ValueError, match=message):
            check_model_spec(spec)
