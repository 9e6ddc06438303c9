"""One run, recorded: train, build the result row, save the checkpoint, append the row.

Every task's run_one() ends here, so MNIST and ants/bees rows and checkpoints stay alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from models import UserError

from .checkpoint import BestWeights, checkpoint_dir, save_run
from .results import append_row, make_row
from .train import DivergedError, train


def train_and_record(cfg, data, model, *, family: str, params: int, macs: int,
                     results: Path | None | bool = None, source: str,
                     on_epoch=None) -> dict:
    """Train `model`; unless results is False, save its weights and append its row.

    Nothing is written if training raises (a failed run leaves no partial row).
    """
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
        row.update(save_run(row, model, best, checkpoint_dir(results)))  # row["checkpoint"]
        append_row(row, results)
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


