"""What a user follows: hints runnable as printed, rows where --results says, a summary over
seeds."""

from __future__ import annotations

import csv

from benchmarks.__main__ import main as benchmarks_main
from search.__main__ import main as search_main

TINY = ["--epochs", "1", "--train-subset", "300", "--test-subset", "200", "--threads", "1"]


def test_a_multi_seed_run_ends_with_a_summary_over_its_seeds(mnist_root, tmp_path, capsys):
    assert benchmarks_main(["mnist", "--model", "plain_4k", *TINY, "--progress", "false",
                            "--device", "cpu", "--data-root", str(mnist_root), "--results",
                            str(tmp_path / "runs.csv"), "--seeds", "1", "2"]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    accs = [float(r["final_test_acc"]) for r in csv.DictReader(open(tmp_path / "runs.csv"))]
    assert f"2 seeds, final test accuracy: mean {sum(accs) / 2:.2f}%" in out
    assert f"min {min(accs):.2f}%" in out and "0 of 2 at 99.4% or more" in out


def test_search_hint_names_its_storage_and_confirm_writes_where_told(mnist_root, results_dir,
                                                                    tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    assert search_main(["run", "--storage", url, "--n-trials", "1", *TINY, "--no-live",
                        "--data-root", str(mnist_root), "--enqueue-zoo", "plain_4k"]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert f"`python -m search export --study mnist-accuracy --storage {url}`" in out
    rows = tmp_path / "confirmed.csv"
    assert search_main(["confirm", "--storage", url, "--study", "mnist-accuracy", "--top", "1",
                        "--results", str(rows), *TINY, "--data-root", str(mnist_root)]) == 0
    (row,) = csv.DictReader(open(rows))
    assert row["source"] == "search confirm mnist-accuracy:0"
    assert not (results_dir / "runs.csv").exists()  # nothing went to the default file
