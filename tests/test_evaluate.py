"""A tiny real run saves its checkpoints; `evaluate` reproduces the recorded accuracy exactly."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from conftest import REPO

from benchmarks.__main__ import main
from benchmarks.harness.config import Config
from benchmarks.tasks import mnist
from benchmarks.tasks.mnist import load_data
from benchmarks.tasks.run import run_one


@pytest.fixture(scope="module")
def run(mnist_root, tmp_path_factory):
    """Two epochs on 1,500 training digits, with a validation split: a final and a best
    checkpoint next to the run's own runs.csv."""
    cfg = Config(model="plain_7k", epochs=2, train_subset=1500, batch_size=32, val_split=1000,
                 test_subset=1000, seed=2, device="cpu", threads=1, progress=False,
                 data_root=str(mnist_root))
    results = tmp_path_factory.mktemp("results") / "runs.csv"
    row = run_one(mnist, cfg, load_data(cfg, torch.device("cpu")), results=results)
    return row, results


def _evaluate(capsys, *args) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_final_and_best_checkpoints(run):
    row, results = run
    final, best = row["checkpoint"], row["best_checkpoint"]
    assert final.startswith(str(results.parent / "checkpoints" / "mnist-plain_7k-s2-"))
    assert final.endswith("-final.safetensors") and best.endswith("-best.safetensors")
    side = json.loads(open(final.replace(".safetensors", ".json")).read())
    assert side["final_test_acc"] == row["final_test_acc"] and side["arch"] == row["arch"]
    assert side["seed"] == 2 and side["git_commit"] == row["git_commit"]
    assert json.loads(side["config"])["val_split"] == 1000
    assert [r["epoch"] for r in side["history"]] == [1, 2]
    assert "checkpoint" not in open(results).readline().split(",")  # CSV columns unchanged


def test_evaluate_reproduces_the_recorded_test_accuracy(run, mnist_root, tmp_path, capsys):
    row, _ = run
    assert 20 < row["final_test_acc"] < 100  # it learned something; not a constant guess
    out_json = tmp_path / "eval.json"
    code, out, _ = _evaluate(capsys, "--checkpoint", row["checkpoint"], "--device", "cpu",
                             "--data-root", mnist_root, "--json", out_json)
    assert code == 0
    r = json.loads(out_json.read_text())
    assert r["test_acc"] == row["final_test_acc"]  # exactly, not approximately
    assert r["matches_recorded"] is True and r["images"] == 1000
    assert r["top3"] == row["test_top3_acc"]
    assert sum(map(sum, r["confusion"])) == 1000 and len(r["recall"]) == 10
    assert "Confusion" in out and "precision" in out and "(same)" in out


def test_best_checkpoint_reproduces_its_validation_accuracy(run, mnist_root, tmp_path,
                                                            capsys):
    row, _ = run
    out_json = tmp_path / "val.json"
    code, _, _ = _evaluate(capsys, "--checkpoint", row["best_checkpoint"], "--split", "val",
                           "--device", "cpu", "--data-root", mnist_root, "--json", out_json)
    assert code == 0
    r = json.loads(out_json.read_text())
    assert r["val_acc"] == row["max_val_acc"] and r["matches_recorded"] is True
    assert r["checkpoint_kind"] == "best"


def test_bad_checkpoints_exit_2_naming_the_file(run, tmp_path, capsys):
    row, _ = run
    src = row["checkpoint"]
    weights = tmp_path / "copy.safetensors"
    shutil.copy(src, weights)
    code, _, err = _evaluate(capsys, "--checkpoint", weights)  # no sidecar beside it
    assert code == 2 and "copy.json" in err and "missing" in err

    side = json.loads(open(src.replace(".safetensors", ".json")).read())
    (tmp_path / "copy.json").write_text(json.dumps({**side, "arch": "v8-v8-t10-gap|do0"}))
    code, _, err = _evaluate(capsys, "--checkpoint", weights)
    # The weights say which network they are: a sidecar naming another is refused.
    assert code == 2 and "copy.safetensors" in err and "belongs to another run" in err

    (tmp_path / "copy.json").write_text(json.dumps(side))
    weights.write_bytes(open(src, "rb").read()[:1000])
    code, _, err = _evaluate(capsys, "--checkpoint", weights)
    assert code == 2 and "copy.safetensors" in err and "truncated" in err


# The checkpoints in git (results/checkpoints/ is ignored but for these).
COMMITTED = [REPO / p for p in subprocess.run(
    ["git", "ls-files", "results/checkpoints/*-final.safetensors"], cwd=REPO,
    capture_output=True, text=True).stdout.split()]


@pytest.mark.parametrize("weights", COMMITTED, ids=lambda p: p.name)
def test_committed_checkpoints_still_evaluate_to_their_recorded_accuracy(weights, mnist_root,
                                                                         tmp_path, capsys):
    """Old checkpoints load in today's harness: nothing changes for the user. The
    recording machine's fp32 sums ran in its own order: on another CPU kind a logit near a tie
    may round the other way, so one image of the 10,000 (0.01 points) may differ, no more."""
    out_json = tmp_path / "eval.json"
    code, _, _ = _evaluate(capsys, "--checkpoint", weights, "--device", "cpu", "--data-root",
                           mnist_root, "--json", out_json)
    assert code == 0
    r = json.loads(out_json.read_text())
    assert r["images"] == 10_000 and abs(r["test_acc"] - r["recorded_acc"]) <= 0.01 + 1e-9
