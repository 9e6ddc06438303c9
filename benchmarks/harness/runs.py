"""One run, recorded: train, build the result row, save the checkpoint, append the row.

Every task's run_one() ends here, so MNIST and ants/bees rows and checkpoints stay alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from rich.console import Console

from models import UserError

from .checkpoint import BestWeights, checkpoint_dir, remove_run, save_run
from .results import append_row, check_target, make_row
from .train import DivergedError, train


def train_and_record(cfg, data, model, *, family: str, params: int, macs: int,
                     results: Path | None | bool = None, source: str,
                     on_epoch=None) -> dict:
    """Train `model`; unless results is False, save its weights and append its row.

    Nothing is written if training raises (a failed run leaves no partial row), and a run
    whose row cannot be written leaves no checkpoints.
    """
    if results is not False:
        check_target(results)  # a run that could not record its row is never started
    # Snapshots of the best-by-validation weights, only when they will be saved.
    best = BestWeights(model, on_epoch) if results is not False else None
    result = train(model, cfg, data, on_epoch=best or on_epoch)
    result["train_images"] = len(data.train)
    result["test_images"] = len(data.test) if data.test is not None else None
    row = make_row(cfg, result, arch=model.arch, family=family, params=params, macs=macs,
                   source=source)
    row["_result"] = result  # for callers (checkpoints, reports); never written to the CSV
    row["_model"] = model
    if results is not False:
        try:
            paths = save_run(row, model, best, checkpoint_dir(results))
        except OSError as e:  # save_run has removed what it wrote
            raise UserError(f"cannot save the checkpoint in {checkpoint_dir(results)} "
                            f"({e.strerror or e}); no row written") from None
        row.update(paths)  # row["checkpoint"], row["best_checkpoint"]
        try:
            append_row(row, results)
        except BaseException:
            remove_run(paths)  # weights without their row would be orphans
            raise
    return row


def run_command(func: Callable[[], int],
                interrupted: str = "interrupted: the run in progress wrote no row") -> int:
    """Run a CLI command: user errors and diverged runs become a message and an exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return func()
    except UserError as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    except DivergedError as e:
        err.print(f"[red]error:[/red] training diverged: {e}; no row written")
        return 1
    except KeyboardInterrupt:
        err.print(f"[yellow]{interrupted}[/yellow]")
        return 130


# ----------------------------------------------------------------------------------------------
# Runs side by side (--jobs): one CPU core each, in threads. A second thread inside one run of a
# tiny model measured 1.1-1.4x (python -m benchmarks speed), two runs at once ~1.8x, and the
# runs never stall each other's OpenMP threads on a shared machine.

def add_jobs_arg(p, what: str, note: str = "") -> None:
    """The --jobs option, alike for every command that trains several runs."""
    p.add_argument("--jobs", default="1", metavar="N",
                   help=f"train N {what} side by side in threads, each on one CPU core; 'auto': "
                        f"one per usable core on CPU, 1 on a GPU (default 1{note})")


def parse_jobs(value: str) -> int | None:
    """--jobs as a positive number, or None for 'auto'."""
    try:
        jobs = None if value == "auto" else int(value)
    except ValueError:
        jobs = 0
    if jobs is not None and jobs < 1:
        raise UserError(f"invalid option: --jobs must be a positive number or auto (got {value})")
    return jobs


def resolve_jobs(jobs: int | None, device: torch.device) -> int:
    """'auto' (None): one run per usable core on CPU, one at a time on a GPU."""
    if jobs is None:
        return len(os.sched_getaffinity(0)) if device.type == "cpu" else 1
    return jobs


def for_jobs(cfg, jobs: int):
    """cfg for runs `jobs` at a time: progress bars only for a run alone (rich shows one live
    display), and one CPU thread each unless --threads says otherwise."""
    return dataclasses.replace(cfg, progress=cfg.progress and jobs == 1,
                               threads=cfg.threads or (1 if jobs > 1 else 0))


def side_by_side(jobs: int, run: Callable, items: Iterable) -> list:
    """[run(item, stop) for item in items], `jobs` at a time in threads. `stop` is an Event that
    Ctrl-C sets, so every run in flight can end at its next epoch instead of being waited for."""
    stop = threading.Event()
    if jobs <= 1:
        return [run(item, stop) for item in items]
    with stop_on_ctrl_c(stop), ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda item: run(item, stop), items))


@contextlib.contextmanager
def stop_on_ctrl_c(event: threading.Event | None):
    """Ctrl-C also sets `event` (while runs go on in other threads, which it cannot reach)."""
    if event is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        event.set()
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def stop_hook(stop: threading.Event, console: Console | None = None, label: str = ""):
    """An on_epoch callback that ends the run (KeyboardInterrupt) once `stop` is set and, given
    a console, prints a line per epoch (runs side by side have no progress bars)."""
    def hook(epoch: int, record: dict) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        if console is not None:
            accs = "  ".join(f"{k[:-4]} {record[k]:.2f}%" for k in ("val_acc", "test_acc")
                             if k in record)
            console.print(f"  {label} epoch {epoch}  loss {record['train_loss']:.4f}  {accs}  "
                          f"({record['seconds']:.0f} s)", highlight=False)
    return hook

