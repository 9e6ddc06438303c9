"""What `benchmarks speed` times: the classic PyTorch loop (the baseline), the harness's
train(), the harness with one fast-path choice switched off (ablations), and K trainings side by
side; each a Contender whose run(steps) returns images per second. Also the device's matmul peak.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from models import create_model

from ..harness import data as data_mod
from ..harness import fast as fast_mod
from ..harness.config import Config
from ..harness.data import MEAN, STD, Data, Split
from ..harness.device import resolve_device
from ..harness.fast import fast_settings, native_bf16, threads_while
from ..harness.runs import for_jobs, side_by_side
from ..harness.train import make_schedule, train

LOG_INTERVAL = 10  # the example's --log-interval: loss.item() every 10 batches


def peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32,
                threads: int | None = None) -> dict:
    """The device's measured matmul peak in `dtype`: 2048^2 on CPU, 8192^2 on CUDA."""
    n, reps = (8192, 20) if device.type == "cuda" else (2048, 4)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    with threads_while(threads):
        a @ b  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        seconds = time.perf_counter() - t0
    return {"gflops": round(2 * n**3 * reps / seconds / 1e9, 1),
            "matmul": f"{n}x{n} {str(dtype).removeprefix('torch.')}",
            "threads": torch.get_num_threads() if threads is None else threads}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------
# The baseline: pytorch/examples mnist's loop, faithfully, with the contended recipe written the
# plain way: torchvision's per-image transforms, the schedule stepped per batch, torch's own
# weight average (the AveragedModel EMA of torch's docs)

def classic_transform(cfg: Config):
    """The recipe's augmentation as torchvision's per-image transforms, the same amounts as
    data.augment: rotation up to cfg.rotate degrees, shift up to cfg.translate of the side, zoom
    1 +- cfg.scale, horizontal shear up to cfg.shear degrees; cutout as RandomErasing (a square
    of 1-16% of the area, as 10-40% of the side); then ToTensor and Normalize."""
    from torchvision import transforms

    steps = []
    if cfg.rotate or cfg.translate or cfg.scale or cfg.shear:
        steps.append(transforms.RandomAffine(
            cfg.rotate, translate=(cfg.translate, cfg.translate) if cfg.translate else None,
            scale=(1 - cfg.scale, 1 + cfg.scale) if cfg.scale else None,
            shear=cfg.shear or None))
    steps += [transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))]
    if cfg.erase:
        steps.append(transforms.RandomErasing(cfg.erase, scale=(0.01, 0.16), ratio=(1, 1)))
    return transforms.Compose(steps)


def classic_loader(root: Path, cfg: Config, device: torch.device):
    from torchvision import datasets

    dataset = datasets.MNIST(str(root), train=True, transform=classic_transform(cfg))
    kwargs = {"batch_size": cfg.batch_size, "shuffle": True}
    if device.type == "cuda":  # the example's accelerator kwargs
        kwargs.update(num_workers=1, persistent_workers=True, pin_memory=True)
    return torch.utils.data.DataLoader(dataset, **kwargs)


