"""K trials of one architecture trained at once: one vmapped step trains K models (issue 5.3).

Tiny models leave a GPU idle: a step of an 8k-parameter net is a few hundred small kernel
launches. `train_group` stacks K models of the same architecture (torch.func's
stack_module_state) and runs their forward and backward as one (vmap over functional_call,
which turns each conv into a grouped conv), so K trials cost about one trial's launches.

Each member keeps its own everything but the batch size and the epoch count: initial weights,
seed and batch order, augmentation, lr and schedule, momentum, Nesterov, weight decay, label
smoothing, BatchNorm running statistics, on_epoch hook (which may raise to prune it) and
divergence check. A member that stops is cut out of the stacks; the others go on. Members are
evaluated one by one with train.evaluate, so their recorded accuracy is exactly what the saved
weights give later. Results come back in train()'s format (or the exception that stopped them).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from models import UserError

from .data import Data
from .fast import fast_settings, training_process
from .train import (
    DivergedError,
    evaluate_splits,
    make_schedule,
    progress_bar,
    resolve_device,
    result_dict,
    show_epoch,
)

SAME = ("batch_size", "epochs", "device", "train_subset", "val_split", "test_subset",
        "eval_batch_size")  # what K members must share to be stepped together


def lr_table(cfgs: list, total_steps: int, device: torch.device) -> torch.Tensor:
    """(total_steps + 1, K) learning rates: train()'s own schedulers, replayed once per shape
    (row t is the rate of step t; the last row is what train() records after its last step).

    Every schedule is proportional to cfg.lr, so members differing only in lr share a replay.
    """
    shapes: dict[tuple, list[float]] = {}
    columns = []
    for cfg in cfgs:
        key = (cfg.schedule, cfg.warmup, cfg.epochs)
        if key not in shapes:
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            sched = make_schedule(opt, dataclasses.replace(cfg, lr=1.0), total_steps)
            shape = [opt.param_groups[0]["lr"]]
            for _ in range(total_steps):
                opt.step()
                sched.step()
                shape.append(opt.param_groups[0]["lr"])
            shapes[key] = shape
        columns.append([cfg.lr * v for v in shapes[key]])
    return torch.tensor(columns, dtype=torch.float32, device=device).T.contiguous()


class Group:
    """The stacked state of the members still training: weights, momentum, buffers."""

    def __init__(self, models: list[nn.Module], cfgs: list, device: torch.device):
        params, self.buffers = stack_module_state(models)
        self.shapes = {k: tuple(v.shape[1:]) for k, v in params.items()}
        self.flat = torch.cat([v.detach().reshape(len(models), -1) for v in params.values()],
                              1).requires_grad_()  # one (K, P) leaf: the update is 5 kernels
        self.momentum_buf = torch.zeros_like(self.flat)
        col = lambda f: torch.tensor([[float(f(c))] for c in cfgs], device=device)  # noqa: E731
        self.wd, self.mom = col(lambda c: c.weight_decay), col(lambda c: c.momentum)
        self.nesterov = col(lambda c: c.nesterov and c.momentum > 0) * self.mom

    def params(self) -> dict[str, torch.Tensor]:
        """Per-parameter (K, ...) views into the flat weights (made anew each step)."""
        out, start = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            out[name] = self.flat[:, start:start + size].view(-1, *shape)
            start += size
        return out

    @torch.no_grad()
    def sgd_step(self, lr: torch.Tensor) -> None:
        """torch.optim.SGD's update (coupled weight decay, dampening 0), each member its own."""
        g = self.flat.grad.add_(self.flat * self.wd)
        self.momentum_buf.mul_(self.mom).add_(g)
        g.add_(self.momentum_buf * self.nesterov)
        self.flat.sub_(g * lr[:, None])
        self.flat.grad = None

    @torch.no_grad()
    def keep(self, rows: list[int]) -> None:
        """Cut the stacks down to the given members (the others stopped)."""
        idx = torch.tensor(rows, device=self.flat.device)
        self.flat = self.flat.index_select(0, idx).requires_grad_()
        self.momentum_buf = self.momentum_buf.index_select(0, idx)
        self.buffers = {k: v.index_select(0, idx) for k, v in self.buffers.items()}
        self.wd, self.mom, self.nesterov = (t.index_select(0, idx)
                                            for t in (self.wd, self.mom, self.nesterov))

    @torch.no_grad()
    def write_back(self, row: int, model: nn.Module) -> None:
        """Copy member `row`'s weights and running statistics into its own module."""
        params = self.params()
        for name, t in model.named_parameters():
            t.copy_(params[name][row])
        for name, t in model.named_buffers():
            t.copy_(self.buffers[name][row])


def _check(models: list[nn.Module], cfgs: list) -> None:
    if not models or len(models) != len(cfgs):
        raise UserError("train_group needs one Config per model, and at least one model")
    # repr covers what shapes do not: a dropout rate, a pool, a stride (one template runs all)
    if len({repr(m) for m in models}) != 1:
        raise UserError("train_group trains models of one architecture only")
    for name in SAME:
        if len({getattr(c, name) for c in cfgs}) != 1:
            raise UserError(f"train_group members must share {name}")


