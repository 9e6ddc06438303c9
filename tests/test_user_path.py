"""What a user follows: hints runnable as printed, rows where --results says, a summary over
seeds, the study a command reads named first, and output that, piped, keeps every
architecture string and path whole on one line (copy-paste from a log or `| less` works)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
from conftest import REPO

from models import arch_of, list_models

TINY = ["--epochs", "1", "--train-subset", "300", "--test-subset", "200", "--threads", "1"]
ARCH = "v8-v12-p-t8-v12-v12-v12-t10-gap|do0"  # longer than a table column at 80 columns


def piped(*argv, tmp_path) -> tuple[list[str], str]:
    """`python -m ARGV | ...` in an 80-column terminal: stdout's lines, and stderr."""
    env = {**os.environ, "COLUMNS": "80", "NAS_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, "-m", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines(), done.stderr


def assert_whole(tokens, lines: list[str]) -> None:
    for token in tokens:
        assert any(token in line for line in lines), f"{token} is cut across lines"


def test_piped_tables_keep_architecture_strings_whole(tmp_path):
    lines, _ = piped("models", tmp_path=tmp_path)
    assert_whole([arch_of(name) for name in list_models()], lines)
    shutil.copy(REPO / "results" / "runs.csv", tmp_path / "runs.csv")
    lines, _ = piped("benchmarks", "leaderboard", "--results-dir", tmp_path, tmp_path=tmp_path)
    assert_whole(pd.read_csv(tmp_path / "leaderboard.csv")["arch"], lines)


def test_a_multi_seed_run_ends_with_a_summary_over_its_seeds(mnist_root, tmp_path):
    runs = tmp_path / "a folder with a name long enough to pass 80 columns" / "runs.csv"
    lines, _ = piped("benchmarks", "mnist", "--model", ARCH, *TINY, "--progress", "false",
                     "--device", "cpu", "--data-root", mnist_root, "--results", runs,
                     "--seeds", 1, 2, tmp_path=tmp_path)
    accs = [float(r["final_test_acc"]) for r in csv.DictReader(open(runs))]
    assert_whole([ARCH], lines)
    weights = [line.split("weights: ")[1] for line in lines if "weights: " in line]
    assert len(weights) == 2 and all(Path(w).is_file() for w in weights)  # each path whole
    assert lines[-1].startswith(f"2 seeds, final test accuracy: mean {sum(accs) / 2:.2f}%")
    assert f"min {min(accs):.2f}%" in lines[-1] and "0 of 2 at 99.4% or more" in lines[-1]


def test_search_commands_name_their_storage_and_hints_run_as_printed(mnist_root, tmp_path):
    folder = tmp_path / "a folder with a name long enough to pass 80 columns"
    url = f"sqlite:///{folder / 'mine.db'}"
    flag = f"--storage '{url}'"  # quoted: the path has spaces
    lines, _ = piped("search", "run", "--storage", url, "--n-trials", 1, *TINY, "--no-live",
                     "--data-root", mnist_root, "--enqueue-zoo", "plain_4k", tmp_path=tmp_path)
    assert_whole([arch_of("plain_4k"), f"`python -m search export --study mnist-accuracy "
                                       f"{flag}`"], lines)
    reading = f"reading study mnist-accuracy in {url} (1 trial)"
    rows = tmp_path / "confirmed.csv"
    lines, _ = piped("search", "confirm", "--storage", url, "--study", "mnist-accuracy",
                     "--top", 1, "--results", rows, *TINY, "--data-root", mnist_root,
                     tmp_path=tmp_path)
    (row,) = csv.DictReader(open(rows))
    assert lines[0] == reading and row["source"] == "search confirm mnist-accuracy:0"
    assert_whole([arch_of("plain_4k")], lines)
    assert not (tmp_path / "results" / "runs.csv").exists()  # nothing went to the default file
    lines, _ = piped("search", "export", "--storage", url, "--study", "mnist-accuracy",
                     "--out", folder, tmp_path=tmp_path)
    assert lines == [reading, f"wrote {folder / 'mnist-accuracy-trials.csv'}"]
    lines, err = piped("search", "promote", "--storage", url, "--study", "mnist-accuracy",
                       "--trial", 0, tmp_path=tmp_path)
    assert err.splitlines() == [reading]
    assert tomllib.loads("\n".join(lines))  # stdout: the member's TOML table only
