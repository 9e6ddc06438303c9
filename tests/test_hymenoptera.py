"""The ants/bees transfer task on CPU: random-init ResNet18, a handful of small images."""

from __future__ import annotations

import csv
import json
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.harness.config import Config
from benchmarks.harness.data import DataError
from benchmarks.tasks import hymenoptera, resnet, task_config
from benchmarks.tasks.images import balanced_subset, load_image_splits
from benchmarks.tasks.run import run_one
from errors import UserError

# Tiny and fast: 64px crops, one thread, no worker processes.
FAST = ["--image-size", "64", "--threads", "1", "--workers", "0", "--batch-size", "4",
        "--progress", "false"]


@pytest.fixture(scope="module")
def tiny_root(hymenoptera_root, tmp_path_factory) -> Path:
    """Three images per class per folder, copied from the real set."""
    root = tmp_path_factory.mktemp("hymenoptera")
    for split in ("train", "val"):
        for cls in ("ants", "bees"):
            (root / split / cls).mkdir(parents=True)
            for src in sorted((hymenoptera_root / split / cls).glob("*.jpg"))[:3]:
                shutil.copy(src, root / split / cls / src.name)
    return root


def test_cli_writes_a_hymenoptera_row(tiny_root, tmp_path, capsys):
    results = tmp_path / "runs.csv"
    rc = main(["hymenoptera", "--weights", "none", "--epochs", "1", "--data-root",
               str(tiny_root), "--results", str(results), *FAST])
    out = capsys.readouterr().out
    assert rc == 0
    assert "weights: none (random initialisation)" in out
    (row,) = list(csv.DictReader(open(results)))
    assert row["task"] == "hymenoptera" and row["model"] == "resnet18"
    assert row["arch"] == "resnet18-finetune-none" and row["family"] == "resnet18"
    assert row["train_images"] == "6" and row["test_images"] == "6"
    assert row["epochs"] == "1" and len(json.loads(row["test_acc_per_epoch"])) == 1
    assert 0 <= float(row["final_test_acc"]) <= 100
    assert int(row["params"]) == 11_177_538  # ResNet18 with a 2-class head, all parameters
    cfg = json.loads(row["config"])
    assert cfg["lr"] == 0.001 and cfg["schedule"] == "step" and cfg["momentum"] == 0.9
    # The saved weights rebuild through model_from_arch and re-test to the same accuracy.
    (ckpt,) = (tmp_path / "checkpoints").glob("hymenoptera-resnet18-s1-*-final.safetensors")
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--device", "cpu", "--data-root",
                 str(tiny_root), "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["test_acc"] == float(row["final_test_acc"]) and r["classes"] == ["ants", "bees"]


def test_task_defaults_yield_to_flags():
    cfg = task_config("hymenoptera", lr=0.01)
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.schedule) == (0.01, 4, 25, "step")
    assert Config().lr == 0.05  # MNIST keeps its own defaults


def test_feature_mode_trains_only_the_head(tiny_root):
    cfg = task_config("hymenoptera", mode="feature", weights="none", epochs=1,
                      data_root=str(tiny_root), image_size=64, workers=0, threads=1,
                      progress=False, lr=0.1)
    data = hymenoptera.load_data(cfg, torch.device("cpu"))
    model = hymenoptera.make_model(cfg)
    before = {k: v.clone() for k, v in model.named_parameters()}
    row = run_one(hymenoptera, cfg, data, results=False, model=model)
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}
    assert row["arch"] == "resnet18-feature-none" and row["trainable_params"] == 512 * 2 + 2


def test_layer4_mode_freezes_what_comes_before():
    model = hymenoptera.make_model(task_config("hymenoptera", mode="layer4", weights="none"))
    trained = {k.split(".")[0] for k, p in model.named_parameters() if p.requires_grad}
    assert trained == {"layer4", "fc"}


def test_missing_imagenet_weights_name_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as e:
        hymenoptera.make_model(task_config("hymenoptera", weights="imagenet"))
    msg = str(e.value)
    assert "resnet18-f37072fd.pth" in msg and str(tmp_path) in msg
    assert "run once with internet" in msg and "--weights PATH" in msg


def test_cached_imagenet_file_loads_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("net"))
    torch.manual_seed(0)
    fake = resnet.resnet18().state_dict()  # stands in for the ImageNet file (1000 classes)
    resnet.imagenet_cache_file().parent.mkdir(parents=True)
    torch.save(fake, resnet.imagenet_cache_file())
    model = hymenoptera.make_model(task_config("hymenoptera", weights="imagenet"))
    assert torch.equal(model.conv1.weight, fake["conv1.weight"])
    assert model.fc.out_features == 2 and model.arch == "resnet18-finetune-imagenet"
    assert "from the cache" in model.weights_used


