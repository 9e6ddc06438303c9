"""What a user feeds the harness never corrupts a result: every value is checked before any
work, SIGTERM is Ctrl-C, a checkpoint and its row are crash-consistent even under SIGKILL, a
diverging run writes nothing, and evaluate believes the weights over their sidecar."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors import SafetensorError

from benchmarks.__main__ import main
from benchmarks.harness import checkpoint
from benchmarks.harness.checkpoint import commit_run, save_run
from benchmarks.harness.data import DataError
from benchmarks.harness.train import check_loss
from benchmarks.tasks import hymenoptera, mnist_files
from benchmarks.tasks.mnist_files import verify_mnist
from errors import DivergedError
from models import build

TINY = ["--model", "plain_4k", "--epochs", "1", "--train-subset", "256", "--test-subset", "200",
        "--device", "cpu", "--threads", "1", "--progress", "false"]
ARCH = "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05"


def _err(capsys) -> str:
    err = capsys.readouterr().err.replace("\n", "")  # rich may wrap long lines
    assert "Traceback" not in err
    return err


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path))) if path.exists() else []


def _files(results: Path) -> list[str]:
    folder = results.parent / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ---- every value before any work ----------------------------------------------------------------

def test_every_seed_is_checked_before_any_seed_trains(mnist_root, tmp_path, capsys):
    results = tmp_path / "runs.csv"
    assert main(["mnist", *TINY, "--data-root", str(mnist_root), "--results", str(results),
                 "--seeds", "1", "-1"]) == 2
    assert "seed must be non-negative (got -1)" in _err(capsys)
    assert _rows(results) == [] and _files(results) == []


def test_a_seed_given_twice_trains_once_and_says_so(mnist_root, tmp_path, capsys):
    results = tmp_path / "runs.csv"
    assert main(["mnist", *TINY, "--data-root", str(mnist_root), "--results", str(results),
                 "--seeds", "1", "1", "--jobs", "2"]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert out.count("given more than once") == 1
    assert [r["seed"] for r in _rows(results)] == ["1"]


@pytest.mark.parametrize("flag, value", [("--test-subset", "-5"), ("--train-subset", "-3"),
                                         ("--final-div-factor", "0.5")])
def test_a_refusal_shows_the_value_that_failed(flag, value, tmp_path, capsys):
    assert main(["mnist", flag, value, "--results", str(tmp_path / "runs.csv")]) == 2
    assert f"{flag[2:].replace('-', '_')} must" in (err := _err(capsys))
    assert f"(got {float(value) if '.' in value else int(value)})" in err


# ---- signals and crashes ----------------------------------------------------------------------

def _run_patched(tmp_path: Path, mnist_root: Path, patch: str) -> subprocess.CompletedProcess:
    """`benchmarks mnist` in a child whose runs module has `patch` applied (it wraps a step of
    the save to signal the child at that very point)."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from benchmarks.harness import runs
        from benchmarks.__main__ import main
        """) + textwrap.dedent(patch) + "\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.run(
        [sys.executable, str(script), "mnist", *TINY, "--data-root", str(mnist_root),
         "--results", str(tmp_path / "runs.csv")],
        cwd=REPO, capture_output=True, text=True, timeout=300)


def test_sigterm_mid_training_leaves_neither_weights_nor_row(tmp_path, mnist_root):
    child = _run_patched(tmp_path, mnist_root, """
        real = runs.train
        def train(*a, **k):
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*a, **k)
        runs.train = train
        """)
    assert child.returncode == 143, child.stderr
    assert "interrupted" in child.stderr and "Traceback" not in child.stderr
    assert _rows(tmp_path / "runs.csv") == [] and _files(tmp_path / "runs.csv") == []


@pytest.mark.parametrize("step", ["save_run", "append_row"])
def test_sigterm_while_a_run_is_recorded_ends_after_row_and_weights(step, tmp_path,
                                                                     mnist_root):
    # Killed just after its weights are saved, a run must not leave them without a row.
    child = _run_patched(tmp_path, mnist_root, f"""
        real = runs.{step}
        def step(*a, **k):
            done = real(*a, **k)
            os.kill(os.getpid(), signal.SIGTERM)
            return done
        runs.{step} = step
        """)
    assert child.returncode == 143, child.stderr
    assert "Traceback" not in child.stderr
    (row,) = _rows(tmp_path / "runs.csv")
    files = _files(tmp_path / "runs.csv")
    assert [f for f in files if f.endswith("-final.safetensors")] and \
        not [f for f in files if f.endswith((".partial", ".pending", ".tmp"))], files


def test_sigkill_before_the_row_leaves_no_weights_that_any_reader_takes(tmp_path, mnist_root,
                                                                        capsys):
    child = _run_patched(tmp_path, mnist_root, """
        def append_row(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        runs.append_row = append_row
        """)
    assert child.returncode == -signal.SIGKILL
    results = tmp_path / "runs.csv"
    left = _files(results)
    assert left and not [f for f in left if f.endswith((".safetensors", ".json"))], left
    assert main(["clean", "--results", str(results)]) == 0
    assert _files(results) == []


def test_clean_leaves_a_live_runs_files_and_names_orphans(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    row = {"task": "mnist", "model": ARCH, "seed": 3, "epochs": 1, "arch": ARCH,
           "timestamp": "2025-01-02T03:04:05+00:00", "_result": {"history": []}}
    live = save_run(row, build(ARCH), directory=folder)  # claimed and locked: a live run
    orphan = save_run({**row, "seed": 4}, build(ARCH), directory=folder)
    commit_run(orphan)  # weights under final names, but runs.csv has no row for them
    before = _files(tmp_path / "runs.csv")
    assert main(["clean", "--results", str(tmp_path / "runs.csv")]) == 0
    assert _files(tmp_path / "runs.csv") == before  # the live run's and the orphan's kept
    assert "2 checkpoint file(s) with no row" in capsys.readouterr().out.replace("\n", " ")
    assert main(["clean", "--results", str(tmp_path / "runs.csv"), "--orphans"]) == 0
    assert all("-s3-" in f for f in _files(tmp_path / "runs.csv"))
    commit_run(live)


def test_full_disk_while_saving_weights_is_a_refusal(mnist_root, tmp_path, monkeypatch,
                                                     capsys):
    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")
    monkeypatch.setattr(checkpoint, "save_file", full)
    results = tmp_path / "runs.csv"
    assert main(["mnist", *TINY, "--data-root", str(mnist_root), "--results",
                 str(results)]) == 2
    assert "cannot save the checkpoint" in _err(capsys)
    assert _rows(results) == [] and _files(results) == []


# ---- divergence -------------------------------------------------------------------------------

def test_a_runaway_loss_is_divergence_on_any_learning_rate(mnist_root, tmp_path, capsys):
    results = tmp_path / "runs.csv"
    assert main(["mnist", *TINY, "--data-root", str(mnist_root), "--results", str(results),
                 "--lr", "1e9"]) == 1
    assert "training diverged" in _err(capsys)
    assert _rows(results) == [] and _files(results) == []


def test_the_divergence_bound_comes_from_a_uniform_guess():
    check_loss(2.5, 10, 1)  # a bad first epoch near ln 10 = 2.30 is no divergence
    with pytest.raises(DivergedError, match="ln 10"):
        check_loss(1.6e12, 10, 1)
    with pytest.raises(DivergedError, match="nan"):
        check_loss(float("nan"), 2, 3)


# ---- data and checkpoints ---------------------------------------------------------------------

def _image_root(source: Path, root: Path, classes: list[str]) -> Path:
    for split in ("train", "val"):
        for i, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            src = source / split / ("ants", "bees")[i % 2]
            for image in sorted(src.glob("*.jpg"))[:2]:
                shutil.copy(image, root / split / cls / image.name)
    return root


def test_a_one_class_image_folder_is_refused_before_training(hymenoptera_root, tmp_path,
                                                             capsys):
    root = _image_root(hymenoptera_root, tmp_path / "one", ["ants"])
    assert main(["hymenoptera", "--weights", "none", "--data-root", str(root), "--results",
                 str(tmp_path / "runs.csv"), "--image-size", "64", "--workers", "0"]) == 2
    assert "1 class folder(s)" in _err(capsys)
    assert _rows(tmp_path / "runs.csv") == []


def test_a_class_left_without_images_by_a_subset_is_refused(hymenoptera_root, tmp_path,
                                                            capsys):
    root = _image_root(hymenoptera_root, tmp_path / "two", ["ants", "bees"])
    assert main(["hymenoptera", "--weights", "none", "--data-root", str(root), "--results",
                 str(tmp_path / "runs.csv"), "--train-subset", "1", "--workers", "0"]) == 2
    assert "without images: bees" in _err(capsys)


def _checkpoint(folder: Path, config: dict, arch: str = ARCH, task: str = "mnist",
                model: torch.nn.Module | None = None) -> Path:
    row = {"task": task, "model": arch, "seed": 1, "epochs": 1, "arch": arch,
           "timestamp": "2025-01-02T03:04:05+00:00", "config": json.dumps(config),
           "_result": {"history": []}}
    paths = save_run(row, model or build(arch), directory=folder)
    commit_run(paths)
    return Path(paths["checkpoint"])


@pytest.mark.parametrize("config, says", [
    ("{not json", "'config' is not valid JSON"),
    ([1, 2], "'config' holds [1, 2], not str or dict"),
    ("[1, 2]", "'config' holds list, not a JSON object"),
    ({"task": "mnist", "test_subset": "200"}, "test_subset must be int (got str '200')"),
])
def test_a_damaged_sidecar_config_is_a_refusal(config, says, mnist_root, tmp_path, capsys):
    weights = _checkpoint(tmp_path, {})
    sidecar = weights.with_suffix(".json")
    side = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**side, "config": config}))
    assert main(["evaluate", "--checkpoint", str(weights), "--data-root",
                 str(mnist_root)]) == 2
    assert says in _err(capsys)


def test_a_sidecar_of_another_network_with_the_same_shapes_is_refused(mnist_root, tmp_path,
                                                                       capsys):
    weights = _checkpoint(tmp_path, {"task": "mnist", "test_subset": 200})
    sidecar = weights.with_suffix(".json")
    other = ARCH.replace("do0.05", "do0.1")  # the same parameter shapes
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "arch": other}))
    assert main(["evaluate", "--checkpoint", str(weights), "--data-root",
                 str(mnist_root)]) == 2
    err = _err(capsys)
    assert "belongs to another run" in err and other in err and ARCH in err


def test_evaluate_refuses_a_json_folder_and_a_checkpoint_folder_before_any_work(
        tmp_path, monkeypatch, capsys):
    weights = _checkpoint(tmp_path, {"task": "mnist", "test_subset": 200})
    monkeypatch.setattr("benchmarks.commands.evaluate.evaluate_checkpoint",
                        lambda *a: pytest.fail("evaluated before checking --json"))
    assert main(["evaluate", "--checkpoint", str(weights), "--json", str(tmp_path)]) == 2
    assert "is a folder" in _err(capsys)
    monkeypatch.undo()
    assert main(["evaluate", "--checkpoint", str(tmp_path)]) == 2
    err = _err(capsys)
    assert "is a folder" in err and ".safetensors not found" not in err


def test_a_checkpoint_of_other_classes_is_refused_on_a_folder(hymenoptera_root, tmp_path,
                                                              capsys):
    cfg = {"task": "hymenoptera", "weights": "none", "image_size": 64, "workers": 0}
    model = hymenoptera.model_from_arch("resnet18-finetune-none")  # two classes
    weights = _checkpoint(tmp_path / "ckpt", cfg, "resnet18-finetune-none", "hymenoptera", model)
    three = _image_root(hymenoptera_root, tmp_path / "three", ["ants", "bees", "wasps"])
    assert main(["evaluate", "--checkpoint", str(weights), "--device", "cpu", "--data-root",
                 str(three)]) == 2
    assert "tells 2 classes apart" in _err(capsys)
    one = _image_root(hymenoptera_root, tmp_path / "one", ["ants"])
    assert main(["evaluate", "--checkpoint", str(weights), "--device", "cpu", "--data-root",
                 str(one)]) == 2
    assert "1 class folder(s)" in _err(capsys)


def test_an_unreadable_mnist_file_is_named(mnist_root, monkeypatch):
    def denied(path, size, mtime):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(mnist_files, "_md5", denied)
    with pytest.raises(DataError, match="MNIST file unreadable: .*train-images.*Permission"):
        verify_mnist(mnist_root)
