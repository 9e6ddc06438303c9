"""The one training loop, used by the benchmarks and the search alike.

`train(model, cfg, data, on_epoch)` runs SGD with a one-cycle schedule over device-resident
data and evaluates after every epoch. The search hooks in through `on_epoch(epoch, record)`,
which may raise (Optuna's TrialPruned) to stop the run; this module never imports Optuna.

Speed (`python -m benchmarks speed` measures every choice below against the classic
DataLoader loop): data stays on the device as uint8 and is augmented in whole batches there;
the loss is read once per epoch (no host sync per step); the fast-path settings are resolved
per device type from Config's "auto" values to what measured fastest (fast.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from errors import DivergedError

from . import graphs
from .data import Data
from .device import device_name, resolve_device
from .ema import WeightAverage
from .fast import Fast, eval_channels_last, fast_model, fast_settings, make_optimizer
from .init import init_weights

# An epoch's mean loss this many times a uniform guess's (ln of the class count) means the model
# puts, on average, e^-(this * ln K) on the true class: confidently wrong, far worse than guessing,
# which no run that is learning reaches, however high its learning rate at the start.
DIVERGED_LOSS_FACTOR = 10


def check_loss(train_loss: float, num_classes: int, epoch: int) -> None:
    """Raise DivergedError for a loss that is not finite or has run far beyond a uniform guess."""
    bound = DIVERGED_LOSS_FACTOR * math.log(max(num_classes, 2))
    if not math.isfinite(train_loss):
        raise DivergedError(f"training loss is {train_loss} at epoch {epoch}")
    if train_loss > bound:
        raise DivergedError(f"training loss {train_loss:.4g} at epoch {epoch} is over "
                            f"{DIVERGED_LOSS_FACTOR}x a uniform guess's "
                            f"(ln {num_classes} = {bound / DIVERGED_LOSS_FACTOR:.3f})")


_seed_lock = threading.Lock()


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch's global generator (every CUDA device's too) and hold it for the block:
    models built inside start from the same weights for the same seed even while other
    trainings run in threads (search run --jobs); training itself draws from its own
    generators (shuffling, augmentation, CPU dropout)."""
    with _seed_lock:
        torch.manual_seed(seed)
        yield


# ----------------------------------------------------------------------------------------------
# Evaluation: always fp32 and in the device's default fast layout, so the accuracy recorded
# during training is exactly what `benchmarks evaluate` gets from the saved weights later on the
# same device. (On CUDA, cuDNN's default TF32 convolutions apply: CPU and GPU may then differ
# by an image or two, which tests/test_cuda.py allows, 0.05 points.)

class Tally:
    """Running sums of one model's evaluation on the device: loss, top-3, confusion."""

    def __init__(self, num_classes: int):
        self.k, self.loss, self.top3, self.confusion = num_classes, 0, 0, 0

    def add(self, out: torch.Tensor, y: torch.Tensor) -> None:
        out, k = out.float(), self.k
        self.loss = self.loss + nn.functional.cross_entropy(out, y, reduction="sum")
        self.top3 = self.top3 + (out.topk(min(3, k), dim=1).indices == y[:, None]).any(1).sum()
        self.confusion = self.confusion + torch.bincount(y * k + out.argmax(1), minlength=k * k)

    def metrics(self, n: int) -> dict:
        """Accuracy, top-3, loss, confusion matrix and per-class precision/recall (percent)."""
        cm = torch.as_tensor(self.confusion).view(self.k, self.k).cpu()  # rows: true class
        diag = cm.diag().double()
        return {
            "acc": round(100 * diag.sum().item() / n, 4),
            "top3": round(100 * float(self.top3) / n, 4),
            "loss": float(self.loss) / n,
            "precision": [round(v, 4) for v in (100 * diag / cm.sum(0).clamp(min=1)).tolist()],
            "recall": [round(v, 4) for v in (100 * diag / cm.sum(1).clamp(min=1)).tolist()],
            "confusion": cm.tolist(),
        }


