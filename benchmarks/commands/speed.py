"""python -m benchmarks speed: the harness's training loop against the classic PyTorch loop.

Two workloads by default, each in one process on the same model (same initial weights), batch
size, recipe and device:

  nas_plain_5k  the headline: the smallest champion with its whole recipe (batch 32, a weight
                average every step, rotation, shift, zoom and shear), what the search trains;
  resnet_8k     the reference member at batch 128 (rotation and shift).

  baseline  pytorch/examples' mnist loop: torchvision MNIST with the recipe's augmentation as
            per-image transforms (RandomAffine), ToTensor + Normalize, a DataLoader, the model
            in the default memory format, fp32, loss.item() every 10 batches (the example's log
            line), SGD with the harness's settings and schedule, torch's AveragedModel EMA;
  harness   train() itself, one epoch over steps x batch_size images, evaluation left out.

Rounds alternate baseline and harness (and any ablations) so the machine's load falls on all
of them alike; the medians are reported, and os.getloadavg() is recorded with every round.
Beside images per second of wall time, each round records images per second of the process's
CPU time, which moves less on a machine other jobs share (with --threads 1). The harness's
GFLOP/s (torchinfo MACs x 2 FLOPs x 3 for forward+backward) is set against the device's peak, a
large matmul timed in the same run. --parallel K also times K trials trained at once, side by
side in threads (search run --jobs K), against K one after another, as trials per hour.
--profile instead profiles the headline's training step (stepprofile.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

from rich.console import Console

from errors import UserError

from ..harness.config import Config, add_config_args, names

# ----------------------------------------------------------------------------------------------
# Benchmark settings

# The headline first: the smallest champion with its recipe (batch 32); then the reference
# member (8,090 parameters) at batch 128. Timed steps per measurement of each: with
# 30 x 3 rounds (1-2 s per measurement) one contender's rounds on the shared 2-core VM ranged
# 2,518-4,142 img/s; resnet_8k's 50 steps are 6,400 images, nas_plain_5k's 100 are 3,200, and
# both together keep `make bench` within a few minutes on a slow 2-core AVX2 machine.
WORKLOADS = {"nas_plain_5k": 100, "resnet_8k": 50}
DEFAULT_STEPS = 100  # timed steps per measurement of a --model
WARMUP_STEPS = 5  # untimed steps first: one-time costs (workers, compile) reported apart
ROUNDS = 5  # alternating repeats; medians reported
# Ablations: the harness with one technique switched away from its default (contenders.py).
ABLATIONS = ("channels_last", "dropout", "batchnorm", "threads", "amp", "compile", "graphs",
             "optimizer", "chunks")
# --full: every CPU fast-path choice switched off in turn, and K=2 side by side, on top.
FULL_ABLATE = ("channels_last", "amp", "dropout", "batchnorm", "threads", "optimizer", "chunks")
FULL_PARALLEL = 2


def measure(cfg: Config, steps: int, rounds: int, ablate=(), parallel: int = 1,
            console: Console | None = None, parts: bool = False) -> dict:
    """One workload: the classic loop, the harness and any ablations and --parallel K, timed
    in alternating rounds; `parts`: also the step's parts each way (part_timings, CPU)."""
    import torch

    from ..harness.device import resolve_device
    from ..harness.fast import fast_settings, keep_heap
    from ..tasks.mnist_files import load_mnist, mnist_root, verify_mnist
    from .contenders import (
        Contender,
        ablations,
        baseline,
        classic_loader,
        harness,
        parallel_contenders,
        part_timings,
        precision,
    )
    from .speedreport import build_report

    console = console or Console()
    device = resolve_device(cfg.device)
    root, _ = mnist_root(cfg.data_root)
    verify_mnist(root)
    fast = fast_settings(cfg, device)
    if fast.keep_heap:  # process-wide, so the baseline runs with it too: no edge to the harness
        keep_heap()
    default_threads = torch.get_num_threads()
    n_images = (WARMUP_STEPS + steps) * cfg.batch_size
    split = load_mnist(dataclasses.replace(cfg, train_subset=n_images, val_split=0), device,
                       with_test=False).train
    loader = classic_loader(root, cfg, device)
    # The classic loop with the harness's thread count (--threads; torch's default otherwise):
    # the ratio compares loops, not thread counts.
    contenders = [Contender("baseline", baseline(cfg, device, loader, steps, fast.threads)),
                  Contender("harness", harness(cfg, split), precision(cfg, device))]
    contenders += ablations(ablate, cfg, device, split)
    if parallel > 1:
        contenders += parallel_contenders(cfg, split, parallel)
    load = {"start": os.getloadavg()}
    for c in contenders:  # one-time costs: DataLoader start, compile, first allocations
        t0 = time.perf_counter()
        c.run(WARMUP_STEPS)
        c.warmup_seconds = round(time.perf_counter() - t0, 2)
    load["rounds"] = []
    for r in range(rounds):
        for c in contenders:
            c.time(steps)
        load["rounds"].append(os.getloadavg())
        console.print(f"{cfg.model} round {r + 1}/{rounds}: " + ", ".join(
            f"{c.name} {c.runs[-1]:,.0f}" for c in contenders) + " img/s; load "
            f"{load['rounds'][-1][0]:.1f}", highlight=False)
    load["end"] = os.getloadavg()
    report = build_report(cfg, device, steps, rounds, contenders, load, fast, default_threads,
                     parallel)
    if parts and device.type == "cpu":
        report["parts"] = part_timings(cfg, device, split)
    return report


