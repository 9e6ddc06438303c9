"""fast.fast_modules: the training-only dropout and batch norm put in a model's tree over its own
state and taken out again, with no module's class changed, and training through them exactly as
through the classes they stand in for."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import benchmarks.harness.train as train_mod
from benchmarks.harness.batchnorm import ChannelsLastBatchNorm2d
from benchmarks.harness.config import Config
from benchmarks.harness.fast import (
    RunDropout,
    fast_modules,
    put_back,
    training_process,
)
from benchmarks.tasks.mnist_files import load_mnist
from models import create_model

REPO = Path(__file__).resolve().parents[1]


def tree(model: nn.Module) -> list[tuple[str, int, type]]:
    """Every module of the model: its name, identity and class."""
    return [(name, id(m), type(m)) for name, m in model.named_modules()]


def test_fast_modules_share_the_state_and_put_back_restores_the_tree():
    torch.manual_seed(0)
    model = create_model("plain_7k")  # dropout and narrow batch norm
    before, state = tree(model), model.state_dict(keep_vars=True)
    values = {k: v.detach().clone() for k, v in state.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    slots = fast_modules(model, batchnorm=True)
    kinds = {type(m) for m in model.modules()}
    assert RunDropout in kinds and ChannelsLastBatchNorm2d in kinds
    assert nn.Dropout not in kinds and nn.BatchNorm2d not in kinds
    inside = model.state_dict(keep_vars=True)
    assert list(inside) == list(state) and all(inside[k] is v for k, v in state.items())
    model.train()
    x = torch.randn(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    model.to(memory_format=torch.channels_last)(x).sum().backward()
    opt.step()  # the optimizer holds the very Parameters the fast modules train
    model.to(memory_format=torch.contiguous_format).eval()
    trained = {k: v.detach().clone() for k, v in inside.items()}
    put_back(slots)

    assert tree(model) == before  # the same objects in the same places, of the same classes
    after = model.state_dict(keep_vars=True)
    assert list(after) == list(state) and all(after[k] is v for k, v in state.items())
    assert all(torch.equal(after[k], v) for k, v in trained.items())  # updated in place
    assert all(not torch.equal(trained[k], v) for k, v in values.items()
               if k.endswith(("running_mean", "num_batches_tracked")))
    assert not any(m.training for m in model.modules())  # the mode the block left


def test_a_round_trip_changes_no_value():
    torch.manual_seed(0)
    model = create_model("plain_7k")
    values = {k: v.clone() for k, v in model.state_dict().items()}
    put_back(fast_modules(model, batchnorm=True))
    after = model.state_dict()
    assert list(after) == list(values) and all(torch.equal(after[k], v)
                                               for k, v in values.items())


def test_a_module_in_two_places_gets_one_fast_module_and_keeps_its_hooks():
    bn, drop = nn.BatchNorm2d(4), nn.Dropout(0.5)
    model = nn.Sequential(bn, drop, nn.Sequential(bn, drop))
    calls = []
    bn.register_forward_hook(lambda *_: calls.append(1))
    slots = fast_modules(model, batchnorm=True)
    assert model[0] is model[2][0] and type(model[0]) is ChannelsLastBatchNorm2d
    assert model[1] is model[2][1] and type(model[1]) is RunDropout
    model(torch.randn(2, 4, 3, 3))
    assert len(calls) == 2  # hooks are part of the shared state
    put_back(slots)
    assert model[0] is bn is model[2][0] and model[1] is drop is model[2][1]
    assert type(bn) is nn.BatchNorm2d and type(drop) is nn.Dropout


def test_batch_norm_stays_torchs_without_fast_batchnorm():
    model = create_model("plain_7k")
    slots = fast_modules(model, batchnorm=False)
    assert any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert not any(isinstance(m, ChannelsLastBatchNorm2d) for m in model.modules())
    put_back(slots)


def test_no_class_is_ever_assigned():
    assigned = re.compile(r"__class__\s*=(?!=)")
    found = [f"{path.relative_to(REPO)}:{n}" for folder in ("benchmarks", "models")
             for path in sorted((REPO / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if assigned.search(line)]
    assert not found


@contextlib.contextmanager
def class_swapping_fast_model(model: nn.Module, fast, seed: int = 0):
    """The reference: the fast path as it was, each module's class changed for the block."""
    swaps = {nn.Dropout: RunDropout,
             nn.BatchNorm2d: ChannelsLastBatchNorm2d if fast.fast_batchnorm else None}
    swapped = [m for m in model.modules() if swaps.get(type(m))]
    dropouts = [m for m in swapped if type(m) is nn.Dropout]
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed ^ 0x5DEECE66D) if dropouts else None
    try:
        with training_process(fast):
            for m in dropouts:
                m.generator, m.geometric = generator, fast.geometric_dropout
            for m in swapped:
                m.__class__ = swaps[type(m)]
            if fast.channels_last:
                model.to(memory_format=torch.channels_last)
            yield
    finally:
        for m in swapped:
            m.__class__ = m.__class__.__base__
        for m in dropouts:
            del m.generator, m.geometric
        model.to(memory_format=torch.contiguous_format)


@pytest.mark.parametrize("overrides", [{"amp": "off"}, {"amp": "bf16"},
                                       {"amp": "off", "channels_last": "off"}])
def test_training_is_exactly_the_class_swapping_one(mnist_root, monkeypatch, overrides):
    """The same kernels on the same batches in the same process either way: the weights, the
    batch norm statistics and every recorded figure are bit for bit the same, in fp32 and
    in bf16 alike (no tolerance: nothing computes differently, whatever the CPU)."""
    cfg = Config(model="plain_7k", epochs=1, train_subset=512, test_subset=256, val_split=128,
                 batch_size=32, ema=0.9, threads=1, fast_batchnorm="on", fast_dropout="on",
                 seed=3, device="cpu", progress=False, data_root=str(mnist_root))
    cfg = dataclasses.replace(cfg, **overrides)
    data = load_mnist(cfg, torch.device("cpu"))

    def run() -> tuple[dict, list]:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model)
        before = tree(model)
        history = train_mod.train(model, cfg, data)["history"]
        assert tree(model) == before
        return model.state_dict(), [dict(r, seconds=0) for r in history]

    ours, ours_history = run()
    monkeypatch.setattr(train_mod, "fast_model", class_swapping_fast_model)
    reference, reference_history = run()
    assert ours_history == reference_history
    assert list(ours) == list(reference)
    assert all(torch.equal(ours[k], v) for k, v in reference.items())