def test_weights_file_and_bad_files(tmp_path):
    good = tmp_path / "w.pth"
    torch.save({"state_dict": resnet.resnet18().state_dict()}, good)
    model = hymenoptera.make_model(task_config("hymenoptera", weights=str(good)))
    assert model.arch.startswith("resnet18-finetune-file.")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a state dict")
    with pytest.raises(UserError, match="not a readable state-dict file"):
        hymenoptera.make_model(task_config("hymenoptera", weights=str(garbage)))
    other = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="does not fit ResNet18|not a ResNet18"):
        hymenoptera.make_model(task_config("hymenoptera", weights=str(other)))
    with pytest.raises(UserError, match="weights file not found"):
        hymenoptera.make_model(task_config("hymenoptera", weights=str(tmp_path / "nope.pth")))


def test_unreadable_image_is_named(tiny_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    bad = root / "train" / "bees" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    rc = main(["hymenoptera", "--weights", "none", "--epochs", "1", "--data-root", str(root),
               "--results", str(tmp_path / "runs.csv"), *FAST])
    err = capsys.readouterr().err.replace("\n", "")  # rich wraps long lines
    assert rc == 2 and str(bad) in err and "unreadable image" in err
    assert not (tmp_path / "runs.csv").exists()


def test_bad_image_in_a_worker_is_named(tiny_root, tmp_path):
    """A file that goes bad after the up-front check is still reported by path."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    cfg = task_config("hymenoptera", data_root=str(root), image_size=64, workers=1)
    train, _ = load_image_splits(cfg, torch.device("cpu"))
    victim = Path(train.folder.samples[0][0])
    victim.write_bytes(b"garbage")
    with pytest.raises(DataError, match=f"unreadable image file {victim}") as e:
        list(train.eval_batches(4))
    assert "Traceback" not in str(e.value)


def test_missing_folder_names_the_ways_to_set_it(tmp_path):
    with pytest.raises(DataError, match="HYMENOPTERA_ROOT"):
        load_image_splits(task_config("hymenoptera", data_root=str(tmp_path)), "cpu")


def test_subset_is_balanced_and_deterministic():
    samples = [(f"a{i}", 0) for i in range(5)] + [(f"b{i}", 1) for i in range(5)]
    assert balanced_subset(samples, 3) == [("a0", 0), ("b0", 1), ("a1", 0)]


def test_model_from_arch_rebuilds_the_network():
    model = hymenoptera.model_from_arch("resnet18-layer3-file.0a1b2c3d")
    assert model.fc.out_features == 2 and not model.layer2[0].conv1.weight.requires_grad
    with pytest.raises(UserError):
        hymenoptera.model_from_arch("resnet18-everything-none")


def test_search_runs_on_the_task(tiny_root, tmp_path):
    import optuna

    from search.__main__ import main as search_main

    storage = f"sqlite:///{tmp_path / 'search.db'}"
    rc = search_main(["run", "--task", "hymenoptera", "--n-trials", "1", "--epochs", "2",
                      "--weights", "none", "--data-root", str(tiny_root), "--storage", storage,
                      "--no-live", "--seed", "1", "--image-size", "64", "--threads", "1",
                      "--workers", "0"])
    assert rc == 0
    (trial,) = optuna.load_study(study_name="hymenoptera-accuracy", storage=storage).trials
    assert trial.user_attrs["status"] == "complete"
    assert set(trial.params) == {"lr", "momentum", "schedule", "epochs", "mode"}
    assert 1 <= trial.params["epochs"] <= 2  # the study's --epochs caps the sampled epochs
    assert trial.user_attrs["arch"] == f"resnet18-{trial.params['mode']}-none"
    assert len(trial.user_attrs["val_acc_per_epoch"]) == trial.params["epochs"]


def test_commands_leave_torchvision_unimported_until_the_task_needs_it():
    """Every `python -m benchmarks` command builds this task's parser; importing torchvision
    then (it brings torch._dynamo) cost each command seconds, a help text included."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import sys\nfrom benchmarks.__main__ import main\ntry:\n main(['--help'])\n"
            "except SystemExit:\n pass\nprint('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[-1] == "False", out.stderr
