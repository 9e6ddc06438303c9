"""The zoo, parametrized over the registry itself (timm's way), with torchinfo as the oracle."""

from __future__ import annotations

import pytest
import torch
from torchinfo import summary

import models
from models import registry
from models.report import profile, receptive_field

ZOO = models.list_models()


def test_zoo_size():
    assert len(models.list_families()) >= 5
    assert len(ZOO) >= 12


@pytest.mark.parametrize("name", ZOO)
def test_member(name):
    model = models.create_model(name)
    model.eval()
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()
    n = models.count_params(model)
    assert n < models.BUDGET
    assert n == summary(model, input_size=(1, 1, 28, 28), verbose=0).total_params
    assert round(n / 1000) == int(name.rsplit("_", 1)[1].rstrip("k")), "name's size is stale"
    # House rules: BatchNorm, Dropout (unless the member turns it off), GAP head, no big FC.
    kinds = {type(m).__name__ for m in model.modules()}
    assert "BatchNorm2d" in kinds and "AdaptiveAvgPool2d" in kinds
    assert "Dropout" in kinds or models.parse(model.arch).dropout == 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.out_features == 10 and m.in_features <= 128


@pytest.mark.parametrize("name", ZOO)
def test_arch_string_round_trip(name):
    arch = models.create_model(name).arch
    assert str(models.parse(arch)) == arch
    rebuilt = models.build(arch)
    assert rebuilt.arch == arch
    original = models.create_model(name)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in original.parameters()]
    assert models.create_model(arch).arch == arch  # a string works wherever a name does


def test_parse_normalizes_spelling():
    assert str(models.parse(" V08-P-T10-GAP | DO0.10 ")) == "v8-p-t10-gap|do0.1"


@pytest.mark.parametrize("bad, why", [
    ("v8-t10-gap", "|do"),
    ("v8-q3-t10-gap|do0", "unknown op"),
    ("v8-v16-gap|do0", "10 channels"),
    ("v8-t10|do0", "gap"),
    ("v8-t10-gap|do1.5", "dropout"),
    ("v16-p-p-p-p-p-t10-gap|do0", "shrinks"),
    ("c8-g15-gap-fc|do0", "even"),
])
def test_bad_arch_strings(bad, why):
    with pytest.raises(models.ArchError, match=why):
        models.parse(bad)


def test_over_budget_names_count_and_budget():
    with pytest.raises(models.OverBudgetError,
                       match=r"19,158 parameters, over the budget of 5,000"):
        models.create_model("plain_19k", budget=5000)


def test_budget_is_a_constant_users_can_change(monkeypatch):
    monkeypatch.setattr(registry, "BUDGET", 4000)
    with pytest.raises(models.OverBudgetError):
        models.create_model("plain_7k")
    assert models.count_params(models.create_model("plain_4k")) < 4000


def test_unknown_model_lists_known_ones():
    with pytest.raises(models.UnknownModelError) as e:
        models.create_model("plain_99k")
    assert "plain_7k" in str(e.value) and "resnet_8k" in str(e.value)


def test_overrides_and_unknown_override():
    m = models.create_model("plain_7k", dropout=0.1)
    assert m.arch.endswith("|do0.1")
    with pytest.raises(models.UserError, match="no parameter"):
        models.create_model("plain_7k", depth=3)


def test_profile_and_receptive_field():
    p = profile(models.create_model("plain_7k"))
    assert p["params"] == 6570
    assert p["macs"] == summary(models.create_model("plain_7k"), input_size=(1, 1, 28, 28),
                                verbose=0).total_mult_adds
    # v3 v3 (5) -> pool (6, jump 2) -> t1 -> v3 x3 (+12) = 18
    assert p["receptive_field"] == 18
    assert receptive_field(models.build("c8-x8-t10-gap|do0")) == 1 + 2 + 4
