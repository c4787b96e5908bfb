from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prefgym.agents.text import (
    DPOAgent,
    DPOTrainer,
    ResponseGroups,
    TokenAgent,
    TokenPPO,
    preference_dataset,
)
from prefgym.agents.text.config import DPOConfig, TokenPPOConfig
from prefgym.envs.text_env import TextEnv
from prefgym.lm import LanguageModel
from prefgym.loop import SegmentCache
from prefgym.store import PreferenceStore, training_data


def _groups(sft: LanguageModel, store: PreferenceStore, k: int, seed: int = 0) -> ResponseGroups:
    return ResponseGroups(
        sft.model,
        TextEnv("sentiment", codec=sft.codec),
        store,
        np.random.default_rng(seed),
        torch.Generator().manual_seed(seed),
        k=k,
        temperature=1.0,
        round_of=lambda progress: progress // 10,
    )


def test_each_prompts_k_responses_are_one_query_of_their_round(
    sft: LanguageModel, tmp_path: Path
) -> None:
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        groups, segments = _groups(sft, store, k=3), SegmentCache(store)
        groups.ask(4, 0, segments)
        groups.ask(2, 25, segments)
        queries = store.queries()
        assert [len(q.segment_ids) for q in queries] == [3] * 6
        assert [q.round for q in queries] == [0] * 4 + [2] * 2
        assert groups.reference() == store.segment_ids(round=0) and len(groups.reference()) == 12
        for query in queries:  # one prompt, K responses
            prompts = {s.info["prompt"] for s in store.get_segments(query.segment_ids)}
            assert len(prompts) == 1


def test_judgments_become_dpo_pairs_rankings_as_all_their_pairs(
    sft: LanguageModel, tmp_path: Path
) -> None:
    with PreferenceStore(tmp_path / "store.sqlite") as store:
        segments = SegmentCache(store)
        _groups(sft, store, k=2).ask(3, 0, segments)
        _groups(sft, store, k=3, seed=1).ask(1, 0, segments)
        pair_a, pair_b, pair_c, ranking = store.queries()
        store.add_judgments(
            [(pair_a.id, "left"), (pair_b.id, "right"), (pair_c.id, "equal")], "oracle"
        )
        store.add_ranking(ranking.id, list(ranking.segment_ids), "oracle")
        data = training_data(store)
        dataset = preference_dataset(data, segments.load(data.segment_ids), sft.codec)
    assert len(dataset) == 2 + 3  # the tie teaches DPO nothing; a 3-ranking is 3 pairs


def test_without_a_reward_model_the_agent_scores_zero_and_counts_updates(
    sft: LanguageModel,
) -> None:
    env = TextEnv("sentiment", codec=sft.codec)
    config = TokenPPOConfig(batch_size=4, minibatch_size=4, ppo_epochs=1)
    ppo = TokenPPO(
        sft.model,
        config,
        reward_fn=lambda *_: torch.zeros(0),
        eos_id=sft.codec.eos_id,
        pad_id=sft.codec.pad_id,
        generator=torch.Generator().manual_seed(0),
    )
    seen: list[tuple[int, dict[str, float]]] = []
    agent = TokenAgent(
        ppo,
        env,
        np.random.default_rng(0),
        iteration=5,
        on_iteration=lambda i, s: seen.append((i, s)),
    )
    agent.set_reward(None)
    progressed: list[int] = []
    agent.learn(2, progressed.append)
    assert agent.steps == 7 and [i for i, _ in seen] == [6, 7] and progressed == [1, 1]
    stats = seen[0][1]
    assert stats["train_score"] == 0.0  # only the KL penalty is paid
    assert -1.0 <= stats["batch_true_score"] <= 1.0 and 0.0 <= stats["batch_fluency"] <= 1.0


def test_dpo_trains_only_once_it_has_judgments(sft: LanguageModel) -> None:
    trainer = DPOTrainer(
        sft.model,
        DPOConfig(),
        eos_id=sft.codec.eos_id,
        pad_id=sft.codec.pad_id,
        generator=torch.Generator().manual_seed(0),
    )
    agent = DPOAgent(trainer, sft.codec, iteration=0, on_iteration=lambda i, s: None)
    with pytest.raises(RuntimeError, match="DPO trains on judgments"):
        agent.learn(1)
