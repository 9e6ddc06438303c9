"""The fast path's settings: Config's "auto" values resolved per device type to what measured
fastest with `python -m benchmarks speed` (figures and machine: docs/performance.md).

    CPU   every core (one each with --jobs), fp32, channels_last, geometric-gap dropout masks,
          fused SGD, freed memory kept in the heap (glibc); with several threads and batches
          of 128 or more also the wide-row batch norm for narrow layers
    CUDA  channels_last, bf16 autocast, fused SGD, each step replayed as a CUDA graph
    both  no torch.compile unless asked (--compile on)
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import inspect
import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from .batchnorm import ChannelsLastBatchNorm2d, nhwc_as_nchw

# Every core for one training (torch's default), one per training when trainings run side by
# side (search run --jobs; runs.for_jobs). On the 2-core VM of docs/performance.md a lone
# resnet_8k training measured 1.1-1.5x faster with two threads than with one. On a machine
# whose cores other jobs hold, OpenMP's threads stall each other: pass --threads 1 there.
# The two CPU kernels (RunDropout's geometric masks, wide-row batch norm) are Config switches,
# fast_dropout and fast_batchnorm, so the speed benchmark ablates them through a Config.

@dataclass(frozen=True)
class Fast:
    channels_last: bool  # NHWC activations: faster convs on CPU (oneDNN) and on tensor cores
    amp: torch.dtype | None  # autocast dtype for the training forward pass (None: fp32)
    compile: bool  # torch.compile the training forward pass
    graphs: bool  # replay the training step as a CUDA graph (graphs.py)
    threads: int | None  # torch CPU threads while training (None: leave torch's setting)
    geometric_dropout: bool  # RunDropout draws CPU masks from geometric gaps (fast_dropout)
    fast_batchnorm: bool  # nn.BatchNorm2d runs as ChannelsLastBatchNorm2d while training
    keep_heap: bool  # glibc keeps freed memory for reuse (process-wide, from the first training)


def fast_settings(cfg, device: torch.device) -> Fast:
    """The fast-path choices for `cfg` on `device` ("auto" becomes the measured winner)."""
    cuda, cpu = device.type == "cuda", device.type == "cpu"
    on = lambda value, auto: auto if value == "auto" else value == "on"  # noqa: E731
    # bf16 autocast on CPU measured slower than fp32 for every workload and thread count tried
    # (Intel Xeon with AMX: the zoo's nets 0.8x with one thread, 0.85-0.97x with two; ResNet18
    # at 224 px, batch 16, 0.7x): autocast casts every weight and activation on every step, and
    # at 8-28 channels the convolutions gain little from bf16. The wide-row
    # batch norm pays only where torch's NHWC kernel stalls: several threads and long rows
    # (batch 128: 1.15-1.50x; batch 32 and 64: 0.79-0.94x). docs/performance.md has the runs.
    several = cpu and (cfg.threads or torch.get_num_threads()) > 1
    amp = cfg.amp if cfg.amp != "auto" else ("bf16" if cuda and native_bf16(device) else "off")
    channels_last, compiled = on(cfg.channels_last, cuda or cpu), on(cfg.compile, False)
    return Fast(
        channels_last=channels_last,
        amp=torch.bfloat16 if amp == "bf16" else None,
        # Off unless asked: on CPU it measured 0.7x per step plus ~50 s to compile, and on a
        # GPU compiling each new architecture would cost more than a 20-epoch run of it.
        compile=compiled,
        # CUDA only, and not compiled (torch.compile has graphs of its own). Channels_last
        # too: evaluation would otherwise re-lay the weights out (eval_channels_last), moving
        # them from under the graph.
        graphs=cuda and on(cfg.cuda_graphs, True) and channels_last and not compiled,
        threads=cfg.threads or None,  # None: torch's own setting (every core)
        # Both are CPU kernels: elsewhere "on" changes nothing (they fall back to torch's).
        geometric_dropout=cpu and on(cfg.fast_dropout, True),  # 1.04-1.07x the whole step
        fast_batchnorm=cpu and on(cfg.fast_batchnorm, several and cfg.batch_size >= 128),
        keep_heap=cpu)  # glibc keeps freed blocks for the next step (keep_heap)


def native_bf16(device: torch.device) -> bool:
    """bf16 in hardware: CUDA compute capability 8+, or a CPU with AVX512-BF16 or AMX (where
    oneDNN runs bf16 convs natively; emulated, bf16 would be slower than fp32)."""
    if device.type == "cuda":  # Ampere (8.x) on; is_bf16_supported() also counts emulation
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return any(getattr(torch.cpu, probe, lambda: False)()
                   for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h


@functools.cache  # process-wide and for good: once is enough
def keep_heap() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse (process-wide, for good).

    A training step on CPU allocates and frees activations and gradients of 0.1-3 MB. By default
    glibc serves such blocks with mmap or trims them off the heap when freed, so the next step
    faults every 4 KB page back in: ~1,000-2,000 page faults per resnet_8k step, ~0 with this
    setting. Returns whether it applied (not on macOS, Windows or other C libraries).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    # Fixing the mmap threshold also stops glibc moving it; trimming waits for 1 GB free.
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def eval_channels_last(device: torch.device) -> bool:
    """Evaluation's layout depends on the device only, never on training's flags, so the
    accuracy recorded in training is exactly what `benchmarks evaluate` reproduces."""
    return device.type in ("cpu", "cuda")


def make_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    optim = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    kwargs = {}
    if device.type == "cuda":  # one kernel for the whole update instead of several per tensor
        fused = "fused" in inspect.signature(optim).parameters
        kwargs = {"fused": True} if fused else {"foreach": True}
    elif optim is torch.optim.SGD and fused_sgd(device):
        # One kernel over every tensor: 0.07 ms a step for nas_plain_5k's 22 tensors against
        # 0.36 ms for torch's default per-tensor loop on CPU (0.25 ms with foreach). The same
        # update; its rounding may differ by a unit (tests/test_speed.py).
        kwargs = {"fused": True}
    if optim is torch.optim.Adam:  # the peers' Adam (models/peers.toml)
        return optim(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **kwargs)
    return optim(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                 nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay,
                 **kwargs)


@functools.cache
def fused_sgd(device: torch.device) -> bool:
    """Whether this torch has a fused SGD kernel for the device type (CPU: torch >= 2.4)."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
        if device.type not in _get_fused_kernels_supported_devices():
            return False
        p = nn.Parameter(torch.zeros(2, device=device))
        p.grad = torch.ones(2, device=device)
        torch.optim.SGD([p], lr=0.1, momentum=0.9, fused=True).step()
        return True
    except (ImportError, RuntimeError, TypeError, ValueError):
        return False


