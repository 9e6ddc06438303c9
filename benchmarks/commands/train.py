"""python -m benchmarks TASK: train a task's model once per seed, a result row per seed.

One subcommand per registered task (benchmarks/tasks): `mnist` trains a zoo member or an
architecture string, `hymenoptera` fine-tunes ResNet18 on the ants/bees images. Every Config
field the task uses is a flag; rows go to results/runs.csv (or --results), weights beside it.

Like every command module, it imports torch, pandas and the zoo where they are used, not at the
top: building the parsers (`--help`) must not load them (tests/test_cli.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

from rich.console import Console

from errors import UserError
from models import recipe_of
from models.registry import RECIPES

from ..harness.cli import add_jobs_arg, distinct_seeds, parse_jobs
from ..harness.config import Config, add_config_args, given
from ..tasks import TASKS, get_task, task_config, used


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name in TASKS:
        task = get_task(name)
        p = sub.add_parser(name, help=task.HELP, description=f"{task.HELP}. {__doc__}")
        p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 1")
        add_jobs_arg(p, "seeds")
        p.add_argument("--resume", action="store_true",
                       help="skip every seed that already has a row in --results with the same "
                            "task, model, recipe and scope settings: a long script, run again, "
                            "goes on where it stopped")
        p.add_argument("--results", type=Path, default=None,
                       help="runs CSV to append to (default: results/runs.csv or $NAS_RESULTS)")
        if task.ZOO:
            p.add_argument("--recipe", default=None, metavar="MEMBER",
                           help="train with a promoted zoo member's recipe (its search-found "
                                "training choices), e.g. nas_plain_6k's for an architecture "
                                "string; other flags still override (default: --model's own "
                                "when it is a promoted member)")
        flags = tuple(n for n in used(task) if n not in ("task", "seed"))  # --seeds, the command
        add_config_args(p, flags, task.CONFIG, task.DEFAULTS)
        p.set_defaults(func=main, task=name)


def training_config(args: argparse.Namespace, **extra) -> Config:
    """The Config the flags (and `extra`) give, over the recipe of --recipe's member, else of
    --model's when it is a promoted member (the training choices it was confirmed with), over
    the task's defaults."""

    task = extra.pop("task", None) or getattr(args, "task", None) or "mnist"
    values = {**given(args, get_task(task).CONFIG), **extra}
    recipe = getattr(args, "recipe", None)
    if recipe is not None and not recipe_of(recipe):
        raise UserError(f"invalid option: --recipe {recipe!r} is no zoo member with a recipe; "
                        f"members with one: {', '.join(sorted(RECIPES))}")
    return task_config(task, **{**recipe_of(values.get("model", "") if recipe is None
                                            else recipe), **values})


def main(args: argparse.Namespace) -> int:
    from models.report import unwrapped

    from ..harness.device import resolve_device
    from ..harness.results import check_target, runs_path, seeds_done
    from ..harness.runs import for_jobs, resolve_jobs, side_by_side, stop_hook
    from ..tasks.run import run_one

    console = unwrapped(Console(highlight=False))
    task = get_task(args.task)
    base = training_config(args, task=task.NAME)
    seeds = distinct_seeds(args.seeds or [base.seed], console.print)
    for seed in seeds:  # every seed checked (Config refuses a bad one) before any work
        dataclasses.replace(base, seed=seed)
    jobs = parse_jobs(args.jobs)
    check_target(args.results)  # a runs CSV that cannot take a row fails before any work
    if args.resume:
        done = seeds_done(base, args.results)
        if skipped := [s for s in seeds if s in done]:
            console.print(f"seeds {skipped} already have rows in {runs_path(args.results)}: "
                          "skipped", soft_wrap=True)
        if not (seeds := [s for s in seeds if s not in done]):
            return 0
    what = task.preflight(base)  # so do a model or weights that cannot be had
    device = resolve_device(base.device)
    jobs = min(resolve_jobs(jobs, device), len(seeds))
    base = for_jobs(base, jobs)
    # A run holding out a validation split is a selection experiment (experiments/*.sh): as in
    # the search, the test split is not even loaded, so no choice can be made on it.
    data = task.load_data(base, device, with_test=not base.val_split)
    # What the rows' test columns hold (ants/bees: its val folder), else the validation split.
    held, name, col = (data.test, task.TEST_NAME, "test") if data.test is not None else \
        (data.val, "val", "val")
    console.print(f"{what} on {device}: {len(data.train):,} training images, "
                  f"{len(held):,} {name} images, seeds {seeds}, {base.epochs} epochs"
                  + (f", {jobs} seeds at a time" if jobs > 1 else ""), soft_wrap=True)

    def run(seed: int, stop) -> dict:
        row = run_one(task, dataclasses.replace(base, seed=seed), data, results=args.results,
                      on_epoch=stop_hook(stop, console if jobs > 1 else None, f"seed {seed}"))
        trained = "" if row["trainable_params"] == row["params"] else \
            f"{row['trainable_params']:,} of "
        console.print(f"seed {seed}: final {name} accuracy {row[f'final_{col}_acc']:.2f}% "
                      f"(max {row[f'max_{col}_acc']:.2f}%), "
                      f"{trained}{row['params']:,} params trained, {row['seconds']:.0f} s, "
                      f"{row['images_per_second']:,.0f} img/s")
        console.print(f"  weights: {row['checkpoint']}", soft_wrap=True)
        return row

    rows = side_by_side(jobs, run, seeds)
    if len(rows) > 1:
        console.print(seeds_summary([row[f"final_{col}_acc"] for row in rows], name,
                                    base.target), soft_wrap=True)
    return 0


def seeds_summary(accs: list[float], split: str, target: float) -> str:
    """One line over the seeds' final accuracies: mean, std, min, how many reached target."""
    mean = statistics.fmean(accs)
    return (f"{len(accs)} seeds, final {split} accuracy: mean {mean:.2f}%, std "
            f"{statistics.stdev(accs):.2f}, min {min(accs):.2f}%, max {max(accs):.2f}%; "
            f"{sum(a >= target for a in accs)} of {len(accs)} at {target:g}% or more")
