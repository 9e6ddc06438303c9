"""CUDA graphs for train(): one training step's forward, loss and backward recorded once and
replayed for every full-size batch (Config.cuda_graphs; fast.py resolves it).

Why: a model of 5-20k parameters leaves an H100 idle. Its step is a few hundred small kernels,
and launching them from Python costs more than running them; a replayed graph is one launch.
What stays outside the graph, eager as before: the batch itself (shuffling, augmentation), the
optimizer step (fused SGD, a few launches, so the schedule's learning rate and momentum, host
floats, still change every step), the weight average, and an epoch's last, smaller batch.

How (the "whole network capture" of torch's CUDA graphs notes, without the optimizer): a few
eager warm-up steps on the batch first (cuDNN and cuBLAS choose algorithms and allocate
workspaces outside the capture; batch norm's running statistics and the dropout generator are
restored after them, so they train and draw nothing), then gradients set to None, so the
captured backward allocates them in the graph's memory and every replay rewrites them in place:
the optimizer reads them there, and no zero_grad is needed between replays. An eager step in
between must zero them in place.

Where capture fails (an old torch, an op that cannot be captured, another thread's capture in
the way), the run goes on eagerly with a warning: nothing is lost but speed.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import warnings

import torch
from torch import nn

WARMUP_STEPS = 3  # what torch.cuda.make_graphed_callables does by default
_capture_lock = threading.Lock()  # one capture at a time in this process (trainings in threads)


class StepGraph:
    """A captured step: replay(x, y) trains on a batch of `batch` images, leaving the gradients
    in the parameters' .grad; it returns (loss x batch size, correct predictions), on the
    device, overwritten by the next replay."""

    def __init__(self, graph, x: torch.Tensor, y: torch.Tensor, sums: tuple):
        self.graph, self.x, self.y, self.sums = graph, x, y, sums
        self.batch = len(y)

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        return self.sums


def eager_step(model: nn.Module, loss_fn, autocast, x: torch.Tensor, y: torch.Tensor):
    """Forward, loss and backward; (loss x batch size, correct predictions) on the device."""
    with autocast():
        out = model(x)
        loss = loss_fn(out, y)
    loss.backward()
    return loss.detach() * len(y), (out.detach().argmax(1) == y).sum()


def capture(model: nn.Module, loss_fn, amp: torch.dtype | None, x: torch.Tensor,
            y: torch.Tensor, generator: torch.Generator | None) -> StepGraph | None:
    """The training step on batches shaped like (x, y) as a CUDA graph, or None (warned) where
    it cannot be captured. `generator`: the one the model's dropout draws from (RunDropout),
    registered with the graph so that every replay draws new masks."""
    if generator is not None and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        _warn(f"torch {torch.__version__} cannot replay dropout drawn from a run's own "
              "generator")
        return None
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        with _capture_lock:
            return _capture(model, loss_fn, amp, x, y, generator)
    except Exception as err:  # noqa: BLE001 -- any failure: train eagerly instead
        model.zero_grad(set_to_none=True)
        _warn(f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}")
        return None
    finally:
        with torch.no_grad():  # the warm-up steps must not count in batch norm's statistics
            for b, saved in buffers:
                b.copy_(saved)


def _capture(model, loss_fn, amp, x, y, generator) -> StepGraph:
    x, y = x.clone(), y.clone()  # the static inputs each replay refills
    # Autocast's cache of cast weights would be freed when the capture's autocast block ends,
    # while the graph still points at it: make_graphed_callables refuses it for that reason.
    autocast = (lambda: torch.autocast(x.device.type, dtype=amp, cache_enabled=False)) \
        if amp else contextlib.nullcontext
    drawn = generator.get_state() if generator is not None else None
    try:
        for _ in range(WARMUP_STEPS):
            eager_step(model, loss_fn, autocast, x, y)
    finally:  # the warm-up's dropout masks are not the run's: a graphed run draws as an eager one
        if drawn is not None:
            generator.set_state(drawn)
    model.zero_grad(set_to_none=True)  # the captured backward allocates the grads it rewrites
    graph = torch.cuda.CUDAGraph()
    if generator is not None:
        graph.register_generator_state(generator)
    # On the training's own stream (train.own_stream), not torch's one shared capture stream:
    # trainings side by side in threads (--jobs) each capture their own. "thread_local": another
    # thread's allocations while this one captures are its own business (torch >= 2.1).
    kwargs = {"stream": torch.cuda.current_stream()}
    if "capture_error_mode" in inspect.signature(torch.cuda.graph).parameters:
        kwargs["capture_error_mode"] = "thread_local"
    with torch.cuda.graph(graph, **kwargs):
        sums = eager_step(model, loss_fn, autocast, x, y)
    return StepGraph(graph, x, y, sums)


def _warn(why: str) -> None:
    warnings.warn(f"CUDA graphs off for this run, training eagerly ({why}); "
                  "--cuda-graphs off skips the attempt", RuntimeWarning, stacklevel=3)
