"""Result files: the append-only runs CSV and the leaderboard derived from it.

results/README.md documents every column. Numbers stay raw (no thousands separators).

The runs CSV is the record of every run, so its writer guarantees:
  - check_target() refuses a target that cannot take a row (a folder, an unwritable file, a
    damaged file) before any training starts: every command that appends calls it first;
  - a row is written whole or not at all: one os.write of the complete line under an exclusive
    flock, then fsync; on any failure the file is truncated back to its previous size;
  - a damaged file (columns.parse: a bad header, a row with the wrong number of fields, an
    unbalanced quote, a last line without its newline, a value its column cannot hold) is
    refused with its line number and never appended to, and so is a row that would damage it.

Every reader of a runs CSV reads it with read_runs(), so it reads exactly what was checked.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import subprocess
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from .columns import (  # noqa: F401  (COLUMNS, KINDS, NUMBERS: the results API)
    COLUMNS,
    KINDS,
    NUMBERS,
    ResultsError,
    frame,
    parse,
    value_of,
)
from .config import RECIPE, SCOPE

RESULTS_DIR = Path(os.environ.get("NAS_RESULTS", "results"))


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
    """The result row: the whole Config (as JSON), what the run measured, and what ran it
    (`source`: the command; for a trial tested by `search confirm`, CONFIRMED + study:trial)."""
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


# How a confirmed trial's row source begins, study:trial after it. The runs CSV is append-only,
# so provenance stays in the column every row already has; found_by reads it back.
CONFIRMED = "search confirm "


def found_by(source) -> str | None:
    """The study:trial a row's run confirmed (`search confirm`), None for any other run."""
    source = str(source)
    return source.removeprefix(CONFIRMED) if source.startswith(CONFIRMED) else None


def runs_path(path: Path | str | None = None) -> Path:
    return Path(path or RESULTS_DIR / "runs.csv")  # RESULTS_DIR read now: tests redirect it


def check_text(data: bytes, path: Path) -> list[str] | None:
    """The header of a runs CSV's contents (None when empty), or a ResultsError naming the
    first damaged line."""
    return parse(data, path)[0]


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while part := os.read(fd, 1 << 20):
        parts.append(part)
    return b"".join(parts)


def _read_locked(path: Path) -> bytes:
    """The file's bytes, read under a shared lock, so never half a row being written."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise ResultsError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return _read(fd)
    finally:
        os.close(fd)


def read_checked(path: Path | str | None = None) -> bytes:
    """The contents of an existing runs CSV, checked: a ResultsError names the first damaged
    line."""
    path = runs_path(path)
    data = _read_locked(path)
    parse(data, path)
    return data


def read_runs(path: Path | str | None = None) -> pd.DataFrame:
    """A runs CSV as a table, for every reader: each value checked and typed by its column's
    kind (columns.frame), or a ResultsError naming the file's first damaged line. An empty
    file (0 bytes) is refused."""
    path = runs_path(path)
    header, rows = parse(_read_locked(path), path)
    if header is None:
        raise ResultsError(f"{path} is empty (0 bytes): no header line and no runs")
    return frame(header, rows)


def seeds_done(cfg, path: Path | str | None = None) -> set[int]:
    """The seeds that already have a row in the runs CSV for `cfg`'s run: the same value of
    every recipe and scope field but the seed (a field a row predates counts at its default).
    Where it ran (device, threads, precision) does not matter; a missing file holds none."""
    path = runs_path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    keys = [f for f in fields(cfg) if f.name != "seed"
            and f.metadata.get("concern") in (RECIPE, SCOPE)]
    done = set()
    for text in read_runs(path)["config"]:
        ran = json.loads(text)
        if all(ran.get(f.name, f.default) == getattr(cfg, f.name) for f in keys):
            done.add(ran["seed"])
    return done


def check_target(path: Path | str | None = None) -> Path:
    """Pre-flight, before any data is loaded or any training starts: the runs CSV (and its
    checkpoints folder) can take a row. A ResultsError says why not."""
    path = runs_path(path)
    try:
        _check_file(path)
        # Checkpoints live beside the CSV (checkpoint.checkpoint_dir); a run saves them first.
        _check_folder(path.parent / "checkpoints", "cannot save the run's checkpoints")
    except OSError as e:  # stat itself refused, e.g. a folder on the way that we cannot enter
        raise ResultsError(f"{path}: cannot check it ({e.strerror or e})") from None
    return path


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise ResultsError(f"{path} is a folder; --results takes the runs CSV file "
                           f"(e.g. {path / 'runs.csv'})")
    if not path.exists():
        _check_folder(path.parent, f"cannot create {path}")
        return
    if not path.is_file():
        raise ResultsError(f"{path} is not a regular file; --results takes a CSV file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ResultsError(f"{path} is not writable (permissions); no run can record its row "
                           "there")
    read_checked(path)


def _check_folder(folder: Path, what: str) -> None:
    """`folder`, or the nearest part of it that exists, is a writable folder."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ResultsError(f"{what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ResultsError(f"{what}: {folder} is not writable (permissions)")


def check_row(row: dict) -> None:
    """A row about to be appended holds what each column may (KINDS), else a ResultsError."""
    for name, kind in KINDS.items():
        text = "" if row.get(name) is None else str(row[name])
        try:
            value_of(kind, text)
        except ValueError as e:
            raise ResultsError(f"the run's row was not written: its {name} is {text[:40]!r}: "
                               f"{e}") from None


def encode(row: dict, header: list[str], with_header: bool) -> bytes:
    """The row as CSV in the header's column order; csv's own \\r\\n line ends, as the file
    has always had."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    if with_header:
        writer.writerow(header)
    writer.writerow(["" if row.get(c) is None else row.get(c) for c in header])
    return buf.getvalue().encode("utf-8")


def append_row(row: dict, path: Path | None = None) -> Path:
    """Append one row, whole or not at all, under an exclusive lock (many workers, threads or
    processes, may share the file). A damaged file is refused, never appended to, and so is a
    row that would damage it (a value its column cannot hold)."""
    check_row(row)
    path = check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: every write lands at the end. flock, not fcntl's POSIX locks: those never
    # conflict between threads of one process, flock locks on separate open()s do.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = _read(fd)  # checked again under the lock: another writer may have come first
        header = check_text(data, path)
        line = encode(row, header or COLUMNS, with_header=header is None)
        _write_whole(fd, line, len(data), path)
    finally:
        os.close(fd)  # releases the lock
    return path


def _write_whole(fd: int, line: bytes, size: int, path: Path) -> None:
    """One write of the whole line, then fsync; on any failure (a full disk writes part of it,
    then fails) cut the file back to `size` bytes, so it never ends inside a row."""
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, f"only {written} of {len(line)} bytes written")
        os.fsync(fd)
    except BaseException as e:  # Ctrl-C too: the file must not keep part of the row
        try:
            os.ftruncate(fd, size)
        except OSError as cut:
            raise ResultsError(f"{path}: writing the row failed ({e}) and so did cutting the "
                               f"file back ({cut}): it may end in a partial row; truncate it "
                               f"to {size} bytes") from e
        if not isinstance(e, OSError):
            raise
        raise ResultsError(f"{path}: no row was written ({e.strerror or e}); the file is as "
                           "it was") from None
