"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.judges._ai_feedback import AIFeedbackOracle
    from prefgym.judges._oracles import (
        PRESETS,
        Calibration,
        Oracle,
        SyntheticOracle,
        TeacherConfig,
        describe_presets,
        parse_oracle,
        preference_probability,
        weighted_returns,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
