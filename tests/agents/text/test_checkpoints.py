"""Trainer checkpoints: what a save writes, what a load restores, what a load refuses, and
what a save over an older checkpoint (or one that crashes) leaves behind."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from prefgym.agents.text import _checkpoints
from prefgym.agents.text._checkpoints import (
    CheckpointedTrainer,
    load_trainer_checkpoint,
    save_trainer_checkpoint,
)
from tests.tiny_models import tiny_gpt2

EOS = 0
FILES = {"policy.safetensors", "trainer_state.safetensors", "trainer.json"}


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    lr: float = 0.01
    name: str = "toy"


class ToyTrainer(CheckpointedTrainer):
    """A trainer reduced to what checkpoints keep: a policy (and maybe its own reference),
    an optimizer, a generator that draws the batches, and a step count."""

    kind = "toy"

    def __init__(self, seed: int, config: ToyConfig = ToyConfig(), own_reference: bool = True):
        self.config = config
        self.policy = tiny_gpt2(seed, eos_id=EOS, dropout=0.0)
        self.reference = tiny_gpt2(seed + 1, eos_id=EOS) if own_reference else None
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def _checkpointed(self) -> tuple[nn.Module, nn.Module | None]:
        return self.policy, self.reference

    def train(self, steps: int) -> None:
        for _ in range(steps):
            ids = torch.randint(2, 64, (2, 5), generator=self.generator)
            self.optimizer.zero_grad()
            self.policy(input_ids=ids, labels=ids).loss.backward()
            self.optimizer.step()
            self.steps += 1

    def save_now(self, directory: Path) -> Path:
        return save_trainer_checkpoint(
            directory,
            kind=self.kind,
            config=dataclasses.asdict(self.config),
            policy=self.policy,
            ref_policy=self.reference,
            optimizer=self.optimizer,
            generator=self.generator,
            steps=self.steps,
        )

    def load_into(self, directory: Path, *, kind: str = "toy", **config: Any) -> int:
        return load_trainer_checkpoint(
            directory,
            kind=kind,
            config=dataclasses.asdict(self.config) | config,
            policy=self.policy,
            ref_policy=self.reference,
            optimizer=self.optimizer,
            generator=self.generator,
        )


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(module: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = module.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def assert_same_optimizer(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    # hyperparameters go through JSON, where a tuple (AdamW's betas) becomes a list
    assert json.loads(json.dumps(sa["param_groups"])) == json.loads(json.dumps(sb["param_groups"]))
    assert sa["state"].keys() == sb["state"].keys() and sa["state"]
    for index, entry in sa["state"].items():
        assert entry.keys() == sb["state"][index].keys()
        for name, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][index][name]))


# --- saving and loading ---------------------------------------------------------------------


@pytest.mark.parametrize("own_reference", [True, False])
def test_load_restores_parameters_optimizer_and_generator_exactly(
    tmp_path: Path, own_reference: bool
) -> None:
    saved = ToyTrainer(0, own_reference=own_reference)
    saved.train(3)
    saved.save_now(tmp_path / "ckpt")

    other = ToyTrainer(7, ToyConfig(), own_reference=own_reference)  # other weights, rng
    other.optimizer.param_groups[0]["lr"] = 0.5
    assert other.load_into(tmp_path / "ckpt") == 3
    assert_same_weights(other.policy, weights(saved.policy))
    if own_reference:
        assert_same_weights(other.reference, weights(saved.reference))
    assert_same_optimizer(other.optimizer, saved.optimizer)
    assert other.optimizer.param_groups[0]["lr"] == 0.01
    assert torch.equal(other.generator.get_state(), saved.generator.get_state())

    saved.train(2)  # both draw the same batches and take the same steps from here
    other.train(2)
    assert_same_weights(other.policy, weights(saved.policy))


def test_a_checkpoint_is_safetensors_and_json_only(tmp_path: Path) -> None:
    trainer = ToyTrainer(0)
    trainer.train(1)
    directory = trainer.save_now(tmp_path / "ckpt")
    assert directory == tmp_path / "ckpt"
    assert {p.name for p in directory.iterdir()} == FILES | {"reference.safetensors"}
    meta = json.loads((directory / "trainer.json").read_text())
    assert meta["format"] == "prefgym-lm-trainer" and meta["version"] == 2
    assert meta["kind"] == "toy" and meta["steps"] == 1 and meta["has_reference"]
    assert meta["config"] == {"lr": 0.01, "name": "toy"}

    given = ToyTrainer(0, own_reference=False)
    assert {p.name for p in given.save_now(tmp_path / "given").iterdir()} == FILES


def test_the_trainer_methods_save_and_resume_identically(tmp_path: Path) -> None:
    first = ToyTrainer(0)
    first.train(2)
    assert first.save(tmp_path / "ckpt") == tmp_path / "ckpt"
    resumed = ToyTrainer(4)
    resumed.load(tmp_path / "ckpt")
    assert resumed.steps == 2
    first.train(3)
    resumed.train(3)
    assert_same_weights(resumed.policy, weights(first.policy))
    assert_same_optimizer(resumed.optimizer, first.optimizer)
    with pytest.raises(ValueError, match="lr=0.01"):
        ToyTrainer(0, ToyConfig(lr=0.1)).load(tmp_path / "ckpt")


# --- what a load refuses ----------------------------------------------------------------------


def test_load_refuses_a_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no trainer checkpoint: expected trainer"):
        ToyTrainer(0).load_into(tmp_path / "missing")


def test_load_refuses_another_kind_config_format_or_reference(tmp_path: Path) -> None:
    ToyTrainer(0).save_now(tmp_path / "ckpt")
    live = ToyTrainer(3)
    before = weights(live.policy)
    with pytest.raises(ValueError, match="holds a 'toy' checkpoint; load it into a dpo trainer"):
        live.load_into(tmp_path / "ckpt", kind="dpo")
    with pytest.raises(ValueError, match="saved with lr=0.01, name='toy'"):
        live.load_into(tmp_path / "ckpt", lr=0.02, name="other")
    with pytest.raises(ValueError, match="saved with extra=None"):
        live.load_into(tmp_path / "ckpt", extra=1)
    without = ToyTrainer(3, own_reference=False)
    with pytest.raises(ValueError, match="holds a reference copy"):
        without.load_into(tmp_path / "ckpt")
    ToyTrainer(0, own_reference=False).save_now(tmp_path / "given")
    with pytest.raises(ValueError, match="lacks a reference copy"):
        live.load_into(tmp_path / "given")

    meta_file = tmp_path / "ckpt" / "trainer.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(meta | {"version": 3}))
    with pytest.raises(ValueError, match="version 3; this prefgym reads 'prefgym-lm-trainer'"):
        live.load_into(tmp_path / "ckpt")
    assert_same_weights(live.policy, before)  # a refused load changes nothing


# --- atomic writes ------------------------------------------------------------------------------


def crash_while_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next save fail once the weights are written, before the trainer state."""

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_checkpoints, "save_file", disk_full)


