"""TODO face docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym._faces import lazy_face

if TYPE_CHECKING:
    from prefgym.agents.text._config import TokenPPOConfig
    from prefgym.agents.text._dpo import (
        DPOConfig,
        DPOTrainer,
        PreferenceDataset,
        dataset_from_judgments,
        dpo_loss,
    )
    from prefgym.agents.text._grpo import (
        GRPOConfig,
        GRPOTrainer,
        group_advantages,
    )
    from prefgym.agents.text._losses import (
        AdaptiveKLController,
        FixedKLController,
        gae,
        kl_penalised_rewards,
        last_token_index,
        masked_mean,
        masked_var,
        policy_loss,
        value_loss,
        whiten,
    )
    from prefgym.agents.text._rollouts import (
        Prompts,
        draw_prompts,
        judged_segments,
        kl_to_reference,
        measure,
        pad_responses,
        sample_segments,
        win_rate,
    )
    from prefgym.agents.text._token_ppo import TokenPPO

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
