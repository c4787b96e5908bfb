"""Tensors on disk: damaged or non-finite files are named, optimizer state goes back strictly."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from prefgym.tensors import load_tensors, optimizer_state, restore_optimizer


def _tensors_file(tmp_path: Path, make: Callable[[Path], None]) -> Path:
    path = tmp_path / "w.safetensors"
    make(path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "is damaged and cannot be read"),
        (lambda p: p.write_bytes(os.urandom(300)), "is damaged and cannot be read"),
        (
            lambda p: p.write_bytes((2**40).to_bytes(8, "little") + b"{}"),  # huge header
            "is damaged and cannot be read",
        ),
        (
            lambda p: save_file({"w": torch.tensor([1.0, float("nan")])}, str(p)),
            r"non-finite values in 'w'",
        ),
        (
            lambda p: save_file({"w": torch.tensor([float("-inf")])}, str(p)),
            r"non-finite values in 'w'",
        ),
    ],
)
def test_load_tensors_refuses_damaged_or_non_finite_files(
    tmp_path: Path, make: Callable[[Path], None], message: str
) -> None:
    path = _tensors_file(tmp_path, make)
    with pytest.raises(ValueError, match=message) as error:
        load_tensors(path, "the weights")
    assert str(path) in str(error.value)


def test_load_tensors_reads_a_good_file_and_cut_off_copies_of_it_fail(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(6.0), "n": torch.arange(3)}, str(path))
    assert torch.equal(load_tensors(path, "the weights")["w"], torch.arange(6.0))
    data = path.read_bytes()
    for cut in (8, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="is damaged"):
            load_tensors(path, "the weights")


def _trained_adam(seed: int = 0) -> tuple[torch.nn.Linear, torch.optim.Adam]:
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(4, 3)).square().sum().backward()
        optimizer.step()
    return net, optimizer


def test_optimizer_state_goes_back_exactly(tmp_path: Path) -> None:
    _, optimizer = _trained_adam()
    tensors, skeleton = optimizer_state(optimizer, "opt")
    assert sorted(tensors)[:3] == ["opt/0/exp_avg", "opt/0/exp_avg_sq", "opt/0/step"]
    save_file(tensors, str(tmp_path / "s.safetensors"))
    loaded = load_tensors(tmp_path / "s.safetensors", "state")
    _, fresh = _trained_adam(seed=1)
    restore_optimizer(fresh, "opt", loaded, skeleton, "ckpt")
    assert loaded == {}  # every tensor was taken
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            assert torch.equal(fresh.state_dict()["state"][index][name], value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, s: t.update({"opt/0/exp_avg": torch.zeros(3, 3)}), r"opt/0/exp_avg is .*"),
        (lambda t, s: t.update({"opt/0/step": torch.zeros(2)}), r"opt/0/step is .*must be"),
        (lambda t, s: t.pop("opt/1/exp_avg_sq"), r"opt parameter 1 lacks \['exp_avg_sq'\]"),
        (lambda t, s: t.update({"opt/7/exp_avg": torch.zeros(1)}), r"holds opt/7/exp_avg"),
        (lambda t, s: s["param_groups"][0].update(lr=float("nan")), r"lr must be a number"),
        (lambda t, s: s["param_groups"][0].update(betas=[0.5, 0.5]), r"saved with betas"),
        (lambda t, s: s.update(param_groups=[]), r"0 parameter groups, the optimizer 1"),
        (lambda t, s: s.pop("scalars"), r"no param_groups list and scalars object"),
    ],
)
def test_optimizer_state_that_does_not_fit_is_named(
    change: Callable[[dict, dict], object], message: str
) -> None:
    _, optimizer = _trained_adam()
    tensors, skeleton = optimizer_state(optimizer, "opt")
    change(tensors, skeleton)
    _, fresh = _trained_adam(seed=1)
    with pytest.raises(ValueError, match=message):
        restore_optimizer(fresh, "opt", tensors, skeleton, "ckpt")


def test_a_state_that_does_not_fit_names_the_file_and_the_mismatch(tmp_path: Path) -> None:
    from prefgym.tensors import load_state_dict

    net = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"w\.safetensors does not fit the model \(size mismatch"):
        load_state_dict(net, state, tmp_path / "w.safetensors", "restore it")
    with pytest.raises(ValueError, match=r"Missing key.*bias.*; restore it"):
        load_state_dict(
            net, {"weight": torch.zeros(2, 3)}, tmp_path / "w.safetensors", "restore it"
        )
    load_state_dict(net, {"weight": torch.ones(2, 3), "bias": torch.ones(2)}, tmp_path, "x")
    assert torch.equal(net.weight, torch.ones(2, 3))
