"""A task's run: one seed trained and recorded (run_one), and a saved run read back
(load_checkpoint), each by the task the run names."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..harness import checkpoint
from ..harness.data import Data
from ..harness.runs import train_and_record
from ..harness.train import seeded
from . import Task, get_task


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu"):
    """(model in eval mode on `device`, sidecar) of a saved run, rebuilt by its own task."""
    return checkpoint.load(path, lambda side: get_task(side["task"]).model_from_arch(
        side["arch"]), device)


def run_one(task: Task, cfg, data: Data, *, results: Path | None | bool = None,
            source: str | None = None, on_epoch=None, model: nn.Module | None = None,
            stats: dict | None = None) -> dict:
    """Train one seed of `task` and (unless results is False) append its row.

    The model is built under the seed's lock, so the same seed starts from the same weights
    even while other runs build theirs in threads; `stats` (task.profile) is counted once.
    """
    with seeded(cfg.seed):
        model = model if model is not None else task.make_model(cfg, data.train.num_classes)
    stats = stats or task.profile(model, cfg)
    row = train_and_record(cfg, data, model, family=stats["family"], params=stats["params"],
                           macs=stats["macs"], results=results,
                           source=source or f"benchmarks {task.NAME}", on_epoch=on_epoch)
    row["trainable_params"] = stats["trainable"]  # not a CSV column; the console shows it
    return row
