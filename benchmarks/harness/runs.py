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

from errors import UserError

from .checkpoint import BestWeights, checkpoint_dir, commit_run, remove_run, save_run
from .cli import interrupt
from .results import append_row, check_target, make_row
from .train import train


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
        with signals_held():  # Ctrl-C or SIGTERM wait until the row and weights both are
            record(row, model, best, results)
    return row


def record(row: dict, model, best: BestWeights | None, results: Path | None) -> None:
    """Save the weights under partial names, append the row, then give the weights their final
    names: a failure at any step removes what the run wrote."""
    try:
        paths = save_run(row, model, best, checkpoint_dir(results))
    except OSError as e:  # save_run has removed what it wrote
        raise UserError(f"cannot save the checkpoint in {checkpoint_dir(results)} "
                        f"({e.strerror or e}); no row written") from None
    row["checkpoint"], row["best_checkpoint"] = paths["checkpoint"], paths["best_checkpoint"]
    try:
        append_row(row, results)
        commit_run(paths)
    except BaseException:
        remove_run(paths)  # weights without their row would be orphans
        raise


@contextlib.contextmanager
def signals_held():
    """Ctrl-C and SIGTERM that arrive while the block runs are delivered when it ends. Python
    runs signal handlers in the main thread; a run in a worker thread (--jobs) is never
    interrupted by one, only told to stop at its next epoch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    before = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
              for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if caught:
        signal.raise_signal(caught[0])


# ----------------------------------------------------------------------------------------------
# Runs side by side (--jobs): one CPU core each, in threads. A second thread inside one run of a
# tiny model measured 1.1-1.4x (python -m benchmarks speed), two runs at once ~1.8x, and the
# runs never stall each other's OpenMP threads on a shared machine.

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
    """Ctrl-C and SIGTERM also set `event` (while runs go on in other threads, which they
    cannot reach)."""
    if event is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        event.set()
        interrupt(signum, frame)

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


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

