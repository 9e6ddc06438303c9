"""The one training loop, used by the benchmarks and the search alike.

`train(model, cfg, data, on_epoch)` runs SGD with a one-cycle schedule over device-resident
data and evaluates after every epoch. The search hooks in through `on_epoch(epoch, record)`,
which may raise (Optuna's TrialPruned) to stop the run; this module never imports Optuna.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from .data import Data


class DivergedError(RuntimeError):
    """Training produced a NaN or infinite loss; the run is stopped and recorded as such."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from models import UserError
        raise UserError(f"invalid option: device {name!r} asked for, but CUDA is not available")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} cpu, {torch.get_num_threads()} threads"


@torch.no_grad()
def evaluate(model: nn.Module, split, batch_size: int = 2000) -> dict:
    """Accuracy, top-3, loss, confusion matrix and per-class precision/recall, in percent."""
    model.eval()
    k = split.num_classes
    confusion, loss, top3 = 0, 0, 0
    for x, y in split.eval_batches(batch_size):
        out = model(x).float()
        loss = loss + nn.functional.cross_entropy(out, y, reduction="sum")
        top3 = top3 + (out.topk(min(3, k), dim=1).indices == y[:, None]).any(1).sum()
        confusion = confusion + torch.bincount(y * k + out.argmax(1), minlength=k * k)
    cm = confusion.view(k, k).cpu()  # rows: true class, columns: predicted
    n = len(split)
    diag = cm.diag().double()
    return {
        "acc": round(100 * diag.sum().item() / n, 4),
        "top3": round(100 * float(top3) / n, 4),
        "loss": float(loss) / n,
        "precision": [round(v, 4) for v in (100 * diag / cm.sum(0).clamp(min=1)).tolist()],
        "recall": [round(v, 4) for v in (100 * diag / cm.sum(1).clamp(min=1)).tolist()],
        "confusion": cm.tolist(),
    }


def _schedule(opt, cfg, total_steps: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=max(cfg.warmup, 1e-3),
            anneal_strategy="linear", cycle_momentum=False, div_factor=20,
            final_div_factor=200)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if cfg.schedule == "step":  # the transfer tutorial's StepLR(7 epochs, 0.1); stepped per batch
        steps_per_epoch = max(1, total_steps // cfg.epochs)
        return torch.optim.lr_scheduler.StepLR(opt, step_size=7 * steps_per_epoch, gamma=0.1)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


def _progress(enabled: bool) -> Progress:
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
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model.to(device)
    train_split = data.train
    n, bs = len(train_split), cfg.batch_size
    steps = math.ceil(n / bs)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov and cfg.momentum > 0,
                          weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg, cfg.epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)

    history, train_seconds, start = [], 0.0, time.perf_counter()
    evals = {}
    with _progress(cfg.progress) as bar:
        for epoch in range(1, cfg.epochs + 1):
            task = bar.add_task(f"epoch {epoch}/{cfg.epochs}", total=steps, speed="-",
                                loss="-", train_acc="-", eval="")
            model.train()
            t0 = time.perf_counter()
            # Accumulate on the device and read once per epoch: no host sync per step.
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for i, (x, y) in enumerate(train_split.train_batches(cfg, gen)):
                out = model(x)
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * len(y)
                correct += (out.detach().argmax(1) == y).sum()
                bar.update(task, advance=1,
                           speed=f"{(i + 1) * bs / (time.perf_counter() - t0):,.0f}")
            train_loss = loss_sum.item() / n
            epoch_seconds = time.perf_counter() - t0
            train_seconds += epoch_seconds
            if not math.isfinite(train_loss):
                raise DivergedError(f"training loss is {train_loss} at epoch {epoch}")
            record = {"epoch": epoch, "train_loss": round(train_loss, 6),
                      "train_acc": round(100 * correct.item() / n, 4),
                      "lr": sched.get_last_lr()[0], "seconds": round(epoch_seconds, 3)}
            for name in ("val", "test"):
                split = getattr(data, name)
                if split is not None:
                    evals[name] = evaluate(model, split, cfg.eval_batch_size)
                    record[f"{name}_acc"] = evals[name]["acc"]
                    record[f"{name}_loss"] = round(evals[name]["loss"], 6)
            history.append(record)
            shown = "  ".join(f"{k[:-4]} {record[k]:.2f}%" for k in ("val_acc", "test_acc")
                              if k in record)
            bar.update(task, speed=f"{n / epoch_seconds:,.0f}", loss=f"{train_loss:.4f}",
                       train_acc=f"{record['train_acc']:.2f}", eval=shown)
            if on_epoch is not None:
                on_epoch(epoch, record)
    return {
        "history": history,
        "val": evals.get("val"),
        "test": evals.get("test"),
        "seconds": round(time.perf_counter() - start, 3),
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(n * cfg.epochs / train_seconds, 1),
        "device": device.type,
        "device_name": device_name(device),
    }
