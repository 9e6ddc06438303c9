"""benchmarks.query: one architecture's per-seed runs from a runs CSV, as a DataFrame."""

from __future__ import annotations

import json

import pytest

import benchmarks
from benchmarks.harness.results import ResultsError, append_row
from errors import UserError
from models import arch_of, recipe_of
from models.registry import FOUND_BY

MEMBER = "nas_plain_6k"  # a promoted member: its runs with its own recipe carry its found_by


def _row(model: str, seed: int, acc: float, epochs: int = 20, source: str = "benchmarks mnist",
         **config) -> dict:
    cfg = {"task": "mnist", "model": model, "epochs": epochs, "seed": seed, **config}
    return {"task": "mnist", "model": model, "arch": arch_of(model), "family": "plain",
            "params": 1, "macs": 1, "epochs": epochs, "seed": seed, "device": "cpu",
            "device_name": "x86_64 cpu", "train_images": 60000, "final_test_acc": acc,
            "test_acc_per_epoch": "[]", "val_acc_per_epoch": "[]",
            "train_loss_per_epoch": "[]", "seconds": 1.0, "images_per_second": 1.0,
            "source": source, "torch_version": "2.4", "git_commit": "x",
            "config": json.dumps(cfg), "timestamp": f"2026-01-0{seed}T00:00:00+00:00"}


@pytest.fixture
def runs(tmp_path):
    path = tmp_path / "runs.csv"
    own = {k: v for k, v in recipe_of(MEMBER).items() if k != "epochs"}
    for row in [_row(MEMBER, 3, 99.3, **own), _row(MEMBER, 1, 99.5, **own),
                _row(MEMBER, 2, 99.1, batch_size=512),  # the same network, another recipe
                _row(MEMBER, 4, 98.0, epochs=2, **own),
                _row("plain_7k", 1, 99.4)]:
        append_row(row, path)
    return path


def test_a_member_selects_its_architecture_seeds_in_order(runs):
    df = benchmarks.query(MEMBER, runs)
    assert list(df.seed) == [1, 2, 3, 4] and list(df.final_test_acc) == [99.5, 99.1, 99.3, 98.0]
    assert set(df.arch) == {arch_of(MEMBER)} and df.config[0]["seed"] == 1
    assert {"seed", "final_test_acc", "epochs", "train_images", "device_name", "recipe",
            "found_by", "config"} <= set(df.columns)
    # The member's found_by goes only to runs of its own recipe (whatever their epochs).
    assert list(df.found_by) == [FOUND_BY[MEMBER], None, FOUND_BY[MEMBER], FOUND_BY[MEMBER]]
    assert df.recipe[1]["batch_size"] == 512 and df.recipe[0]["batch_size"] == 32
    assert "image_size" not in df.recipe[0]  # the ants/bees task's field, unused by MNIST
    # The architecture string names the same runs; the folder finds its runs.csv.
    assert benchmarks.query(arch_of(MEMBER), runs.parent).seed.tolist() == [1, 2, 3, 4]


def test_filters_keep_equal_rows(runs):
    assert benchmarks.query(MEMBER, runs, epochs=20).seed.tolist() == [1, 2, 3]
    assert benchmarks.query(MEMBER, runs, epochs=20, batch_size=512).seed.tolist() == [2]
    assert benchmarks.query("plain_4k", runs).empty
    with pytest.raises(UserError, match="'batchsize'"):
        benchmarks.query(MEMBER, runs, batchsize=32)


def test_a_damaged_csv_is_refused_naming_the_line(runs):
    with open(runs, "a") as f:
        f.write("mnist,too,few\n")
    with pytest.raises(ResultsError, match="line 7"):
        benchmarks.query(MEMBER, runs)
