"""The zoo, parametrized over the registry itself (timm's way), with torchinfo as the oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torchinfo import summary

import models
from errors import UserError
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
    with pytest.raises(UserError, match="no parameter"):
        models.create_model("plain_7k", depth=3)


def test_profile_and_receptive_field():
    p = profile(models.create_model("plain_7k"))
    assert p["params"] == 6570
    assert p["macs"] == summary(models.create_model("plain_7k"), input_size=(1, 1, 28, 28),
                                verbose=0).total_mult_adds
    # v3 v3 (5) -> pool (6, jump 2) -> t1 -> v3 x3 (+12) = 18
    assert p["receptive_field"] == 18
    assert receptive_field(models.build("c8-x8-t10-gap|do0")) == 1 + 2 + 4


# One network, one string: strings drawn at random, each next to a copy with one op changed,
# the op right before the head (where the classifier sits) as often as all the others.
_KINDS = "cvtsxdrg"
_token = st.one_of(
    st.builds(lambda k, w, f: f"{k}{w}{f if k in 'cvtsx' else ''}",
              st.sampled_from(_KINDS), st.sampled_from([4, 8, 10]),
              st.sampled_from(["", "a", "b", "ab", "n"])),
    st.just("p"), st.sampled_from(["do0.1", "do0.2"]))
_last = st.one_of(_token, st.builds(lambda k, f: f"{k}10{f if k in 'cvtsx' else ''}",
                                    st.sampled_from(_KINDS), st.sampled_from(["", "n", "a"])))


@st.composite
def _string_pair(draw):
    body = draw(st.lists(_token, max_size=3)) + [draw(_last)]
    head = draw(st.sampled_from(["gap", "gap-fc", "gap-fcn"]))
    suffix = draw(st.sampled_from(["|do0", "|do0.1"]))
    other = list(body)
    i = draw(st.one_of(st.just(len(body) - 1), st.integers(0, len(body) - 1)))
    other[i] = draw(_last if i == len(body) - 1 else _token)
    return ["-".join([*ops, head]) + suffix for ops in (body, other)]


def _network(text: str) -> list:
    """Layer types in order, with each leaf's settings (kernel, stride, p, ...) and shapes."""
    net = models.build(text)
    return [(type(m).__name__, repr(m) if not list(m.children()) else "",
             [tuple(p.shape) for p in m.parameters(recurse=False)]) for m in net.modules()]


def _canonical(text: str) -> bool:
    try:
        return str(models.parse(text)) == text
    except models.ArchError:
        return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_string_pair())
def test_two_strings_never_build_the_same_network(pair):
    a, b = pair
    assume(a != b and _canonical(a) and _canonical(b))
    assert _network(a) != _network(b), f"{a} and {b} build the same network"


@pytest.mark.parametrize("text", ["c8-c10-gap|do0", "c8-v10-gap|do0", "c8-t10-gap|do0",
                                  "c8-s10-gap|do0", "c8-x10-gap|do0"])
def test_the_bare_classifier_is_what_its_token_says(text):
    conv = models.build(text)[-3]  # then GAP, Flatten
    kind = text.split("-")[1][0]
    want = {"c": ((3, 3), (1, 1), (1, 1), (1, 1)), "v": ((3, 3), (1, 1), (0, 0), (1, 1)),
            "t": ((1, 1), (1, 1), (0, 0), (1, 1)), "s": ((3, 3), (2, 2), (1, 1), (1, 1)),
            "x": ((3, 3), (1, 1), (2, 2), (2, 2))}[kind]
    assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == want


@pytest.mark.parametrize("bad, why", [
    ("c8-r10-gap|do0", "classifier"), ("c8-g10-gap|do0", "classifier"),
    ("c8-d10-gap|do0", "classifier"),
    ("c8-do0.1-t10-gap|do0.1", "need '|do0'"),
    ("c8-do0.1-do0.2-t10-gap|do0", "never a dropout op"),
    ("do0.1-c8-t10-gap|do0", "follow another op"),
    ("c8-do0-t10-gap|do0", "0.0001 <= p"),
    ("c8-do0.1-t10-gap|do0", "every block"),
    ("c8-do0.1-p-c8-do0.1-gap-fc|do0", "every block"),
    ("c8-t10-do0.1-gap|do0", "conv must come right before"),
])
def test_bad_classifiers_and_dropout_ops_are_refused(bad, why):
    with pytest.raises(models.ArchError, match=why):
        models.parse(bad)


def test_dropout_ops_sit_where_they_are_written():
    net = models.build("c8-p-do0.1-c8-do0.2-gap-fc|do0")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Sequential", "MaxPool2d", "Dropout", "Sequential", "Dropout",
                     "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert [m.p for m in net if isinstance(m, torch.nn.Dropout)] == [0.1, 0.2]
    assert str(models.parse("C8-P-DO0.10-c8-do.2-gap-fc|do0")) == net.arch
