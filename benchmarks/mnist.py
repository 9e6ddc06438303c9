"""The MNIST benchmark: build a zoo model, train it per Config, append the result row."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from rich.console import Console

from models import create_model, family_of
from models.report import profile

from .config import Config, add_config_args, config_from_args
from .data import Data, load_mnist
from .results import check_target
from .runs import (
    add_jobs_arg,
    for_jobs,
    parse_jobs,
    resolve_jobs,
    side_by_side,
    stop_hook,
    train_and_record,
)
from .train import resolve_device, seeded


def load_data(cfg: Config, device: torch.device, with_test: bool = True) -> Data:
    return load_mnist(cfg, device, with_test=with_test)


def make_model(cfg: Config):
    return create_model(cfg.model)


def run_one(cfg: Config, data: Data, *, results: Path | None = None,
            source: str = "benchmarks mnist", on_epoch=None, model=None) -> dict:
    """Train one seed and append its row; nothing is written if training raises."""
    with seeded(cfg.seed):  # dropout on CUDA still draws from the global generator
        model = model if model is not None else make_model(cfg)
    stats = profile(model)  # torchinfo: params and MACs, on a CPU copy before training
    return train_and_record(cfg, data, model, family=family_of(cfg.model),
                            params=stats["params"], macs=stats["macs"], results=results,
                            source=source, on_epoch=on_epoch)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mnist", help="train zoo models on MNIST, one result row per seed",
                       description="Train a zoo member (or architecture string) on MNIST for "
                                   "each seed; append a row per seed to results/runs.csv.")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 1")
    add_jobs_arg(p, "seeds")
    p.add_argument("--results", type=Path, default=None,
                   help="runs CSV to append to (default: results/runs.csv or $NAS_RESULTS)")
    add_config_args(p, skip=("task", "seed"))
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    console = Console()
    base = config_from_args(args, task="mnist")
    seeds = args.seeds or [base.seed]
    jobs = parse_jobs(args.jobs)
    create_model(base.model)  # unknown or over-budget models fail before any data is loaded
    check_target(args.results)  # so does a runs CSV that cannot take a row
    device = resolve_device(base.device)
    jobs = min(resolve_jobs(jobs, device), len(seeds))
    base = for_jobs(base, jobs)
    data = load_data(base, device)
    console.print(f"[bold]{base.model}[/bold] on {device}: {len(data.train):,} training "
                  f"images, seeds {seeds}, {base.epochs} epochs"
                  + (f", {jobs} seeds at a time" if jobs > 1 else ""), soft_wrap=True)

    def run(seed: int, stop) -> dict:
        row = run_one(dataclasses.replace(base, seed=seed), data, results=args.results,
                      on_epoch=stop_hook(stop, console if jobs > 1 else None, f"seed {seed}"))
        console.print(f"seed {seed}: final test accuracy {row['final_test_acc']:.2f}% "
                      f"(max {row['max_test_acc']:.2f}%), {row['params']:,} params, "
                      f"{row['seconds']:.0f} s, {row['images_per_second']:,.0f} img/s")
        console.print(f"  weights: {row['checkpoint']}", highlight=False, soft_wrap=True)
        return row

    side_by_side(jobs, run, seeds)
    return 0