def classic_steps(model, loader, cfg: Config, device: torch.device, steps: int) -> float:
    """`steps` batches of the example's train() with cfg's optimizer, schedule (over `steps`,
    as the harness's one-epoch run) and weight average; returns seconds (synced at the end)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0,
                                weight_decay=cfg.weight_decay)
    scheduler = make_schedule(optimizer, dataclasses.replace(cfg, epochs=1), steps)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                        use_buffers=True) if cfg.ema else None
    model.train()
    t0 = time.perf_counter()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.cross_entropy(output, target, label_smoothing=cfg.label_smoothing)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        if batch_idx % LOG_INTERVAL == 0:  # the example prints this line; we only build it
            _ = f"Train [{batch_idx * len(data)}/{len(loader.dataset)}]\tLoss: {loss.item():.6f}"
        if batch_idx + 1 == steps:
            break
    _sync(device)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# Measurements

@dataclasses.dataclass
class Contender:
    """One thing timed each round: a name, and run(steps) -> (images, seconds of wall time).
    Each round also records images per second of the process's CPU time (all its threads):
    on a machine that other jobs share, with one thread each, that figure moves less."""
    name: str
    run: object
    precision: str = "fp32"
    warmup_seconds: float = 0.0
    runs: list = dataclasses.field(default_factory=list)
    cpu_runs: list = dataclasses.field(default_factory=list)

    def time(self, steps: int) -> float:
        cpu = time.process_time()
        images, seconds = self.run(steps)
        cpu = time.process_time() - cpu
        self.runs.append(images / seconds)
        self.cpu_runs.append(images / max(cpu, 1e-9))
        return self.runs[-1]

    def median(self) -> float:
        return round(statistics.median(self.runs), 1)

    def cpu_median(self) -> float:
        return round(statistics.median(self.cpu_runs), 1)


def precision(cfg: Config, device: torch.device) -> str:
    """What the harness trains in on `device` for cfg: bf16 autocast or fp32."""
    return "bf16 autocast" if fast_settings(cfg, device).amp else "fp32"


def baseline(cfg, device, loader, steps: int, threads: int | None = None):
    def run(n: int) -> tuple[int, float]:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model).to(device)  # the same initial weights as the harness
        with threads_while(threads):
            return n * cfg.batch_size, classic_steps(model, loader, cfg, device, n)
    return run


def _first(split: Split, n: int, cfg) -> Data:
    return Data(Split(split.x[: n * cfg.batch_size], split.y[: n * cfg.batch_size]), None, None)


def harness(cfg, split: Split, patch=None):
    """train() on the first n batches; `patch`: a context (ablations) around each run."""
    def run(n: int) -> tuple[int, float]:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model)
        data = _first(split, n, cfg)
        with patch() if patch else contextlib.nullcontext():
            result = train(model, cfg, data)
        return len(data.train), result["train_seconds"]
    return run


def parallel_contenders(cfg, split: Split, k: int) -> list[Contender]:
    """K trials (seeds cfg.seed...cfg.seed+K-1) one after another, then all K at once side by
    side in threads (search run --jobs K), each through the one train() with its own thread."""
    cfgs = [dataclasses.replace(cfg, seed=cfg.seed + i) for i in range(k)]

    def models() -> list:
        out = []
        for c in cfgs:
            torch.manual_seed(c.seed)
            out.append(create_model(c.model))
        return out

    def one_by_one(n: int) -> tuple[int, float]:
        data = _first(split, n, cfg)
        seconds = sum(train(m, c, data)["train_seconds"] for m, c in zip(models(), cfgs))
        return k * len(data.train), seconds

    def in_threads(n: int) -> tuple[int, float]:  # wall time, set-up included: against it
        data = _first(split, n, cfg)
        pairs = list(zip(models(), [for_jobs(c, k) for c in cfgs]))
        t0 = time.perf_counter()
        side_by_side(k, lambda pair, stop: train(*pair, data), pairs)
        return k * len(data.train), time.perf_counter() - t0

    p = precision(cfg, resolve_device(cfg.device))
    return [Contender("sequential", one_by_one, p), Contender(f"jobs k={k}", in_threads, p)]


def ablations(names, cfg: Config, device: torch.device, split: Split) -> list[Contender]:
    """The harness with one fast-path choice switched from its default: a Config override each,
    or for the choices no Config field holds (the fused SGD step, augmentation in chunks), the
    module setting swapped for that contender's runs only."""
    fast, default_threads = fast_settings(cfg, device), torch.get_num_threads()
    flip = lambda on: "off" if on else "on"  # noqa: E731
    out = []
    for name in names:
        if name == "channels_last":
            out.append((f"channels_last {flip(fast.channels_last)}",
                        {"channels_last": flip(fast.channels_last)}, None))
        elif name == "dropout" and fast.geometric_dropout and _has_dropout(cfg.model):
            out.append(("geometric dropout off", {"fast_dropout": "off"}, None))
        elif name == "batchnorm" and device.type == "cpu":
            out.append((f"wide-row batch norm {flip(fast.fast_batchnorm)}",
                        {"fast_batchnorm": flip(fast.fast_batchnorm)}, None))
        elif name == "threads" and (fast.threads or default_threads) > 1:
            out.append(("threads 1", {"threads": 1}, None))
        elif name == "threads" and fast.threads and fast.threads != default_threads:
            out.append((f"threads {default_threads}", {"threads": default_threads}, None))
        elif name == "amp" and (fast.amp or native_bf16(device)):  # emulated bf16: 0.33x
            out.append((f"bf16 autocast {flip(fast.amp)}",
                        {"amp": "off" if fast.amp else "bf16"}, None))
        elif name == "compile":
            out.append((f"compile {flip(fast.compile)}", {"compile": flip(fast.compile)}, None))
        elif name == "graphs" and device.type == "cuda":  # each train() captures anew
            out.append((f"cuda graphs {flip(fast.graphs)}", {"cuda_graphs": flip(fast.graphs)},
                        None))
        elif name == "optimizer" and device.type == "cpu" and fast_mod.fused_sgd(device):
            out.append(("fused SGD off (per-tensor loop)", {},
                        lambda: swapped(fast_mod, "fused_sgd", lambda d: False)))
        elif name == "chunks" and device.type == "cpu" and data_mod.CHUNK_IMAGES > cfg.batch_size:
            out.append(("augmentation one batch at a time", {},
                        lambda: swapped(data_mod, "CHUNK_IMAGES", 1)))
    return [Contender(label, harness(c, split, patch), precision(c, device))
            for label, c, patch in ((label, dataclasses.replace(cfg, **over), patch)
                                    for label, over, patch in out)]