def train_group(models: list[nn.Module], cfgs: list, data: Data,
                on_epochs: list[Callable[[int, dict], None] | None] | None = None,
                ) -> list[dict | BaseException]:
    """Train K same-architecture models at once; per member train()'s result or its exception.

    The models are trained in place (like train()); `on_epochs[k](epoch, record)` may raise to
    stop member k alone.
    """
    _check(models, cfgs)
    k = len(models)
    on_epochs = list(on_epochs or [None] * k)
    device = resolve_device(cfgs[0].device)
    fast = fast_settings(cfgs[0], device)
    for m in models:
        m.to(device)
    with training_process(fast):
        return _train_group(models, cfgs, data, on_epochs, device, fast)


def _train_group(models, cfgs, data, on_epochs, device, fast) -> list:
    k, cfg0 = len(models), cfgs[0]
    n, bs = len(data.train), cfg0.batch_size
    steps = math.ceil(n / bs)
    lrs = lr_table(cfgs, cfg0.epochs * steps, device)
    group = Group(models, cfgs, device)
    template = copy.deepcopy(models[0]).to("meta")  # the architecture; weights come stacked
    template.train()
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)),
                   randomness="different")
    # Members with the same seed and augmentation see the same batches: draw those once.
    stream = [(c.seed, c.rotate, c.translate) for c in cfgs]
    gens = {key: torch.Generator(device=device).manual_seed(key[0]) for key in stream}
    smoothing = torch.tensor([c.label_smoothing for c in cfgs], device=device)
    autocast = (lambda: torch.autocast(device.type, dtype=fast.amp)) if fast.amp else \
        contextlib.nullcontext
    active = list(range(k))  # members still training, in stack order
    results: list = [None] * k
    histories, evals = [[] for _ in range(k)], [{} for _ in range(k)]
    train_seconds, start, step = 0.0, time.perf_counter(), 0
    with progress_bar(cfg0.progress) as bar:
        for epoch in range(1, cfg0.epochs + 1):
            task = bar.add_task(f"{k} at once, epoch {epoch}/{cfg0.epochs}", total=steps,
                                speed="-", loss="-", train_acc="-", eval="")
            t0 = time.perf_counter()
            loss_sum = torch.zeros(len(active), device=device)
            correct = torch.zeros(len(active), device=device, dtype=torch.long)
            keys = list(dict.fromkeys(stream[m] for m in active))
            first = {key: next(m for m in active if stream[m] == key) for key in keys}
            pick = [keys.index(stream[m]) for m in active]
            batches = zip(*[data.train.train_batches(cfgs[first[key]], gens[key])
                            for key in keys])
            # Sliced once per epoch: no host-to-device copy per step.
            lr_active, smoothing_active = lrs[:, active], smoothing[active]
            for drawn in batches:
                x = torch.stack([drawn[i][0] for i in pick])
                y = torch.stack([drawn[i][1] for i in pick])
                with autocast():
                    out = forward(group.params(), group.buffers, x)  # (K, B, classes)
                    losses = member_losses(out, y, smoothing_active)
                losses.sum().backward()  # members share no weights: each gets its own grads
                group.sgd_step(lr_active[step])
                step += 1
                loss_sum += losses.detach() * y.shape[1]
                correct += (out.detach().argmax(2) == y).sum(1)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            losses_now, correct_now = (loss_sum / n).tolist(), correct.tolist()  # one sync
            stopped = []
            for row, m in enumerate(active):
                try:
                    record = _epoch(group, row, models[m], cfgs[m], data, epoch, losses_now[row],
                                    correct_now[row], n, float(lrs[step, m]), seconds,
                                    evals[m])
                    histories[m].append(record)
                    if on_epochs[m] is not None:
                        on_epochs[m](epoch, record)
                except Exception as e:  # pruned (the hook raised) or diverged: this one stops
                    results[m] = e
                    stopped.append(m)
            show_epoch(bar, task, histories[active[0]][-1] if histories[active[0]] else
                       {"train_loss": math.nan, "train_acc": math.nan}, n * len(active),
                       seconds, steps)
            if stopped:
                rows = [row for row, m in enumerate(active) if m not in stopped]
                active = [active[row] for row in rows]
                if not active:
                    break
                group.keep(rows)
    elapsed = time.perf_counter() - start
    for m in active:
        results[m] = result_dict(histories[m], evals[m], elapsed, train_seconds,
                                 n * cfg0.epochs, device)
        results[m]["parallel"] = k
    return results


def member_losses(out: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy with its own label smoothing e, (K,), all at once:
    (1 - e) * NLL + e * mean over classes of -log p, as F.cross_entropy defines it."""
    logp = torch.log_softmax(out.float(), dim=-1)
    nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    e = smoothing[:, None]
    return ((1 - e) * nll - e * logp.mean(-1)).mean(1)


def _epoch(group: Group, row: int, model, cfg, data, epoch: int, loss: float, correct: int,
           n: int, lr: float, seconds: float, evals: dict) -> dict:
    """One member's epoch record (train()'s format), evaluated on its own module."""
    if not math.isfinite(loss):
        raise DivergedError(f"training loss is {loss} at epoch {epoch}")
    group.write_back(row, model)
    record = {"epoch": epoch, "train_loss": round(loss, 6),
              "train_acc": round(100 * correct / n, 4), "lr": lr, "seconds": round(seconds, 3)}
    record.update(evaluate_splits(model, data, cfg, evals))
    return record