def evaluate(model: nn.Module, split, batch_size: int = 2000) -> dict:
    """Accuracy, top-3, loss, confusion matrix and per-class precision/recall, in percent."""
    model.eval()
    param = next(model.parameters(), None)
    nhwc = param is not None and eval_channels_last(param.device)
    relayout = nhwc and not _is_channels_last(model)
    if relayout:  # outside inference mode: the weights must stay usable for training
        model.to(memory_format=torch.channels_last)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    tally = Tally(split.num_classes)
    with torch.inference_mode():
        for x, y in split.eval_batches(batch_size):
            tally.add(model(x.contiguous(memory_format=fmt)), y)
    if relayout:
        model.to(memory_format=torch.contiguous_format)
    return tally.metrics(len(split))


def _is_channels_last(model: nn.Module) -> bool:
    """Whether the model's weights are NHWC (judged by a conv with >1 input channel and k>1)."""
    w = next((p for p in model.parameters()
              if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1), None)
    return w is not None and w.is_contiguous(memory_format=torch.channels_last) \
        and not w.is_contiguous()


# ----------------------------------------------------------------------------------------------
# Training

def make_schedule(opt, cfg, total_steps: int):
    if cfg.schedule_step == "epoch" and total_steps > cfg.epochs:  # one step per epoch
        by_epoch = make_schedule(opt, dataclasses.replace(cfg, schedule_step="batch"), cfg.epochs)
        return PerEpoch(by_epoch, total_steps // cfg.epochs)
    if cfg.schedule == "onecycle" and total_steps >= 2:
        # OneCycleLR divides by zero unless warm-up spans more than one step (tiny runs).
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total_steps,
            pct_start=max(cfg.warmup, 1e-3, 1.5 / total_steps),
            anneal_strategy=cfg.anneal, cycle_momentum=cfg.cycle_momentum,
            div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if cfg.schedule == "step":  # StepLR(step_size epochs, gamma), stepped per batch
        steps_per_epoch = max(1, total_steps // cfg.epochs)
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size * steps_per_epoch,
                                               gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


class PerEpoch:
    """A schedule of one step per epoch, stepped every `steps` batches: the learning rate (and
    a cycled momentum) holds through each epoch, as loops that set it per epoch have it."""

    def __init__(self, schedule, steps: int):
        self.schedule, self.steps, self.calls = schedule, steps, 0

    def step(self) -> None:
        self.calls += 1
        if self.calls % self.steps == 0:
            self.schedule.step()

    def get_last_lr(self) -> list[float]:
        return self.schedule.get_last_lr()


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[speed]} img/s  loss {task.fields[loss]}  "
                   "train {task.fields[train_acc]}%  {task.fields[eval]}"),
        TimeElapsedColumn(), disable=not enabled)


