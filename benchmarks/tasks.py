"""The tasks the harness runs. Each task module provides:

    load_data(cfg, device, with_test=True) -> Data   (with_test=False for the search)
    make_model(cfg) -> nn.Module                     (counted against the budget where it applies)
    run_one(cfg, data, *, results=None, source=..., on_epoch=None, model=None) -> row dict

The search and the benchmarks reach tasks only through this table.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from models import UserError

TASKS = {"mnist": "benchmarks.mnist", "hymenoptera": "benchmarks.hymenoptera"}


def get_task(name: str) -> ModuleType:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name])
