"""Published hand-designed peers (models/peers.toml): exact layer counts, recipes, new grammar."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models
from benchmarks.harness.fast import make_optimizer
from benchmarks.harness.train import make_schedule
from benchmarks.tasks import task_config
from errors import UserError
from models.registry import MODELS, SOURCES

# name -> (architecture string, the parameter count its source publishes)
PEERS = {
    "peer_minakshi_6k": ("v8a-v10a-p-v12a-c15a-p-v15a-gap-fc|do0.01", 5_797),
    "peer_shwetha_6k": ("c8b-c10b-p-c12b-p-c16b-c16b-t10-gap|do0", 6_260),
    "peer_nitinvig_7k": ("v10ab-v10ab-v20ab-p-t10a-v10ab-v10ab-v20ab-t10a-gap|do0", 7_070),
    "peer_snehanshu_8k": ("c10-c10-c10-p-v16-v16-v8-v8-t8-t16-gap-fcn|do0", 7_918),
    "peer_ram_9k": ("v4-v4-v8-p-t8-v16-v16-c16-c16-t10n-gap|do0.05", 8_932),
    "peer_deepanshu_6k": ("v4a-v10a-p-t8a-t4a-v10a-v16a-v12a-v16a-gap-fcn|do0", 6_084),
    "peer_adilsammar_4k": ("c4b-c4b-c4b-p-do0.01-c8b-c8b-c8b-p-do0.01-c8b-c8b-c8b-gap-fc|do0",
                           3_762),
    "peer_adilsammar_5k": (
        "c4ab-c4ab-p-do0.01-c8ab-c8ab-p-do0.01-c16ab-c16ab-do0.01-t10-gap|do0", 4_838),
}

# Not published, kept beside the peers (models/peers.toml): name -> (architecture string,
# parameters, the member whose recipe it trains with).
DERIVED = {
    "twopool_4k": ("v8a-v8a-p-v12a-c12a-p-v12a-gap-fc|do0.01", 4_338, "nas_plain_5k"),
    "staged_4k": ("c4-c4-c4-p-do0.01-c8-c8-c8-p-do0.01-c8-c8-c8-gap-fcn|do0", 3_692,
                  "peer_adilsammar_4k"),
}


def test_every_peer_is_listed_here():
    assert sorted(n for n in MODELS if n.startswith("peer_")) == sorted(PEERS)
    assert len(PEERS) >= 4


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_builds_with_its_published_parameter_count(name):
    arch, published = PEERS[name]
    model = models.create_model(name)
    assert model.arch == arch
    assert str(models.parse(arch)) == arch
    assert models.count_params(model) == published
    out = model.eval()(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_recipe_is_a_valid_config_and_names_its_source(name):
    recipe = models.recipe_of(name)
    cfg = task_config(model=name, **recipe)
    assert 1 <= cfg.epochs <= 20
    assert "/" in SOURCES[name]  # "<owner>/<repository> <file>"
    model = models.create_model(name)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    assert type(opt).__name__.lower() == cfg.optimizer
    make_schedule(opt, cfg, cfg.epochs * 10)


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_member_keeps_its_layout_and_another_members_recipe(name):
    arch, count, recipe_from = DERIVED[name]
    assert models.arch_of(name) == arch
    assert models.count_params(models.create_model(name)) == count
    assert models.recipe_of(name) == models.recipe_of(recipe_from) != {}
    assert name not in SOURCES


def test_defaults_keep_the_old_schedules():
    cfg = task_config()
    assert (cfg.optimizer, cfg.step_size, cfg.gamma) == ("sgd", 7, 0.1)
    assert (cfg.div_factor, cfg.final_div_factor, cfg.anneal, cfg.cycle_momentum) == (
        20.0, 200.0, "linear", False)


def test_step_schedule_follows_step_size_and_gamma():
    model = nn.Linear(2, 2)
    cfg = task_config(schedule="step", step_size=2, gamma=0.5, epochs=4, lr=1.0)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    sched = make_schedule(opt, cfg, total_steps=4 * 3)  # 3 steps per epoch
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0] * 6 + [0.5] * 6


def test_onecycle_takes_its_factors_and_can_cycle_momentum():
    model = nn.Linear(2, 2)
    cfg = task_config(div_factor=10.0, final_div_factor=100.0, anneal="cos",
                      cycle_momentum=True, warmup=0.5, lr=1.0, momentum=0.98, nesterov=False)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    make_schedule(opt, cfg, total_steps=10)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)  # torch's cycle overrides


def test_adam_optimizer():
    cfg = task_config(optimizer="adam", lr=0.005)
    opt = make_optimizer(nn.Linear(2, 2), cfg, torch.device("cpu"))
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.005


@pytest.mark.parametrize("bad", [
    dict(optimizer="rmsprop"), dict(step_size=0), dict(gamma=0.0), dict(div_factor=0.5),
    dict(anneal="cosine")])
def test_bad_recipe_values_are_refused(bad):
    with pytest.raises(UserError):
        task_config(**bad)


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_flag_b_gives_a_body_conv_a_bias():
    plain, biased = models.build("c8-t10-gap|do0"), models.build("c8b-t10-gap|do0")
    assert _convs(plain)[0].bias is None and _convs(biased)[0].bias is not None
    assert models.count_params(biased) - models.count_params(plain) == 8


def test_flag_a_puts_relu_before_batchnorm_and_keeps_a_last_block_whole():
    model = models.build("c8a-t10a-gap|do0")
    kinds = [type(m).__name__ for m in model[0]]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d"]
    last = [type(m).__name__ for m in model[1]]
    assert last == ["Conv2d", "ReLU", "BatchNorm2d"]  # not a bare classifier conv
    assert _convs(model)[-1].bias is None
    default = models.build("c8-t10-gap|do0")
    assert [type(m).__name__ for m in default[0]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert isinstance(default[1], nn.Conv2d) and default[1].bias is not None


def test_flag_n_drops_the_classifier_and_fc_bias():
    assert _convs(models.build("c8-t10n-gap|do0"))[-1].bias is None
    fc = [m for m in models.build("c8-gap-fcn|do0").modules() if isinstance(m, nn.Linear)]
    assert len(fc) == 1 and fc[0].bias is None
    fc = [m for m in models.build("c8-gap-fc|do0").modules() if isinstance(m, nn.Linear)]
    assert fc[0].bias is not None


@pytest.mark.parametrize("text", [
    "c8b-t10-gap|do0", "v8ab-t10a-gap|do0.05", "c8-t10n-gap|do0", "c8-gap-fcn|do0",
    "s8b-x12a-t10n-gap|do0"])
def test_flagged_strings_round_trip(text):
    assert str(models.parse(text)) == text
    assert str(models.parse(text.upper())) == text
    assert models.build(text).arch == text


@pytest.mark.parametrize("bad, why", [
    ("c8ba-t10-gap|do0", "unknown op"),  # flags in canonical order only
    ("d8b-t10-gap|do0", "one-conv ops"),
    ("r8a-t10-gap|do0", "one-conv ops"),
    ("c8n-gap-fc|do0", "classifier"),
    ("c8-t10b-gap|do0", "has a bias already"),
    ("c8-t10an-gap|do0", "classifier"),
    ("c8-gap-fc-fcn|do0", "gap"),
    ("c8-gapn|do0", "unknown op"),
])
def test_bad_flags_are_refused(bad, why):
    with pytest.raises(models.ArchError, match=why):
        models.parse(bad)


def test_peers_are_never_queued_as_search_trials():
    import optuna

    from search.publish import enqueue_zoo

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    queued = enqueue_zoo(optuna.create_study(), task_config(), 20_000)
    assert queued and not any(n.startswith("peer_") for n in queued)
    with pytest.raises(UserError, match="off the search grid"):
        enqueue_zoo(optuna.create_study(), task_config(), 20_000, ["peer_ram_9k"])


def test_per_epoch_schedule_holds_the_rate_through_each_epoch():
    """peer_adilsammar_4k's rate: 0.05 -> 0.1 at the 3rd epoch -> 0.05/30 at the 15th."""
    name = "peer_adilsammar_4k"
    cfg = task_config(model=name, **models.recipe_of(name))
    opt = make_optimizer(nn.Linear(2, 2), cfg, torch.device("cpu"))
    sched = make_schedule(opt, cfg, total_steps=cfg.epochs * 3)  # 3 batches per epoch
    lrs = []
    for _ in range(cfg.epochs * 3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = lrs[::3]
    assert lrs == [lr for lr in per_epoch for _ in range(3)]
    assert per_epoch[:3] == pytest.approx([0.05, 0.075, 0.1])
    assert per_epoch[-1] == pytest.approx(0.05 / 30)
    assert opt.param_groups[0]["momentum"] == 0.95


@pytest.mark.parametrize("scheme", ["xavier", "kaiming"])
def test_init_redraws_weights_from_the_seed_and_zeroes_biases(scheme):
    from benchmarks.harness.init import init_weights

    a, b = (models.create_model("peer_adilsammar_4k") for _ in range(2))
    init_weights(a, scheme, seed=3)
    init_weights(b, scheme, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    convs = _convs(a)
    assert all(bool((c.bias == 0).all()) for c in convs)
    w = convs[1].weight  # 4 -> 4, 3x3: fan in = fan out = 36
    if scheme == "xavier":
        assert w.abs().max() <= (6 / 72) ** 0.5
    c = models.create_model("peer_adilsammar_4k")
    init_weights(c, scheme, seed=4)
    assert not torch.equal(_convs(c)[1].weight, w)


def test_augment_p_and_brightness_contrast():
    from benchmarks.harness.data import augment

    x = (torch.rand(64, 1, 28, 28) * 255).to(torch.uint8)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(augment(x, 7.0, 0.1, gen(), p=0.0), x.float() / 255)
    half = augment(x, 7.0, 0.1, gen(), p=0.5)
    kept = [torch.equal(half[i], x[i].float() / 255) for i in range(64)]
    assert 0 < sum(kept) < 64
    jitter = augment(x, 0.0, 0.0, gen(), brightness=0.2, contrast=0.2)
    assert jitter.min() >= 0 and jitter.max() <= 1
    assert not torch.equal(jitter, x.float() / 255)
