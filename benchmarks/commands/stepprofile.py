"""python -m benchmarks speed --profile: where one training step of a recipe spends its time.

The step is train()'s loop body, built from the same parts (Split.train_batches, the model in
fast_model's layout under the run's autocast, make_optimizer, make_schedule, WeightAverage), each
part inside a torch.profiler record_function range:

  augmentation    the next batch: shuffled indices, augment(), normalize(), the layout
  forward         the model and the loss
  backward        loss.backward()
  optimizer       zero_grad and the SGD step
  schedule        the learning-rate schedule's step
  weight average  WeightAverage.update (Config.ema)
  sums            the epoch's loss and accuracy sums on the device

Each part's time splits into its operators' own time (every aten op not inside another aten op)
and the rest: Python, the dispatcher and autograd's bookkeeping between and around the ops, which
the table gathers into one row with the time between the parts. Times are per step, averaged
over `steps` profiled steps after a few unprofiled ones; the profiler adds a little to every op,
so the step's time without it is recorded beside them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import datetime, timezone

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from models import create_model

from ..harness import results as results_mod
from ..harness.device import cpu_model, device_name, resolve_device
from ..harness.ema import WeightAverage
from ..harness.fast import fast_model, fast_settings, make_optimizer
from ..harness.train import make_schedule
from ..tasks.mnist_files import load_mnist

PARTS = ("augmentation", "forward", "backward", "optimizer", "schedule", "weight average",
         "sums")
BETWEEN = "Python and dispatch between ops"
WARMUP = 10  # unprofiled steps first (allocations, oneDNN's kernel choices)


def profile_step(cfg, steps: int = 50, console: Console | None = None) -> dict:
    device = resolve_device(cfg.device)
    fast = fast_settings(cfg, device)
    n = (2 * WARMUP + steps) * cfg.batch_size  # warm-up, the timed steps, the profiled ones
    split = load_mnist(dataclasses.replace(cfg, train_subset=n, val_split=0), device,
                       with_test=False).train
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model).to(device)
    with fast_model(model, fast, cfg.seed):
        run = _Step(model, cfg, split, device, fast, total=2 * WARMUP + 2 * steps)
        for _ in range(WARMUP):
            run.step(False)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(WARMUP):
            run.step(False)
        _sync(device)
        plain_ms = (time.perf_counter() - t0) / WARMUP * 1e3
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                               if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                run.step(True)
            _sync(device)
            step_us = (time.perf_counter() - t0) / steps * 1e6
        named = device_name(device, fast)  # with the thread count it trained with
    parts = _split(prof.events(), steps)
    between = step_us - sum(p["ops_us"] for p in parts.values())
    rows = {name: round(parts[name]["ops_us"], 1) for name in PARTS}
    rows[BETWEEN] = round(between, 1)
    return {
        "model": cfg.model, "arch": model.arch, "batch_size": cfg.batch_size,
        "steps": steps, "step_us": round(step_us, 1), "step_us_unprofiled":
            round(plain_ms * 1e3, 1), "parts_us": rows,
        "parts_wall_us": {name: round(parts[name]["wall_us"], 1) for name in PARTS},
        "shares": {k: round(v / step_us, 4) for k, v in rows.items()},
        "device": device.type, "cpu": cpu_model(), "device_name": named,
        "precision": "bf16 autocast" if fast.amp else "fp32", "threads":
            torch.get_num_threads() if fast.threads is None else fast.threads,
        "recipe": {k: getattr(cfg, k) for k in ("rotate", "translate", "scale", "shear",
                                                  "erase", "ema", "schedule")},
        "top_ops": _top_ops(prof, steps),
        "torch_version": torch.__version__, "git_commit": results_mod.git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _Step:
    """train()'s step, part by part (see _train in harness/train.py)."""

    def __init__(self, model, cfg, split, device, fast, total: int):
        self.model, self.cfg, self.split, self.device = model, cfg, split, device
        self.opt = make_optimizer(model, cfg, device)
        self.sched = make_schedule(self.opt, dataclasses.replace(cfg, epochs=1), total)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.average = WeightAverage(model, cfg.ema)
        self.autocast = (lambda: torch.autocast(device.type, dtype=fast.amp)) if fast.amp \
            else contextlib.nullcontext
        self.fmt = torch.channels_last if fast.channels_last else torch.contiguous_format
        self.batches = iter(())
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        model.train()

    def _next(self):
        batch = next(self.batches, None)
        if batch is None:  # a new epoch over the split
            self.batches = iter(self.split.train_batches(self.cfg, self.gen))
            batch = next(self.batches)
        return batch

    def step(self, labelled: bool) -> None:
        part = record_function if labelled else (lambda name: contextlib.nullcontext())
        with part("augmentation"):
            x, y = self._next()
            x = x.contiguous(memory_format=self.fmt)
        with part("optimizer"):
            self.opt.zero_grad(set_to_none=True)
        with part("forward"):
            with self.autocast():
                out = self.model(x)
                loss = self.loss_fn(out, y)
        with part("backward"):
            loss.backward()
        with part("optimizer"):
            self.opt.step()
        with part("schedule"):
            self.sched.step()
        with part("weight average"):
            self.average.update()
        with part("sums"):
            self.loss_sum += loss.detach() * len(y)
            self.correct += (out.detach().argmax(1) == y).sum()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _split(events, steps: int) -> dict:
    """Per part: its ranges' wall time and its top-level ops' own time, per step (us)."""
    out = {name: {"wall_us": 0.0, "ops_us": 0.0} for name in PARTS}
    for e in events:
        if e.name in out and not e.name.startswith("aten::"):
            out[e.name]["wall_us"] += e.time_range.elapsed_us() / steps
            continue
        if not e.name.startswith("aten::"):
            continue
        part, parent = None, e.cpu_parent
        while parent is not None:
            if parent.name.startswith("aten::"):
                part = "nested"
                break
            if parent.name in out:
                part = parent.name
                break
            parent = parent.cpu_parent
        if part in out:
            out[part]["ops_us"] += e.time_range.elapsed_us() / steps
    return out


def _top_ops(prof, steps: int, n: int = 12) -> list[dict]:
    """The ops with the most own time per step, by name."""
    rows = sorted(prof.key_averages(), key=lambda a: a.self_cpu_time_total, reverse=True)
    return [{"op": a.key, "self_us": round(a.self_cpu_time_total / steps, 1),
             "calls": round(a.count / steps, 1)} for a in rows[:n]]


def print_profile(r: dict, console: Console) -> None:
    table = Table(title=f"one training step of {r['model']}, batch {r['batch_size']}, "
                        f"{r['device_name']}: {r['step_us'] / 1e3:.2f} ms profiled, "
                        f"{r['step_us_unprofiled'] / 1e3:.2f} ms without the profiler")
    for col in ("part", "ms per step", "share"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for name, us in r["parts_us"].items():
        table.add_row(name, f"{us / 1e3:.3f}", f"{100 * r['shares'][name]:.1f}%")
    console.print(table)