class RunDropout(nn.Dropout):
    """nn.Dropout drawing from the training run's own generator (set by fast_model, on the
    model's device), never torch's global one: trainings side by side in threads (--jobs) never
    share a random stream, and a run's seed alone decides its masks, on CPU and CUDA alike.

    On CPU, where drawing one random number per element dominates dropout, the mask comes from
    geometric gaps (`geometric`): the gaps between dropped elements of iid Bernoulli(p) drops
    are Geometric(p), so drawing the gaps gives exactly the same distribution from about p*n
    random numbers instead of n (3x faster per mask at p = 0.05)."""

    generator: torch.Generator | None = None
    geometric: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.inplace or self.p >= 1 or self.generator is None:
            return super().forward(x)
        layout = _layout(x)
        if self.geometric and layout is not None and x.device.type == "cpu":
            return x * layout(geometric_mask(x.numel(), self.p, self.generator, x.dtype))
        # empty_like keeps x's layout (channels_last too); one draw per element
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep.div_(1 - self.p)


def geometric_mask(n: int, p: float, generator: torch.Generator | None,
                   dtype: torch.dtype) -> torch.Tensor:
    """n values, each independently 0 with probability p and 1/(1-p) otherwise."""
    log_keep, expected = math.log1p(-p), n * p
    chunks, end = [], 0
    while end < n:  # one pass but for ~1e-9 of masks (6 standard deviations of spare draws)
        u = torch.rand(int(expected + 6 * math.sqrt(expected) + 16), dtype=torch.float64,
                       generator=generator)
        # P(gap >= g) = P(1 - u <= (1-p)^g) = (1-p)^g: kept elements before the next drop
        gaps = torch.log1p(-u).div_(log_keep).floor_().long().add_(1)
        chunks.append(gaps.cumsum_(0).add_(end - 1))  # positions of the dropped elements
        end = int(chunks[-1][-1]) + 1
    dropped = torch.cat(chunks)
    mask = torch.full((n,), 1 / (1 - p), dtype=dtype)
    return mask.index_fill_(0, dropped[dropped < n], 0)


