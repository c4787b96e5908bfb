"""Text trainers: token-level PPO, GRPO and DPO, and their seats in the preference loop.

``TokenAgent`` (PPO, GRPO) and ``DPOAgent`` are the loop's online agent and
offline trainer; ``ResponseGroups`` is the text game's query source. Each
trainer's config is in the cheap ``prefgym.agents.text.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.agents.text._agents import (
        DPOAgent,
        ResponseGroups,
        TokenAgent,
        preference_dataset,
    )
    from prefgym.agents.text._dpo import (
        DPOTrainer,
        PreferenceDataset,
        dataset_from_judgments,
        dpo_loss,
    )
    from prefgym.agents.text._grpo import GRPOTrainer, group_advantages
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
    from prefgym.agents.text.config import DPOConfig, GRPOConfig, TokenPPOConfig

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
