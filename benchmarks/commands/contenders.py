"""What `benchmarks speed` times: the classic PyTorch loop (the baseline), the harness's
train(), the harness with one fast-path choice switched off (ablations), and K trainings side by
side; each a Contender whose run(steps) returns images per second. Also the device's matmul peak.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from models import create_model

from ..harness.config import Config
from ..harness.data import MEAN, STD, Data, Split
from ..harness.fast import fast_settings, threads_while
from ..harness.runs import for_jobs, side_by_side
from ..harness.train import train

LOG_INTERVAL = 10  # the example's --log-interval: loss.item() every 10 batches
# Ablations: the harness with one technique switched away from its default.
ABLATIONS = ("channels_last", "dropout", "batchnorm", "threads", "amp", "compile", "graphs")


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
# The baseline: pytorch/examples mnist's loop, faithfully

def classic_loader(root: Path, batch_size: int, device: torch.device):
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((MEAN,), (STD,))])
    dataset = datasets.MNIST(str(root), train=True, transform=transform)
    kwargs = {"batch_size": batch_size, "shuffle": True}
    if device.type == "cuda":  # the example's accelerator kwargs
        kwargs.update(num_workers=1, persistent_workers=True, pin_memory=True)
    return torch.utils.data.DataLoader(dataset, **kwargs)


def classic_steps(model, loader, cfg: Config, device: torch.device, steps: int) -> float:
    """`steps` batches of the example's train(); returns seconds (synced at the end)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0,
                                weight_decay=cfg.weight_decay)
    model.train()
    t0 = time.perf_counter()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.cross_entropy(output, target)  # the example's log_softmax + nll_loss
        loss.backward()
        optimizer.step()
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
    """One thing timed each round: a name, and run(steps) -> images per second."""
    name: str
    run: object
    warmup_seconds: float = 0.0
    runs: list = dataclasses.field(default_factory=list)

    def median(self) -> float:
        return round(statistics.median(self.runs), 1)


def baseline(cfg, device, loader, steps: int, threads: int | None = None):
    def run(n: int) -> float:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model).to(device)  # the same initial weights as the harness
        with threads_while(threads):
            return n * cfg.batch_size / classic_steps(model, loader, cfg, device, n)
    return run


def _first(split: Split, n: int, cfg) -> Data:
    return Data(Split(split.x[: n * cfg.batch_size], split.y[: n * cfg.batch_size]), None, None)


def harness(cfg, split: Split):
    def run(n: int) -> float:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model)
        data = _first(split, n, cfg)
        result = train(model, cfg, data)
        return len(data.train) / result["train_seconds"]
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

    def one_by_one(n: int) -> float:
        data = _first(split, n, cfg)
        seconds = sum(train(m, c, data)["train_seconds"] for m, c in zip(models(), cfgs))
        return k * len(data.train) / seconds

    def in_threads(n: int) -> float:  # wall time, set-up included: a little against it
        data = _first(split, n, cfg)
        pairs = list(zip(models(), [for_jobs(c, k) for c in cfgs]))
        t0 = time.perf_counter()
        side_by_side(k, lambda pair, stop: train(*pair, data), pairs)
        return k * len(data.train) / (time.perf_counter() - t0)

    return [Contender("sequential", one_by_one), Contender(f"jobs k={k}", in_threads)]


def ablations(names, cfg: Config, device: torch.device, split: Split) -> list[Contender]:
    """The harness with one fast-path choice switched from its default: a Config override each."""
    fast, default_threads = fast_settings(cfg, device), torch.get_num_threads()
    flip = lambda on: "off" if on else "on"  # noqa: E731
    out = []
    for name in names:
        if name == "channels_last":
            out.append((f"channels_last {flip(fast.channels_last)}",
                        {"channels_last": flip(fast.channels_last)}))
        elif name == "dropout" and fast.geometric_dropout:
            out.append(("geometric dropout off", {"fast_dropout": "off"}))
        elif name == "batchnorm" and fast.fast_batchnorm:
            out.append(("wide-row batch norm off", {"fast_batchnorm": "off"}))
        elif name == "threads" and (fast.threads or default_threads) > 1:
            out.append(("threads 1", {"threads": 1}))
        elif name == "threads" and fast.threads and fast.threads != default_threads:
            out.append((f"threads {default_threads}", {"threads": default_threads}))
        elif name == "amp":
            out.append((f"bf16 autocast {flip(fast.amp)}", {"amp": "off" if fast.amp else "bf16"}))
        elif name == "compile":
            out.append((f"compile {flip(fast.compile)}", {"compile": flip(fast.compile)}))
        elif name == "graphs" and device.type == "cuda":  # each train() captures anew
            out.append((f"cuda graphs {flip(fast.graphs)}", {"cuda_graphs": flip(fast.graphs)}))
    return [Contender(label, harness(dataclasses.replace(cfg, **over), split))
            for label, over in out]