def _has_dropout(model: str) -> bool:
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0
               for m in create_model(model).modules())


@contextlib.contextmanager
def swapped(module, name: str, value):
    """module.name = value inside the block (one contender's runs), restored after."""
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


# ----------------------------------------------------------------------------------------------
# Parts of the step timed alone, each way side by side: a gain of 1-5% of a whole step is below
# what rounds of whole trainings resolve on a shared machine, but plain here.

def part_timings(cfg: Config, device: torch.device, split: Split, rounds: int = 7,
                 reps: int = 30) -> dict:
    """Microseconds per step of the optimizer update, the weight average and one batch's
    augmentation, each the harness's way and the plain way, interleaved over `rounds`
    (medians), with the harness's thread count."""
    fast = fast_settings(cfg, device)
    torch.manual_seed(cfg.seed)
    params = [p.detach().to(device).requires_grad_() for p in create_model(cfg.model).parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    ways: dict[str, dict[str, object]] = {"optimizer step": {}, "weight average": {},
                                          "augmentation, per batch": {}}
    sgd = dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
               weight_decay=cfg.weight_decay)
    for label, kw in (("per-tensor loop", {"foreach": False}), ("foreach", {"foreach": True}),
                      ("fused", {"fused": True})):
        if label == "fused" and not fast_mod.fused_sgd(device):
            continue
        ways["optimizer step"][label] = torch.optim.SGD(params, **sgd, **kw).step
    average = [p.detach().clone() for p in params]
    ways["weight average"]["per-tensor lerp_ loop"] = lambda: [
        a.lerp_(p.detach(), 0.001) for a, p in zip(average, params)]
    ways["weight average"]["one _foreach_lerp_"] = lambda: torch._foreach_lerp_(
        average, [p.detach() for p in params], 0.001)
    sub = Split(split.x[:data_mod.CHUNK_IMAGES * 4], split.y[:data_mod.CHUNK_IMAGES * 4])
    for label, chunk in (("one batch at a time", 1),
                         (f"{data_mod.CHUNK_IMAGES}-image chunks", data_mod.CHUNK_IMAGES)):
        ways["augmentation, per batch"][label] = _epoch_per_batch(sub, cfg, chunk)
    times = {part: {label: [] for label in fns} for part, fns in ways.items()}
    with threads_while(fast.threads), torch.no_grad():
        for r in range(rounds + 1):  # the first round warms up
            for part, fns in ways.items():
                n = 1 if part.startswith("augmentation") else reps
                for label, fn in fns.items():
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    _sync(device)
                    if r:
                        per = len(sub) / cfg.batch_size if n == 1 else n
                        times[part][label].append((time.perf_counter() - t0) / per * 1e6)
    out = {}
    for part, labels in times.items():
        medians = {label: round(statistics.median(v), 1) for label, v in labels.items()}
        first = next(iter(medians.values()))
        out[part] = {"us": medians, "speedup": {label: round(first / v, 2)
                                                for label, v in medians.items()}}
    return out


def _epoch_per_batch(split: Split, cfg: Config, chunk: int):
    """A function running one pass of split.train_batches with CHUNK_IMAGES = chunk."""
    def run() -> None:
        with swapped(data_mod, "CHUNK_IMAGES", chunk):
            for _ in split.train_batches(cfg, torch.Generator(split.y.device).manual_seed(0)):
                pass
    return run