def test_a_crash_during_a_first_save_leaves_nothing_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = ToyTrainer(0)
    crash_while_saving(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_now(tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="holds no trainer checkpoint"):
        ToyTrainer(1).load_into(tmp_path / "ckpt")


def test_saving_over_a_checkpoint_replaces_it_as_a_whole(tmp_path: Path) -> None:
    ToyTrainer(0).save_now(tmp_path / "ckpt")  # with its own reference
    (tmp_path / "ckpt" / "notes.txt").write_text("left by hand")
    given = ToyTrainer(1, own_reference=False)
    given.train(1)
    given.save_now(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary left over
    assert ToyTrainer(2, own_reference=False).load_into(tmp_path / "ckpt") == 1


def test_a_crash_while_saving_over_a_checkpoint_leaves_the_previous_one_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = ToyTrainer(0)
    trainer.train(2)
    trainer.save_now(tmp_path / "ckpt")
    policy, reference = weights(trainer.policy), weights(trainer.reference)
    generator = trainer.generator.get_state()
    trainer.train(2)
    crash_while_saving(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_now(tmp_path / "ckpt")
    monkeypatch.undo()

    resumed = ToyTrainer(5)
    assert resumed.load_into(tmp_path / "ckpt") == 2
    assert_same_weights(resumed.policy, policy)
    assert_same_weights(resumed.reference, reference)
    assert torch.equal(resumed.generator.get_state(), generator)


def test_a_checkpoint_of_version_1_still_loads(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    saved = ToyTrainer(0)
    saved.train(2)
    directory = saved.save_now(tmp_path / "ckpt")
    state_file = directory / "trainer_state.safetensors"  # written as version 1 did:
    tensors = {k.replace("/", "."): v for k, v in load_file(state_file).items()}
    save_file(tensors, state_file)
    meta = json.loads((directory / "trainer.json").read_text())
    skeleton = meta.pop("optimizer")
    meta["param_groups"] = skeleton["param_groups"]
    meta["optimizer_scalars"] = {
        f"{index}.{name}": value
        for index, entries in skeleton["scalars"].items()
        for name, value in entries.items()
    }
    (directory / "trainer.json").write_text(json.dumps({**meta, "version": 1}))
    other = ToyTrainer(1)
    assert other.load_into(directory) == 2
    assert_same_weights(other.policy, weights(saved.policy))
    assert_same_optimizer(other.optimizer, saved.optimizer)
