"""The training choices for tiny models: a weight average (Config.ema) that is what
gets evaluated and saved, and augmentation beyond rotate/translate (scale, shear, erase)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from benchmarks.commands.evaluate import evaluate_checkpoint
from benchmarks.harness.config import Config
from benchmarks.harness.data import Split, augment, cutout_mask
from benchmarks.harness.ema import WeightAverage
from benchmarks.harness.train import train
from benchmarks.tasks import mnist
from benchmarks.tasks.mnist_files import load_mnist
from benchmarks.tasks.run import run_one
from models import create_model


def test_weight_average_is_the_warmed_up_ema_and_gives_the_live_weights_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, 0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(1, 31):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 3))  # training mode: running stats and num_batches_tracked move
        average.update()
        decay = min(0.9, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
    live = {k: v.clone() for k, v in model.state_dict().items()}
    average.hold_average()
    held = model.state_dict()
    for k, v in held.items():
        if v.is_floating_point():  # weights and BatchNorm's running mean and variance
            torch.testing.assert_close(v, expected[k])
            assert not torch.equal(v, live[k])
        else:  # num_batches_tracked: the live count
            assert torch.equal(v, live[k])
    average.hold_live()
    assert all(torch.equal(v, live[k]) for k, v in model.state_dict().items())  # bit for bit


def test_ema_off_changes_nothing():
    model = nn.Linear(2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, 0.0)
    average.update()
    average.hold_average()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert average.average == [] and average.kept is None


@pytest.fixture(scope="module")
def tiny(mnist_root):
    return Config(model="v8-p-t8-v12-t10-gap|do0", epochs=2, train_subset=512, val_split=256,
                  test_subset=300, batch_size=64, device="cpu", threads=1, progress=False,
                  data_root=str(mnist_root))


def _train(cfg: Config) -> tuple[dict, dict]:
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model)
    result = train(model, cfg, load_mnist(cfg, torch.device("cpu")))
    return result, {k: v.clone() for k, v in model.state_dict().items()}


def test_ema_run_keeps_the_average_and_trains_the_raw_weights_alike(tiny):
    raw_result, raw = _train(tiny)
    ema_result, ema = _train(dataclasses.replace(tiny, ema=0.9))
    # The average never touches training: the same raw losses, epoch by epoch, bit for bit.
    assert [r["train_loss"] for r in ema_result["history"]] == \
        [r["train_loss"] for r in raw_result["history"]]
    # What the run ends with (and evaluated) is the average, not the raw weights.
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())


def test_ema_checkpoints_reproduce_the_recorded_accuracy(tiny, tmp_path):
    cfg = dataclasses.replace(tiny, ema=0.9)
    row = run_one(mnist, cfg, load_mnist(cfg, torch.device("cpu")), results=tmp_path / "runs.csv")
    final = evaluate_checkpoint(row["checkpoint"], "test", "cpu", cfg.data_root)
    assert final["matches_recorded"] and final["test_acc"] == row["final_test_acc"]
    best = evaluate_checkpoint(row["best_checkpoint"], "val", "cpu", cfg.data_root)
    assert best["matches_recorded"]  # the best-epoch snapshot is the average too


def _batch(n: int = 64) -> torch.Tensor:
    torch.manual_seed(5)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 6:22, 10:18] = torch.randint(100, 256, (n, 1, 16, 8), dtype=torch.uint8)
    return x


@pytest.mark.parametrize("option", [{"scale": 0.2}, {"shear": 15.0}, {"erase": 0.5}])
def test_new_augmentations_change_the_batch_from_the_runs_generator(option):
    x = _batch()
    plain = augment(x, 7.0, 0.08, torch.Generator().manual_seed(1))
    a = augment(x, 7.0, 0.08, torch.Generator().manual_seed(1), **option)
    b = augment(x, 7.0, 0.08, torch.Generator().manual_seed(1), **option)
    assert torch.equal(a, b)  # the same generator state, the same batch
    assert not torch.equal(a, plain)
    assert not torch.equal(a, augment(x, 7.0, 0.08, torch.Generator().manual_seed(2), **option))
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1


def test_erase_blanks_squares_and_leaves_the_rest():
    x = _batch(2000)
    out = augment(x, 0.0, 0.0, torch.Generator().manual_seed(0), erase=0.5)
    base = x.float() / 255
    assert bool(((out == base) | (out == 0)).all())  # pixels are kept or blanked, never moved
    mask = cutout_mask(x.shape, 0.5, torch.Generator().manual_seed(0), torch.device("cpu"))
    erased = mask.flatten(1).any(1).float().mean().item()
    assert 0.45 < erased < 0.55  # about half the images
    side = mask.flatten(1).sum(1)[mask.flatten(1).any(1)].float().sqrt()
    assert side.min() >= 1 and side.max() <= 0.4 * 28 + 1  # squares of 10-40% of the side


def test_train_batches_keep_the_labels(mnist_root):
    cfg = Config(train_subset=300, data_root=str(mnist_root), batch_size=100)
    split = load_mnist(cfg, torch.device("cpu"), with_test=False).train
    assert isinstance(split, Split)
    plain = list(split.train_batches(cfg, torch.Generator().manual_seed(3)))
    more = dataclasses.replace(cfg, scale=0.2, shear=15.0, erase=0.5)
    augmented = list(split.train_batches(more, torch.Generator().manual_seed(3)))
    assert all(torch.equal(y0, y1) for (_, y0), (_, y1) in zip(plain, augmented))
    assert not all(torch.equal(x0, x1) for (x0, _), (x1, _) in zip(plain, augmented))


def test_epoch_batches_match_batch_by_batch(mnist_root):
    """CUDA augments the epoch in one pass (Split.epoch_batches; CPU goes batch by batch): the
    same batches in the same order, images and labels; without augmentation the same pixels."""
    cfg = Config(train_subset=250, data_root=str(mnist_root), batch_size=100, rotate=0.0,
                 translate=0.0)
    split = load_mnist(cfg, torch.device("cpu"), with_test=False).train
    by_batch = list(split.train_batches(cfg, torch.Generator().manual_seed(3)))
    gen = torch.Generator().manual_seed(3)
    perm = torch.randperm(len(split), generator=gen)
    in_one = list(split.epoch_batches(cfg, gen, perm))
    assert [len(y) for _, y in in_one] == [len(y) for _, y in by_batch] == [100, 100, 50]
    for (x0, y0), (x1, y1) in zip(by_batch, in_one):
        assert torch.equal(y0, y1) and torch.equal(x0, x1)
    more = dataclasses.replace(cfg, rotate=7.0, translate=0.08, shear=15.0)
    gen = torch.Generator().manual_seed(3)
    moved = list(split.epoch_batches(more, gen, torch.randperm(len(split), generator=gen)))
    assert all(torch.equal(y0, y1) for (_, y0), (_, y1) in zip(by_batch, moved))
    assert not any(torch.equal(x0, x1) for (x0, _), (x1, _) in zip(by_batch, moved))
