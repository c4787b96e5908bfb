from __future__ import annotations

import pytest

from prefgym.lm.config import TextRewardConfig


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="backbone"):
        TextRewardConfig(backbone="bert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_members"):
        TextRewardConfig(n_members=0)
