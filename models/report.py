"""Parameter-count reports, computed by torchinfo (the oracle the tests also check against)."""

from __future__ import annotations

import copy
import csv
import sys

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torchinfo import summary

from .create import create_model
from .grammar import INPUT_SIZE
from .registry import BUDGET, family_of, list_models

FIELDS = ["name", "family", "params", "macs", "receptive_field", "arch"]
PIPED_WIDTH = 10_000  # columns a console takes when piped: more than any table or line here


def receptive_field(model: nn.Module) -> int:
    """Receptive field (pixels) of the last spatial layer, walking convs and pools in order.

    Every op in the zoo's grammar has its longest path through its convs in module order
    (residual and ghost branches included), so this sum is the true receptive field.
    """
    rf, jump = 1, 1
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k, s, d = (getattr(m, a) for a in ("kernel_size", "stride", "dilation"))
            k, s, d = (v[0] if isinstance(v, tuple) else v for v in (k, s, d))
            rf += (k - 1) * d * jump
            jump *= s
    return rf


def inspect(model: nn.Module, input_size: tuple, **kwargs):
    """torchinfo's summary of a copy in eval mode, on zeros. On the model itself, its forward
    pass would move it to the CPU and update its BatchNorm statistics; and its default random
    input draws from torch's global generator, racing with models built in other threads
    (search run --jobs), whose initial weights would then depend on timing."""
    return summary(copy.deepcopy(model), input_data=torch.zeros(input_size), device="cpu",
                   mode="eval", **kwargs)


def profile(model: nn.Module) -> dict:
    """torchinfo's parameter and multiply-add counts for one 28x28 image, plus receptive field."""
    stats = inspect(model, (1, 1, INPUT_SIZE, INPUT_SIZE), verbose=0)
    return {"params": stats.total_params, "macs": stats.total_mult_adds,
            "receptive_field": receptive_field(model)}


def zoo_rows() -> list[dict]:
    rows = []
    for name in list_models():
        model = create_model(name)
        rows.append({"name": name, "family": family_of(name), **profile(model),
                     "arch": model.arch})
    return sorted(rows, key=lambda r: (r["family"], r["params"]))


def unwrapped(console: Console | None = None) -> Console:
    """`console` (default: a new one on stdout), set never to break a line when it is not a
    terminal: piped into a file, grep or a pager, an architecture string or a path must stay
    whole on one line to be copied. Text then runs on, and a table takes its own width instead
    of the 80 columns rich assumes."""
    console = console or Console()
    if not console.is_terminal:
        console.soft_wrap = True
        console.width = PIPED_WIDTH
    return console


def print_zoo(rows: list[dict], console: Console | None = None) -> None:
    table = Table(title=f"Model zoo ({len(rows)} members, budget {BUDGET:,} parameters; "
                        "counts by torchinfo, MACs per 28x28 image)")
    for col, justify in [("name", "left"), ("family", "left"), ("params", "right"),
                         ("MACs", "right"), ("RF", "right")]:
        table.add_column(col, justify=justify, no_wrap=True)
    table.add_column("architecture", overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['params']:,}", f"{r['macs']:,}",
                      str(r["receptive_field"]), r["arch"])
    unwrapped(console).print(table)


def write_csv(rows: list[dict], out=None) -> None:
    writer = csv.DictWriter(out or sys.stdout, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)


def print_summary(name: str) -> None:
    """torchinfo's per-layer table for one model (name or architecture string)."""
    model = create_model(name)
    print(f"{name}: {model.arch}")
    print(inspect(model, (1, 1, INPUT_SIZE, INPUT_SIZE), depth=4,
                  col_names=("input_size", "output_size", "num_params", "mult_adds"),
                  verbose=0))
