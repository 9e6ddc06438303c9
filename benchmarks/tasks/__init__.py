"""The task registry: what the harness trains (timm's model registry, for tasks).

A task is a module holding the names of the `Task` protocol below. Adding one is one new module
in this folder and one line in TASKS: `python -m benchmarks NAME` then trains it
(commands/train.py), and checkpoints, `evaluate`, the plots and the search reach it through
get_task(), never by its name. A search space for it is one function in search/space.py.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import fields
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from errors import UserError

from ..harness import checkpoint
from ..harness.config import RECIPE, Config, given, names
from ..harness.data import Data
from ..harness.runs import train_and_record
from ..harness.train import seeded

TASKS = {"mnist": "benchmarks.tasks.mnist", "hymenoptera": "benchmarks.tasks.hymenoptera"}


class Task(Protocol):
    NAME: str  # the subcommand, and the `task` column of its rows
    HELP: str  # one line for `python -m benchmarks --help`
    DEFAULTS: dict  # Config values of this task, under the user's flags
    SEARCH_DEFAULTS: dict  # Config values a search of it fixes (MNIST: a validation split)
    CONFIG: type  # Config, or its subclass with the task's own settings
    USES: frozenset  # what it uses of the harness (config.AUGMENT, ZOO, HOLDOUT): the fields
    #                  that need something else have no flag and stay at their defaults
    TEST_NAME: str  # what the rows' test columns hold: "test", or "val" (ants/bees)
    ZOO: bool  # its models come from models/: the budget, --enqueue-zoo, the champions
    PICTURES: tuple[str, ...]  # per-run pictures `make plots` draws from a checkpoint

    def load_data(self, cfg, device: torch.device, with_test: bool = True) -> Data:
        """Training data and, on the device, val (cfg.val_split) and test (with_test)."""

    def preflight(self, cfg) -> str:
        """Fail (UserError) before any data loads; return a line on what will train."""

    def make_model(self, cfg, num_classes: int | None = None) -> nn.Module:
        """The untrained model cfg names (for num_classes, else the task's own), with `.arch`,
        its canonical string."""

    def model_from_arch(self, arch: str) -> nn.Module:
        """The untrained network an arch string names (checkpoints bring the weights)."""

    def profile(self, model: nn.Module, cfg) -> dict:
        """{'params', 'trainable', 'macs', 'family'} of the model, counted before training."""


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name])


def used(task: Task, **metadata) -> tuple[str, ...]:
    """The task's Config fields (with the given metadata, as config.names) that it uses."""
    return names(task.CONFIG, uses=task.USES, **metadata)


def recipe_fields(task: Task) -> tuple[str, ...]:
    """What a leaderboard row's recipe holds: the recipe fields the task uses."""
    return used(task, concern=RECIPE)


def task_config(task: str = "mnist", /, **values) -> Config:
    """The Config of `task`: its DEFAULTS, then `values` on top."""
    module = get_task(task)
    return module.CONFIG(**{**module.DEFAULTS, **values, "task": task})


def config_from_args(args: argparse.Namespace, **extra) -> Config:
    """The Config of the task `args.task` (or extra's, else mnist) from parsed flags: only the
    flags the user gave replace the task's defaults."""
    task = extra.pop("task", None) or getattr(args, "task", None) or "mnist"
    return task_config(task, **{**given(args, get_task(task).CONFIG), **extra})


def config_fields(task: str) -> set[str]:
    """Every field name of the task's Config."""
    return {f.name for f in fields(get_task(task).CONFIG)}


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
