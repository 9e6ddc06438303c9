"""Result files: the append-only runs CSV and the leaderboard derived from it.

results/README.md documents every column. Numbers stay raw (no thousands separators).

The runs CSV is the record of every run, so its writer guarantees:
  - check_target() refuses a target that cannot take a row (a folder, an unwritable file, a
    damaged file) before any training starts: every command that appends calls it first;
  - a row is written whole or not at all: one os.write of the complete line under an exclusive
    flock, then fsync; on any failure the file is truncated back to its previous size;
  - a damaged file (bad header, a row with the wrong number of fields, an unbalanced quote, a
    last line without its newline) is refused with its line number and never appended to.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from models import UserError

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


# Columns the leaderboard computes with: a value there must be a number (or empty).
NUMBERS = ["params", "macs", "epochs", "seed", "train_images", "final_test_acc", "max_test_acc",
           "seconds"]


class ResultsError(UserError):
    """A runs CSV that cannot take a row, or a row that could not be written."""


def runs_path(path: Path | str | None = None) -> Path:
    return Path(path or RESULTS_DIR / "runs.csv")  # RESULTS_DIR read now: tests redirect it


def damaged(path: Path, line: int, why: str) -> ResultsError:
    return ResultsError(f"{path}, line {line}: {why}. The file is damaged: nothing is appended "
                        "to it and the leaderboard cannot read it until that line is repaired "
                        "or removed (results/README.md lists the columns)")


def check_header(header: list[str], path: Path) -> None:
    """The header must name every column, each once. Extra columns are kept (rows leave them
    empty); a header lacking columns is refused, since the writer would drop those values."""
    missing = [c for c in COLUMNS if c not in header]
    if missing or "" in header or len(set(header)) != len(header):
        why = (f"lacks the column(s) {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
               if missing else "has an empty or repeated column name")
        raise damaged(path, 1, f"not a runs header: it {why}")


def check_text(data: bytes, path: Path) -> list[str] | None:
    """The header of a runs CSV's contents (None when empty), or a ResultsError naming the
    first damaged line."""
    if not data:
        return None
    if not data.endswith(b"\n"):  # a row cut short; the next row would glue onto it
        raise damaged(path, data.count(b"\n") + 1, "the last line has no newline (a row cut "
                                                    "short?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise damaged(path, data.count(b"\n", 0, e.start) + 1, "not UTF-8 text") from None
    # strict: an unbalanced quote is an error, not a field that swallows the lines after it.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1  # the line the current record starts on (a quoted field may span lines)
    try:
        header = next(reader)
        check_header(header, path)
        numbers = [(c, header.index(c)) for c in NUMBERS]
        start = reader.line_num + 1
        for record in reader:
            if record:  # blank lines are skipped, as pandas does
                if len(record) != len(header):
                    raise damaged(path, start, f"{len(record)} fields, the header has "
                                               f"{len(header)}")
                for name, i in numbers:
                    if record[i] and not _is_number(record[i]):
                        raise damaged(path, start, f"{name} is {record[i][:40]!r}, not a number")
            start = reader.line_num + 1
    except csv.Error as e:
        raise damaged(path, start, f"not CSV ({e}; an unbalanced quote?)") from None
    return header


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while part := os.read(fd, 1 << 20):
        parts.append(part)
    return b"".join(parts)


def read_checked(path: Path | str | None = None) -> bytes:
    """The contents of an existing runs CSV, checked (under a shared lock, so never half a
    row being written): a ResultsError names the first damaged line."""
    path = runs_path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise ResultsError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        data = _read(fd)
    finally:
        os.close(fd)
    check_text(data, path)
    return data


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
    processes, may share the file). A damaged file is refused, never appended to."""
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
