"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym._faces import lazy_face

if TYPE_CHECKING:
    from prefgym.reward._cnn import (
        CHRISTIANO,
        COMPACT,
        CnnRewardNet,
        CnnTrunk,
    )
    from prefgym.reward._ensemble import (
        METADATA_FILE,
        WEIGHTS_FILE,
        MlpRewardNet,
        RewardEnsemble,
        RewardModelConfig,
        RewardNet,
        build_reward_net,
    )
    from prefgym.reward._learner import (
        FitReport,
        Learner,
        LearnerConfig,
        fit,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
