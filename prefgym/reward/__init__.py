"""Reward models and the one learner that fits any of them to judgments.

Gymnasium spaces are read as flat features (``encode``) and described as JSON for
checkpoints. An ensemble of networks scores segments (per-step rewards summed: an MLP for
vectors, a CNN for pixels; the text game's transformer heads live in
``prefgym.lm``); ``Learner`` fits it with the Bradley-Terry loss (Plackett-Luce
for rankings), held-out early stopping and a tuned L2. Settings are in the
cheap ``prefgym.reward.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.reward._cnn import CHRISTIANO, COMPACT, CnnRewardNet, CnnTrunk
    from prefgym.reward._divergence import DivergenceError
    from prefgym.reward._ensemble import (
        METADATA_FILE,
        WEIGHTS_FILE,
        RewardEnsemble,
        build_reward_net,
    )
    from prefgym.reward._learner import FitReport, Learner, fit
    from prefgym.reward._losses import bradley_terry_loss, plackett_luce_loss, ranking_pairs_loss
    from prefgym.reward._nets import MlpRewardNet, RewardNet
    from prefgym.reward._spaces import (
        encode,
        encoded_size,
        is_image_space,
        read_model_metadata,
        space_from_json,
        space_to_json,
    )
    from prefgym.reward.config import (
        ACTIVATIONS,
        Activation,
        LearnerConfig,
        RankingLoss,
        RewardModelConfig,
    )

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
