"""Language models of the text game: building, pretraining, sampling, reward heads.

The game's own small GPT-2 (pretrained on the grammar's corpus, then SFT per
task), local Hugging Face directories and SmolLM2; fast sampling and per-token
log-probabilities; transformer reward models with a scalar head. The reward
model's settings are in the cheap ``prefgym.lm.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefgym.faces import lazy_face

if TYPE_CHECKING:
    from prefgym.lm._gpt2_fast import (
        TanhGELU,
        fuse_gelu,
    )
    from prefgym.lm._model import (
        METADATA_FILE,
        HFCodec,
        LanguageModel,
        LanguageModelConfig,
        build_model,
        load_smollm2,
        n_parameters,
        save_language_model,
        smollm2_directory,
    )
    from prefgym.lm._pretraining import (
        PretrainConfig,
        SftConfig,
        encode_example,
        pretrain,
        sft,
    )
    from prefgym.lm._reward_model import (
        MINILM_PACKAGE,
        TextRewardEnsemble,
        TextRewardNet,
        load_text_reward_model,
        save_text_reward_model,
        text_reward_model,
    )
    from prefgym.lm._sampling import (
        position_ids,
        response_hidden,
        response_logits,
        response_logits_and_hidden,
        response_logprobs,
        response_mask,
        sample_responses,
        sample_with_logprobs,
        token_logprobs,
        trim_left_padding,
    )
    from prefgym.lm._zoo import (
        base_model,
        evaluate_samples,
        generate_responses,
        load_language_model,
        sft_model,
    )
    from prefgym.lm.config import Backbone, TextRewardConfig

__getattr__, __dir__, __all__ = lazy_face(__name__, __file__)
