"""train_group: K models of one architecture in one vmapped step. Tiny runs on CPU."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from benchmarks.config import Config
from benchmarks.data import load_mnist
from benchmarks.parallel import lr_table, member_losses, train_group
from benchmarks.train import DivergedError, evaluate, train
from models import UserError, create_model

# plain_4k has no dropout, and no augmentation: only float rounding tells the loops apart.
BASE = dict(model="plain_4k", epochs=2, train_subset=512, test_subset=256, progress=False,
            device="cpu", rotate=0.0, translate=0.0)


@pytest.fixture(scope="module")
def tiny(mnist_root):
    cfg = Config(data_root=str(mnist_root), **BASE)
    return cfg, load_mnist(cfg, torch.device("cpu"))


def _model(seed: int, name: str = "plain_4k"):
    torch.manual_seed(seed)
    return create_model(name)


def _losses(result) -> list[float]:
    return [r["train_loss"] for r in result["history"]]


def test_one_member_group_matches_train(tiny):
    cfg, data = tiny
    single = train(_model(1), cfg, data)
    [member] = train_group([_model(1)], [cfg], data)
    assert set(member) >= set(single)  # the same result format
    assert [r["epoch"] for r in member["history"]] == [1, 2]
    for a, b in zip(_losses(member), _losses(single)):
        assert a == pytest.approx(b, rel=2e-3)
    assert member["history"][-1]["lr"] == pytest.approx(single["history"][-1]["lr"])
    assert abs(member["test"]["acc"] - single["test"]["acc"]) <= 2.0


def test_members_are_independent(tiny):
    cfg, data = tiny
    other = dataclasses.replace(cfg, seed=7, lr=0.2, momentum=0.5, weight_decay=0.0,
                                nesterov=False, label_smoothing=0.1)
    [alone] = train_group([_model(1)], [cfg], data)
    pair = train_group([_model(1), _model(7)], [cfg, other], data)
    for a, b in zip(_losses(pair[0]), _losses(alone)):
        assert a == pytest.approx(b, rel=1e-4)
    assert _losses(pair[1]) != _losses(pair[0])


def test_models_are_trained_in_place(tiny):
    cfg, data = tiny
    models = [_model(1), _model(2)]
    results = train_group(models, [cfg, dataclasses.replace(cfg, seed=2)], data)
    for model, result in zip(models, results):
        assert evaluate(model, data.test)["acc"] == result["test"]["acc"]


def test_pruning_one_member_leaves_the_others(tiny):
    cfg, data = tiny
    seen = []

    def prune(epoch, record):
        seen.append(epoch)
        raise RuntimeError("pruned")

    cfgs = [dataclasses.replace(cfg, seed=seed) for seed in (1, 2, 3)]
    results = train_group([_model(1), _model(2), _model(3)], cfgs, data, [None, prune, None])
    assert seen == [1]
    assert isinstance(results[1], RuntimeError)
    for r in (results[0], results[2]):
        assert len(r["history"]) == 2 and r["test"] is not None


def test_a_diverging_member_stops_alone(tiny):
    cfg, data = tiny
    results = train_group([_model(1), _model(2)], [cfg, dataclasses.replace(cfg, lr=1e30)],
                          data)
    assert isinstance(results[1], DivergedError)
    assert math.isfinite(results[0]["history"][-1]["train_loss"])


def test_members_must_share_architecture_and_batch(tiny):
    cfg, data = tiny
    with pytest.raises(UserError, match="architecture"):
        train_group([_model(1), _model(1, "plain_7k")], [cfg, cfg], data)
    with pytest.raises(UserError, match="architecture"):  # same shapes, other dropout
        train_group([_model(1), create_model("plain_4k", dropout=0.1)], [cfg, cfg], data)
    with pytest.raises(UserError, match="batch_size"):
        train_group([_model(1), _model(2)], [cfg, dataclasses.replace(cfg, batch_size=64)], data)


def test_member_losses_match_cross_entropy_with_each_members_smoothing():
    torch.manual_seed(0)
    out, y = torch.randn(3, 16, 10), torch.randint(0, 10, (3, 16))
    smoothing = torch.tensor([0.0, 0.1, 0.05])
    want = [torch.nn.functional.cross_entropy(o, t, label_smoothing=float(e))
            for o, t, e in zip(out, y, smoothing)]
    assert member_losses(out, y, smoothing).tolist() == pytest.approx([float(w) for w in want])


def test_members_sharing_seed_and_augmentation_share_batches(tiny):
    """Their batches are drawn once; each still trains exactly as it would alone."""
    cfg, data = tiny
    aug = dataclasses.replace(cfg, rotate=7.0, translate=0.08)
    [alone] = train_group([_model(1)], [dataclasses.replace(aug, lr=0.1)], data)
    pair = train_group([_model(2), _model(1)], [aug, dataclasses.replace(aug, lr=0.1)], data)
    for a, b in zip(_losses(pair[1]), _losses(alone)):
        assert a == pytest.approx(b, rel=1e-4)


def test_lr_table_replays_the_schedulers():
    cfgs = [Config(lr=0.1), Config(lr=0.02), Config(lr=0.1, schedule="cosine")]
    table = lr_table(cfgs, 50, torch.device("cpu"))
    assert table.shape == (51, 3)
    assert table[:, 1].tolist() == pytest.approx((table[:, 0] * 0.2).tolist())
    assert table[0, 0] == pytest.approx(0.1 / 20)  # one-cycle starts at max_lr / div_factor
    assert table[:, 0].max() == pytest.approx(0.1)
    assert table[0, 2] == pytest.approx(0.1) and table[-1, 2] == pytest.approx(0.0, abs=1e-9)


def test_search_runs_groups_sharing_an_architecture(mnist_root, tmp_path):
    import optuna

    from search.__main__ import main as search_main
    from search.study import status_of

    url = f"sqlite:///{tmp_path / 'search.db'}"
    rc = search_main(["run", "--storage", url, "--parallel", "3", "--n-trials", "3", "--seed",
                      "0", "--epochs", "1", "--train-subset", "350", "--test-subset", "200",
                      "--no-live", "--data-root", str(mnist_root)])
    assert rc == 0
    trials = {t.number: t for t in optuna.load_study(study_name="mnist-accuracy",
                                                     storage=url).get_trials()}
    followers = [t for t in trials.values() if "group_of" in t.user_attrs]
    assert len(followers) >= 2
    for t in followers:
        leader = trials[t.user_attrs["group_of"]]
        assert t.user_attrs["arch"] == leader.user_attrs["arch"]
        assert t.params["batch_size"] == leader.params["batch_size"]
        assert status_of(t) in ("complete", "pruned") and t.user_attrs["macs"] > 0
        assert len(t.user_attrs["val_acc_per_epoch"]) == 1
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials.values())


def test_parallel_search_refuses_tasks_whose_trials_differ_in_epochs():
    from types import SimpleNamespace

    from search.parallel import group_objective

    objective = SimpleNamespace(base=Config(task="hymenoptera"))
    assert group_objective(objective, 1, [], ()) is objective
    with pytest.raises(UserError, match="epochs"):
        group_objective(objective, 2, [], ())
