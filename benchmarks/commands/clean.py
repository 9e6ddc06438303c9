"""python -m benchmarks clean: remove what runs killed mid-save left beside a runs CSV.

A run writes its weights under partial names and renames them only after its row is appended
(harness/checkpoint.py), so a run killed in between (SIGKILL, a power cut) leaves a claim and
partial files that no reader looks at. This command removes them, leaving a live run's alone.
With --orphans it also removes weights without a row in the runs CSV (the layout before, or a
row deleted by hand); without it, it only names them.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import io
import os
import re
from pathlib import Path

from rich.console import Console


def find_leftovers(directory: Path) -> list[Path]:
    """Files that runs killed before their row was written left in `directory`: their claims
    (no live process holds the lock), partial and temporary files. A live run's are kept."""
    from ..harness.checkpoint import PARTIAL, PENDING

    live = set()
    for pending in directory.glob(f"*{PENDING}"):
        try:
            fd = os.open(pending, os.O_RDONLY)
        except FileNotFoundError:  # its run has just finished
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.add(pending.name[: -len(PENDING)])
        finally:
            os.close(fd)
    stem_of = re.compile(r"(.+?)-(?:final|best)\.")
    left = []
    for path in sorted(directory.iterdir()):
        if path.name.endswith(PENDING):
            stem = path.name[: -len(PENDING)]
        elif path.name.endswith((PARTIAL, ".tmp")):
            m = stem_of.match(path.name)
            stem = m[1] if m else None
        else:
            continue
        if stem not in live:
            left.append(path)
    return left


def orphans(results: Path | None) -> list[Path]:
    """Checkpoint files (weights and sidecars) of runs that have no row in the runs CSV."""
    from ..harness.checkpoint import SUFFIX, checkpoint_dir, run_stem
    from ..harness.results import read_checked, runs_path

    folder, path = checkpoint_dir(results), runs_path(results)
    rows = csv.DictReader(io.StringIO(read_checked(path).decode("utf-8-sig"))) \
        if path.is_file() else []
    stems = {run_stem(row) for row in rows}
    named = re.compile(rf"(.+?)(?:-\d+)?-(?:final|best)(?:{re.escape(SUFFIX)}|\.json)")
    return [p for p in sorted(folder.glob("*")) if (m := named.fullmatch(p.name))
            and m[1] not in stems] if folder.is_dir() else []


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clean", help="remove partial checkpoints that killed runs left",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--results", type=Path, default=None,
                   help="runs CSV whose checkpoints folder to clean (default: results/runs.csv)")
    p.add_argument("--orphans", action="store_true",
                   help="also remove weights that have no row in the runs CSV")
    p.add_argument("--dry-run", action="store_true", help="name the files, remove none")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..harness.checkpoint import checkpoint_dir
    from ..harness.results import runs_path

    console = Console(highlight=False, soft_wrap=True)
    folder = checkpoint_dir(args.results)
    left = find_leftovers(folder) if folder.is_dir() else []
    lonely = orphans(args.results)
    remove = left + (lonely if args.orphans else [])
    for path in remove:
        if not args.dry_run:
            path.unlink(missing_ok=True)
    verb = "would remove" if args.dry_run else "removed"
    console.print(f"{verb} {len(left)} file(s) that killed runs left in {folder}"
                  + "".join(f"\n  {p.name}" for p in left))
    if lonely:
        console.print(f"{verb if args.orphans else 'kept'} {len(lonely)} checkpoint file(s) "
                      f"with no row in {runs_path(args.results)}"
                      + ("" if args.orphans else " (--orphans removes them)")
                      + "".join(f"\n  {p.name}" for p in lonely))
    return 0
