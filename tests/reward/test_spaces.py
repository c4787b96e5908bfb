from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from prefgym.reward import encode, encoded_size, is_image_space, space_from_json, space_to_json


def test_encode_one_hot_discrete_with_start_and_flat_box() -> None:
    actions = torch.tensor([[3, 4], [5, 3]])
    encoded = encode(gym.spaces.Discrete(3, start=3), actions)
    assert encoded.shape == (2, 2, 3)
    assert encoded.dtype == torch.float32
    np.testing.assert_array_equal(encoded.argmax(-1).numpy(), [[0, 1], [2, 0]])
    np.testing.assert_array_equal(encoded.sum(-1).numpy(), np.ones((2, 2)))
    box = gym.spaces.Box(-1, 1, (2, 3))
    assert encode(box, torch.zeros(4, 5, 2, 3)).shape == (4, 5, 6)
    multi = gym.spaces.MultiDiscrete([2, 3])
    encoded = encode(multi, torch.tensor([[[1, 2]]]))
    np.testing.assert_array_equal(encoded.numpy(), [[[0, 1, 0, 0, 1]]])


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-1.0, 2.0, (3,)),
        gym.spaces.Box(-np.inf, np.inf, (2, 2), dtype=np.float64),
        gym.spaces.Discrete(5, start=-2),
        gym.spaces.MultiDiscrete([2, 4]),
        gym.spaces.MultiBinary(6),
    ],
    ids=["box", "box-inf", "discrete", "multidiscrete", "multibinary"],
)
def test_spaces_round_trip_through_json(space: gym.Space) -> None:
    assert space_from_json(json.loads(json.dumps(space_to_json(space)))) == space


def test_encoded_size_is_the_width_of_encode_and_images_are_rank_3_uint8() -> None:
    spaces = [
        gym.spaces.Discrete(3),
        gym.spaces.MultiDiscrete([2, 3]),
        gym.spaces.Box(-1, 1, (2, 3)),
        gym.spaces.MultiBinary(4),
    ]
    for space in spaces:
        x = torch.as_tensor(np.stack([space.sample() for _ in range(5)]))
        assert encode(space, x, n_lead=1).shape == (5, encoded_size(space))
    assert is_image_space(gym.spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8))
    assert not is_image_space(gym.spaces.Box(0, 255, (84, 84), dtype=np.uint8))
    assert not is_image_space(gym.spaces.Box(0, 1, (84, 84, 3)))


def test_model_metadata_is_read_checked(tmp_path: Path) -> None:
    from prefgym.reward import RewardModelConfig, read_model_metadata

    box = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    good = {
        "format": "f",
        "version": 1,
        "config": dataclasses.asdict(RewardModelConfig()),
        "observation_space": space_to_json(box),
        "action_space": space_to_json(gym.spaces.Discrete(2)),
    }
    file = tmp_path / "m.json"
    file.write_text(json.dumps(good))
    _, config, observations, actions = read_model_metadata(
        file, "meta", format="f", version=1, config=RewardModelConfig
    )
    assert config == RewardModelConfig() and observations == box and actions.n == 2
    for change, message in (
        ({"version": 2}, "version 2; this prefgym reads 'f' version 1"),
        ({"action_space": {"type": "Box", "dtype": "object"}}, "describes no model's spaces"),
        ({"config": {"hidden": "x"}}, r"m\.json: config: unknown setting 'hidden'"),
    ):
        file.write_text(json.dumps({**good, **change}))
        with pytest.raises(ValueError, match=message):
            read_model_metadata(file, "meta", format="f", version=1, config=RewardModelConfig)