def train(model: nn.Module, cfg, data: Data,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train `model` per `cfg`; evaluate val and test (when present) after every epoch.

    Returns {'history': [per-epoch records], 'val': final val metrics, 'test': final test
    metrics, 'seconds', 'train_seconds', 'images_per_second', 'device', 'device_name'}.
    """
    device = resolve_device(cfg.device)
    fast = fast_settings(cfg, device)
    init_weights(model, cfg.init, cfg.seed)
    model.to(device)
    with fast_model(model, fast, cfg.seed), own_stream(device):
        return _train(model, cfg, data, on_epoch, device, fast)


@contextlib.contextmanager
def own_stream(device: torch.device):
    """On CUDA, a training's kernels go to a stream of its own, so trainings side by side in
    threads (--jobs K) can overlap on the GPU instead of queueing on the default stream. It
    starts after what the default stream holds (the data, the model's weights) and the
    default stream waits for it at the end, so callers see finished weights."""
    if device.type != "cuda":
        yield
        return
    side, main = torch.cuda.Stream(device), torch.cuda.current_stream(device)
    side.wait_stream(main)
    try:
        with torch.cuda.stream(side):
            yield
    finally:
        main.wait_stream(side)


def _train(model, cfg, data, on_epoch, device, fast: Fast) -> dict:
    train_split = data.train
    n, bs = len(train_split), cfg.batch_size
    steps = math.ceil(n / bs)
    opt = make_optimizer(model, cfg, device)
    sched = make_schedule(opt, cfg, cfg.epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    average = WeightAverage(model, cfg.ema)
    net = torch.compile(model) if fast.compile else model
    autocast = (lambda: torch.autocast(device.type, dtype=fast.amp)) if fast.amp else \
        contextlib.nullcontext
    fmt = torch.channels_last if fast.channels_last else torch.contiguous_format

    history, train_seconds, start = [], 0.0, time.perf_counter()
    evals, graph = {}, None  # graph: the captured step (graphs.py), False where that failed
    with progress_bar(cfg.progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            task = bar.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps, speed="-",
                                loss="-", train_acc="-", eval="")
            average.hold_live()
            model.train()
            t0 = time.perf_counter()
            # Accumulate on the device and read once per epoch: no host sync per step.
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for i, (x, y) in enumerate(train_split.train_batches(cfg, gen)):
                x = x.contiguous(memory_format=fmt)
                if graph is None and fast.graphs and len(y) == bs:  # once, at the first batch
                    graph = graphs.capture(model, loss_fn, fast.amp, x, y,
                                           dropout_generator(model)) or False  # False: failed
                if graph and len(y) == graph.batch:
                    batch_loss, hits = graph.replay(x, y)  # gradients rewritten in place
                else:  # the graph's gradients, if any, stay where its replays write them
                    opt.zero_grad(set_to_none=not graph)
                    batch_loss, hits = graphs.eager_step(net, loss_fn, autocast, x, y)
                opt.step()
                sched.step()
                average.update()
                loss_sum += batch_loss
                correct += hits
                if cfg.progress:  # host-side text only; the device is never waited for
                    bar.update(task, advance=1,
                               speed=f"{(i + 1) * bs / (time.perf_counter() - t0):,.0f}")
            train_loss = loss_sum.item() / n
            epoch_seconds = time.perf_counter() - t0
            train_seconds += epoch_seconds
            check_loss(train_loss, train_split.num_classes, epoch)
            record = {"epoch": epoch, "train_loss": round(train_loss, 6),
                      "train_acc": round(100 * correct.item() / n, 4),
                      "lr": sched.get_last_lr()[0], "seconds": round(epoch_seconds, 3)}
            average.hold_average()  # evaluated, snapshotted, saved: the average when cfg.ema
            record.update(evaluate_splits(model, data, cfg, evals))
            history.append(record)
            show_epoch(bar, task, record, n, epoch_seconds, steps)
            if on_epoch is not None:
                on_epoch(epoch, record)
    if graph:  # the gradients live in the graph's memory: let both go
        model.zero_grad(set_to_none=True)
    return result_dict(history, evals, time.perf_counter() - start, train_seconds,
                       n * cfg.epochs, device, fast)


def dropout_generator(model: nn.Module) -> torch.Generator | None:
    """The generator the model's dropout draws from while training (fast.RunDropout), if any."""
    return next((m.generator for m in model.modules()
                 if getattr(m, "generator", None) is not None and m.p > 0), None)


def evaluate_splits(model: nn.Module, data: Data, cfg, evals: dict) -> dict:
    """Evaluate val and test (those present) into `evals`; their accuracy and loss fields."""
    fields = {}
    for name in ("val", "test"):
        split = getattr(data, name)
        if split is not None:
            evals[name] = evaluate(model, split, cfg.eval_batch_size)
            fields[f"{name}_acc"] = evals[name]["acc"]
            fields[f"{name}_loss"] = round(evals[name]["loss"], 6)
    return fields


def show_epoch(bar: Progress, task, record: dict, n: int, seconds: float, steps: int) -> None:
    shown = "  ".join(f"{k[:-4]} {record[k]:.2f}%" for k in ("val_acc", "test_acc")
                      if k in record)
    bar.update(task, completed=steps, speed=f"{n / seconds:,.0f}",
               loss=f"{record['train_loss']:.4f}", train_acc=f"{record['train_acc']:.2f}",
               eval=shown)


def result_dict(history: list, evals: dict, seconds: float, train_seconds: float,
                images: int, device: torch.device, fast: Fast) -> dict:
    return {
        "history": history,
        "val": evals.get("val"),
        "test": evals.get("test"),
        "seconds": round(seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images / max(train_seconds, 1e-9), 1),
        "device": device.type,
        "device_name": device_name(device, fast),
    }
