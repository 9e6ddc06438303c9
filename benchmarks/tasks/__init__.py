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
from typing import TYPE_CHECKING, Protocol

from errors import UserError

from ..harness.config import RECIPE, Config, given, names

if TYPE_CHECKING:  # the registry imports no torch: `--help` reads tasks' settings without it
    import torch
    from torch import nn

    from ..harness.data import Data

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
