"""The MNIST harness end to end on a slice: CLI, result rows, errors, leaderboard."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from benchmarks.__main__ import main
from benchmarks.harness.config import Config
from benchmarks.harness.results import COLUMNS
from benchmarks.tasks.mnist_files import MNIST_MD5

SMOKE = ["--epochs", "2", "--train-subset", "2000", "--batch-size", "64", "--test-subset", "500",
         "--progress", "false", "--device", "cpu"]


def run_cli(*args) -> int:
    return main(["mnist", *args])


def test_smoke_run_writes_one_row_per_seed(mnist_root, results_dir):
    runs = results_dir / "runs.csv"
    assert run_cli("--model", "plain_7k", "--seeds", "1", "2", "--data-root", str(mnist_root),
                   "--results", str(runs), *SMOKE) == 0
    df = pd.read_csv(runs)
    assert list(df.columns) == COLUMNS
    assert list(df.seed) == [1, 2]
    row = df.iloc[0]
    assert row.task == "mnist" and row.model == "plain_7k" and row.params == 6570
    assert row.arch == "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05" and row.epochs == 2
    accs = json.loads(row.test_acc_per_epoch)
    assert len(accs) == 2 and row.final_test_acc == accs[-1] and row.max_test_acc == max(accs)
    assert 30 < row.final_test_acc <= 100  # percent, and it learned something in 2 epochs
    assert row.train_images == 2000 and row.test_images == 500 and row.device == "cpu"
    assert json.loads(row.config)["train_subset"] == 2000


def test_seeds_side_by_side_match_seeds_one_by_one(mnist_root, results_dir, capsys):
    """--jobs 2 trains the seeds in two threads, one CPU thread each: the same rows as one
    after another with one thread (a thread count changes the order of float sums)."""
    rows = {}
    for jobs in ("1", "2"):
        runs = results_dir / f"jobs{jobs}.csv"
        assert run_cli("--model", "plain_7k", "--seeds", "1", "2", "--jobs", jobs,
                       *(["--threads", "1"] if jobs == "1" else []),
                       "--data-root", str(mnist_root), "--results", str(runs), *SMOKE) == 0
        rows[jobs] = pd.read_csv(runs).sort_values("seed")
    out = capsys.readouterr().out
    assert "2 seeds at a time" in out and "seed 2 epoch 2" in out  # a line per epoch instead
    for column in ("seed", "final_test_acc", "test_acc_per_epoch", "train_loss_per_epoch"):
        assert list(rows["1"][column]) == list(rows["2"][column])
    assert run_cli("--jobs", "0", "--data-root", str(mnist_root), *SMOKE) == 2


def test_seeds_repeat(mnist_root, results_dir):
    runs = results_dir / "runs.csv"
    for _ in range(2):
        run_cli("--model", "plain_4k", "--seeds", "3", "--data-root", str(mnist_root),
                "--results", str(runs), *SMOKE)
    df = pd.read_csv(runs)
    assert df.test_acc_per_epoch[0] == df.test_acc_per_epoch[1]
    assert df.train_loss_per_epoch[0] == df.train_loss_per_epoch[1]


def test_val_split_holds_out_images(mnist_root, results_dir):
    runs = results_dir / "runs.csv"
    assert run_cli("--model", "plain_4k", "--val-split", "10000", "--data-root", str(mnist_root),
                   "--results", str(runs), *SMOKE[:2], "--progress", "false",
                   "--train-subset", "800", "--test-subset", "300") == 0
    row = pd.read_csv(runs).iloc[0]
    assert len(json.loads(row.val_acc_per_epoch)) == 2
    assert row.train_images == 800
    # A selection experiment: the test split is not even loaded, as in the search.
    assert pd.isna(row.final_test_acc) and pd.isna(row.test_images)
    assert json.loads(row.test_acc_per_epoch) == []


def _copy_mnist(src, dst):
    raw = dst / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        os.symlink(src / "MNIST" / "raw" / name, raw / name)
    return raw


def test_missing_data_names_path(tmp_path, results_dir, capsys):
    assert run_cli("--data-root", str(tmp_path), "--results", str(results_dir / "r.csv"),
                   *SMOKE) == 2
    err = capsys.readouterr().err
    assert "MNIST file missing" in err and str(tmp_path) in err
    assert not (results_dir / "r.csv").exists()


def test_failed_download_says_how_to_point_at_local_files(tmp_path, results_dir, capsys,
                                                         monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(MNIST, "download", offline)
    monkeypatch.delenv("MNIST_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # no --data-root, no MNIST_ROOT: torchvision downloads to ./data
    assert run_cli("--results", str(results_dir / "r.csv"), *SMOKE) == 2
    err = capsys.readouterr().err
    assert "could not be downloaded (Error downloading" in err and "--data-root" in err
    assert "MNIST_ROOT" in err and "Traceback" not in err
    assert not (results_dir / "r.csv").exists()


def test_corrupt_data_names_file_and_checksum(mnist_root, tmp_path, results_dir, capsys):
    raw = _copy_mnist(mnist_root, tmp_path)
    bad = raw / "t10k-labels-idx1-ubyte"
    data = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert run_cli("--data-root", str(tmp_path), "--results", str(results_dir / "r.csv"),
                   *SMOKE) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "corrupt" in err and "t10k-labels-idx1-ubyte" in err
    assert MNIST_MD5["t10k-labels-idx1-ubyte"] in err
    assert not (results_dir / "r.csv").exists()


def test_unknown_model_lists_known(results_dir, capsys):
    assert run_cli("--model", "nope_3k", "--results", str(results_dir / "r.csv")) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope_3k'" in err and "plain_7k" in err


def test_over_budget_model_refused_before_training(results_dir, capsys):
    wide = "c64-c64-c64-t10-gap|do0"
    assert run_cli("--model", wide, "--results", str(results_dir / "r.csv")) == 2
    assert "over the budget of 20,000" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, why", [
    ("--epochs", "0", "epochs must be at least 1"),
    ("--lr", "-1", "lr must be positive"),
    ("--schedule", "sometimes", "schedule must be one of"),
    ("--device", "tpu", "device must be"),
])
def test_invalid_options_say_which_and_why(flag, value, why, results_dir, capsys):
    assert run_cli(flag, value, "--results", str(results_dir / "r.csv")) == 2
    err = capsys.readouterr().err
    assert "invalid option" in err and why in err


def test_bad_flag_type_exits_nonzero(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("--epochs", "many")
    assert e.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_failed_run_writes_no_partial_row(mnist_root, results_dir, capsys):
    runs = results_dir / "runs.csv"
    assert run_cli("--model", "plain_4k", "--data-root", str(mnist_root), "--results",
                   str(runs), *SMOKE) == 0
    before = runs.read_bytes()
    # A learning rate this large makes the loss overflow: the run fails, nothing is appended.
    assert run_cli("--model", "plain_4k", "--lr", "1e30", "--data-root", str(mnist_root),
                   "--results", str(runs), *SMOKE) == 1
    assert "diverged" in capsys.readouterr().err
    assert runs.read_bytes() == before


def test_leaderboard_groups_seeds(mnist_root, results_dir, capsys):
    runs = results_dir / "runs.csv"
    run_cli("--model", "plain_4k", "--seeds", "1", "2", "--data-root", str(mnist_root),
            "--results", str(runs), *SMOKE)
    assert main(["leaderboard", "--results-dir", str(results_dir)]) == 0
    board = pd.read_csv(results_dir / "leaderboard.csv")
    assert len(board) == 1
    row = board.iloc[0]
    df = pd.read_csv(runs)
    assert row.seeds == 2 and row.params == 3690
    assert row.mean_test_acc == pytest.approx(df.final_test_acc.mean(), abs=1e-4)
    assert row.min_test_acc == df.final_test_acc.min()
    assert "plain_4k" in capsys.readouterr().out


def test_leaderboard_without_runs_is_a_clear_error(tmp_path, capsys):
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 2
    assert "no runs yet" in capsys.readouterr().err


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().epochs = 3  # type: ignore[misc]


def test_params_report_cli(capsys, tmp_path):
    from models.__main__ import main as models_main

    assert models_main([]) == 0
    out = capsys.readouterr().out
    assert "plain_7k" in out and "6,570" in out
    assert models_main(["--csv", str(tmp_path / "zoo.csv")]) == 0
    zoo = pd.read_csv(tmp_path / "zoo.csv")
    assert set(zoo.columns) == {"name", "family", "params", "macs", "receptive_field", "arch"}
    assert (zoo.params < 20000).all() and len(zoo) >= 12
    assert models_main(["summary", "resnet_8k"]) == 0
    assert "Residual" in capsys.readouterr().out


def test_kernels_held_down_are_named_in_the_device(monkeypatch):
    """Kernels held below the CPU's own (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY) compute as
    another CPU kind does, so the row must not pass for a run of this CPU's own kernels."""
    import torch

    from benchmarks.harness import device

    for var in device.KERNEL_CAPS:
        monkeypatch.delenv(var, raising=False)
    own = device.device_name(torch.device("cpu"))
    assert "kernels" not in own
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    held = device.device_name(torch.device("cpu"))
    assert held != own and "kernels oneDNN AVX2" in held