# ----------------------------------------------------------------------------------------------
# Command line

def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speed", help="images/s of the harness vs the classic PyTorch loop",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, metavar="NAME",
                   help="zoo member or architecture string, with its recipe where it has one "
                        f"(default: {' and '.join(WORKLOADS)}, the first the headline)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per measurement (default: "
                        f"{', '.join(f'{m} {n}' for m, n in WORKLOADS.items())}; "
                        f"{DEFAULT_STEPS} for another --model)")
    p.add_argument("--rounds", type=int, default=ROUNDS, help=f"default: {ROUNDS}")
    p.add_argument("--parallel", type=int, default=None, metavar="K",
                   help="also time K trials at once (side by side, --jobs K) vs K in a row, "
                        "on the headline workload (default: 1, off; --full: "
                        f"{FULL_PARALLEL})")
    p.add_argument("--ablate", nargs="*", default=None, choices=ABLATIONS,
                   help="also time the harness with each of these switched from its default "
                        "(default: graphs on CUDA, none on CPU; --full: "
                        f"{' '.join(FULL_ABLATE)})")
    p.add_argument("--full", action="store_true",
                   help="the whole ablation: every fast-path choice switched off in turn and "
                        "K=2 trainings side by side (about 3x as long)")
    p.add_argument("--profile", action="store_true",
                   help="instead of timing: profile the headline's training step with "
                        "torch.profiler into results/speed-profile.json (or --json)")
    p.add_argument("--json", type=Path, default=None,
                   help="where to write every figure (default: results/speed.json)")
    add_config_args(p, names(bench=True))
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from models import create_model
    from models.report import unwrapped

    from ..harness import results as results_mod
    from .speedreport import print_report
    from .train import training_config

    parallel = args.parallel if args.parallel is not None else (
        FULL_PARALLEL if args.full else 1)
    if (args.steps is not None and args.steps < 1) or args.rounds < 1 or parallel < 1:
        raise UserError("invalid option: --steps, --rounds and --parallel must be at least 1")
    models = (args.model,) if args.model else tuple(WORKLOADS)
    workload_steps = [WORKLOADS.get(m, DEFAULT_STEPS) for m in models]
    cfgs = [training_config(argparse.Namespace(**{**vars(args), "model": m}), task="mnist",
                            epochs=1, progress=False) for m in models]
    for cfg in cfgs:  # unknown or over-budget models fail before anything is timed
        create_model(cfg.model)
    console = unwrapped()
    if args.profile:
        from .stepprofile import print_profile, profile_step

        report = profile_step(cfgs[0], steps=min(args.steps or 50, 50), console=console)
        path = args.json or Path(results_mod.RESULTS_DIR) / "speed-profile.json"
        _write(path, report)
        print_profile(report, console)
        console.print(f"wrote {path}")
        return 0
    # On CUDA the graphed step is timed against the eager one unless told otherwise.
    ablate = args.ablate if args.ablate is not None else (
        FULL_ABLATE if args.full else ("graphs",))
    reports = [measure(cfg, args.steps or steps, args.rounds, ablate if i == 0 or args.full
                       else (), parallel if i == 0 else 1, console, parts=i == 0)
               for i, (cfg, steps) in enumerate(zip(cfgs, workload_steps))]
    # The headline's figures at the top level (what older readers of speed.json find there),
    # every workload's under "workloads".
    report = {**reports[0], "headline": reports[0]["model"], "workloads": reports}
    path = args.json or Path(results_mod.RESULTS_DIR) / "speed.json"
    _write(path, report)
    for r in reports:
        print_report(r, console)
    h = reports[0]
    console.print(f"[bold]{h['model']} with its recipe (batch {h['batch_size']}"
                  f"{', weight average' if h['harness_settings']['ema'] else ''}): harness "
                  f"{h['ratio']:.2f}x the classic loop[/bold] ({h['cpu_ratio']:.2f}x per CPU "
                  f"second), {h['cpu']}, harness in {h['precision']['harness']}, "
                  f"{h['threads']} thread(s)", highlight=False)
    console.print(f"wrote {path}")
    return 0


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
