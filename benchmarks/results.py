"""Result files: the append-only runs CSV and the leaderboard derived from it.

results/README.md documents every column. Numbers stay raw (no thousands separators).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS_DIR = Path(os.environ.get("NAS_RESULTS", "results"))

COLUMNS = [
    "task", "model", "arch", "family", "params", "macs", "epochs", "seed", "device",
    "device_name", "train_images", "test_images", "final_test_acc", "max_test_acc",
    "first_epoch_at_target", "test_acc_per_epoch", "final_val_acc", "max_val_acc",
    "val_acc_per_epoch", "test_top3_acc", "train_loss_per_epoch", "seconds",
    "images_per_second", "source", "torch_version", "git_commit", "timestamp", "config",
]


def git_commit() -> str:
    """Short commit of the code that ran, '-dirty' when it had uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=here, capture_output=True,  # noqa
                                        text=True, timeout=10).stdout.strip()
        sha = run("rev-parse", "--short", "HEAD")
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", ".", "../models",
                    "../search")
        return (sha + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_row(cfg, result: dict, *, arch: str, family: str, params: int, macs: int,
             source: str) -> dict:
    """The result row: the whole Config (as JSON) plus what the run measured."""
    hist = result["history"]
    test = [r["test_acc"] for r in hist if "test_acc" in r]
    val = [r["val_acc"] for r in hist if "val_acc" in r]
    at_target = next((r["epoch"] for r in hist if r.get("test_acc", 0) >= cfg.target), None)
    return {
        **asdict(cfg),
        "arch": arch, "family": family, "params": params, "macs": macs,
        "device": result["device"], "device_name": result["device_name"],
        "train_images": result.get("train_images"), "test_images": result.get("test_images"),
        "final_test_acc": test[-1] if test else None, "max_test_acc": max(test, default=None),
        "first_epoch_at_target": at_target, "test_acc_per_epoch": json.dumps(test),
        "final_val_acc": val[-1] if val else None, "max_val_acc": max(val, default=None),
        "val_acc_per_epoch": json.dumps(val),
        "test_top3_acc": result["test"]["top3"] if result.get("test") else None,
        "train_loss_per_epoch": json.dumps([r["train_loss"] for r in hist]),
        "seconds": result["seconds"], "images_per_second": result["images_per_second"],
        "source": source, "torch_version": torch.__version__, "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": json.dumps(asdict(cfg), sort_keys=True),
    }


def append_row(row: dict, path: Path | None = None) -> Path:
    """Append one row under an exclusive lock (many workers may share the file)."""
    path = Path(path or RESULTS_DIR / "runs.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        header = next(csv.reader(f), None)
        buf = io.StringIO()
        writer = csv.writer(buf)
        if header is None:
            header = COLUMNS
            writer.writerow(header)
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in header])
        f.seek(0, os.SEEK_END)
        f.write(buf.getvalue())  # one write: a failed run never leaves half a row
        f.flush()
        os.fsync(f.fileno())
    return path