def _layout(x: torch.Tensor):
    """A function laying a flat tensor out like x (same strides), or None for odd strides."""
    if x.is_contiguous():
        return lambda flat: flat.view(x.shape)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return lambda flat: nhwc_as_nchw(flat, x.shape)
    return None


@contextlib.contextmanager
def fast_model(model: nn.Module, fast: Fast, seed: int = 0):
    """Put the model in the fast layout (dropout, batch norm) for training; give it back as it
    was. The fast modules (fast_modules) only change how training computes, never the state."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    slots = fast_modules(model, fast.fast_batchnorm)
    try:
        dropouts = [m for m in model.modules() if isinstance(m, RunDropout)]
        # Its own stream on the model's device, not the shuffling one's (train() seeds that
        # with the same seed).
        generator = torch.Generator(device).manual_seed(seed ^ 0x5DEECE66D) if dropouts else None
        for m in dropouts:
            m.generator, m.geometric = generator, fast.geometric_dropout
        with training_process(fast):
            if fast.channels_last:
                model.to(memory_format=torch.channels_last)
            yield
    finally:
        put_back(slots)
        model.to(memory_format=torch.contiguous_format)  # what checkpoints and callers expect


def fast_modules(model: nn.Module, batchnorm: bool) -> list[tuple]:
    """Replace, in the model's tree, each nn.Dropout by a RunDropout and (with `batchnorm`)
    each nn.BatchNorm2d by a ChannelsLastBatchNorm2d over the very same state (_sharing): the
    same Parameter and buffer objects under the same names, so the optimizer, the weight
    average, CUDA graphs and the state dict see no difference. put_back(the returned slots)
    restores the originals. Only children are replaced: a model that is itself a dropout or
    batch norm stays as it is."""
    kinds = {nn.Dropout: RunDropout,
             nn.BatchNorm2d: ChannelsLastBatchNorm2d if batchnorm else None}
    slots = [(parent, name, child) for parent in model.modules()
             for name, child in list(parent._modules.items()) if kinds.get(type(child))]
    twins = {}  # by original: a module found in several places gets one fast module
    for parent, name, child in slots:
        if id(child) not in twins:
            twins[id(child)] = _sharing(child, kinds[type(child)])
        setattr(parent, name, twins[id(child)])
    return [(parent, name, child, twins[id(child)]) for parent, name, child in slots]


def put_back(slots: list[tuple]) -> None:
    """Undo fast_modules: the originals back in their places, in the mode (train or eval)
    their fast modules were left in."""
    for parent, name, original, twin in reversed(slots):
        original.training = twin.training
        setattr(parent, name, original)


def _sharing(module: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """A `cls` module over `module`'s own state: a shallow copy, as copy.copy makes, of
    another class. Both hold the same dicts of parameters, buffers and hooks, so whatever
    either does to them (an in-place update, a re-laid-out tensor) the other has too; plain
    attributes (the training flag, RunDropout's generator) are each its own."""
    twin = cls.__new__(cls)
    twin.__dict__.update(module.__dict__)
    return twin


@contextlib.contextmanager
def training_process(fast: Fast):
    """The process-level settings of a training: the kept heap (once, for good) and the thread
    count (restored after the block)."""
    if fast.keep_heap:
        keep_heap()
    with threads_while(fast.threads):
        yield


@contextlib.contextmanager
def threads_while(n: int | None):
    """torch's CPU thread count set to n (when given) inside the block, restored after.

    The count is per OS thread once a thread has run an op (OpenMP's setting is per thread),
    so trainings side by side in threads (--jobs) must each set their own: this does.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
