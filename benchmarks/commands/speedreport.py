"""What `python -m benchmarks speed` reports of a workload: the record written to
results/speed.json (build_report) and the table printed (print_report)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # annotations only: --help must not import them
    import torch

TRIAL_EPOCHS, TRIAL_IMAGES = 20, 50_000  # a search trial: 20 epochs, 10k of 60k held for val


def trials_per_hour(images_per_second: float) -> float:
    return round(3600 * images_per_second / (TRIAL_EPOCHS * TRIAL_IMAGES), 1)


def build_report(cfg, device, steps, rounds, contenders, load, fast, default_threads,
            parallel: int = 1) -> dict:
    import torch

    from models import create_model
    from models.report import profile

    from ..harness import results as results_mod
    from ..harness.device import cpu_model
    from .contenders import Contender, peak_gflops, precision

    stats = profile(create_model(cfg.model))
    flops_per_image = stats["macs"] * 2 * 3  # 2 FLOPs per MAC; backward ~ 2x forward
    by = {c.name: c for c in contenders}
    base, fastest = by["baseline"].median(), by["harness"].median()
    # The peak in the harness's own precision and thread count (what it could reach), and
    # the fp32 peak with every thread (the device's usual figure).
    peak_h = peak_gflops(device, fast.amp or torch.float32, fast.threads)
    peak = peak_gflops(device)

    def entry(c: Contender) -> dict:
        return {"images_per_second": c.median(), "runs": [round(v, 1) for v in c.runs],
                "cpu_images_per_second": c.cpu_median(),
                "cpu_runs": [round(v, 1) for v in c.cpu_runs],
                "precision": c.precision, "warmup_seconds": c.warmup_seconds}
    report = {
        "ratio": round(fastest / base, 2),
        "cpu_ratio": round(by["harness"].cpu_median() / by["baseline"].cpu_median(), 2),
        "model": cfg.model, "arch": create_model(cfg.model).arch, "params": stats["params"],
        "macs": stats["macs"], "batch_size": cfg.batch_size, "steps": steps, "rounds": rounds,
        "device": device.type, "cpu": cpu_model(), "device_name": _named(device, fast),
        "precision": {"baseline": "fp32", "harness": precision(cfg, device)},
        "threads": fast.threads or default_threads,
        "harness_settings": {"channels_last": fast.channels_last,
                             "amp": str(fast.amp).removeprefix("torch.") if fast.amp else "off",
                             "compile": fast.compile, "cuda_graphs": fast.graphs,
                             "geometric_dropout": fast.geometric_dropout,
                             "fast_batchnorm": fast.fast_batchnorm,
                             "keep_heap": fast.keep_heap,
                             "augment": {"rotate": cfg.rotate, "translate": cfg.translate,
                                         "scale": cfg.scale, "shear": cfg.shear,
                                         "erase": cfg.erase},
                             "ema": cfg.ema},
        "baseline": entry(by["baseline"]),
        "harness": {**entry(by["harness"]),
                    "gflops": round(fastest * flops_per_image / 1e9, 2)},
        "baseline_gflops": round(base * flops_per_image / 1e9, 2),
        "peak": peak_h, "peak_fp32_all_threads": peak,
        "harness_fraction_of_peak": round(fastest * flops_per_image / 1e9 / peak_h["gflops"],
                                          4),
        "others": {c.name: {**entry(c), "vs_harness": round(c.median() / fastest, 2)}
                   for c in contenders if c.name not in ("baseline", "harness")},
        "trials_per_hour": {"baseline": trials_per_hour(base),
                            "harness": trials_per_hour(fastest)},
        "loadavg": load, "torch_version": torch.__version__,
        "git_commit": results_mod.git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if "sequential" in by:  # --parallel K: trials per hour, one at a time vs K at once
        seq = by["sequential"].median()
        report["parallel"] = {"k": parallel, "sequential_images_per_second": seq,
                              "trials_per_hour_k1": trials_per_hour(seq)}
        for c in contenders:
            if c.name.startswith("jobs"):
                report["parallel"][c.name.split()[0]] = {
                    "images_per_second": c.median(),
                    "trials_per_hour": trials_per_hour(c.median()),
                    "speedup": round(c.median() / seq, 2),
                    "vs_baseline": round(c.median() / base, 2)}
    return report


def _named(device: torch.device, fast) -> str:
    """device_name with the thread count the harness trained with (--threads)."""
    from ..harness.device import device_name
    from ..harness.fast import threads_while

    with threads_while(fast.threads):
        return device_name(device, fast)


def print_report(r: dict, console: Console) -> None:
    table = Table(title=f"{r['model']} ({r['params']:,} params), batch {r['batch_size']}, "
                        f"{r['steps']} steps x {r['rounds']} rounds on {r['device_name']}")
    for col in ("", "precision", "img/s (median)", "vs baseline", "per CPU s", "warm-up s",
                "trials/h"):
        table.add_column(col, justify="left" if col in ("", "precision") else "right")
    base = r["baseline"]["images_per_second"]
    cpu_base = r["baseline"]["cpu_images_per_second"]
    rows = [("baseline", r["baseline"]), ("harness", r["harness"]), *r["others"].items()]
    for name, e in rows:
        ips = e["images_per_second"]
        table.add_row(name, e["precision"], f"{ips:,.0f}", f"{ips / base:.2f}x",
                      f"{e['cpu_images_per_second'] / cpu_base:.2f}x",
                      f"{e['warmup_seconds']:.1f}",
                      f"{trials_per_hour(ips):.1f}" if math.isfinite(ips) else "-")
    console.print(table)
    console.print(f"ratio harness/baseline: {r['ratio']:.2f}x; harness "
                  f"{r['harness']['gflops']:.2f} GFLOP/s = "
                  f"{100 * r['harness_fraction_of_peak']:.1f}% of the "
                  f"{r['peak']['gflops']:,.0f} GFLOP/s matmul peak "
                  f"({r['peak']['matmul']}, "
                  f"{r['peak']['threads']} thread(s)); load "
                  f"{r['loadavg']['start'][0]:.1f} -> {r['loadavg']['end'][0]:.1f}",
                  highlight=False)
    for part, e in r.get("parts", {}).items():
        console.print(f"  {part}: " + ", ".join(
            f"{way} {us:,.0f} us ({e['speedup'][way]:.2f}x)" for way, us in e["us"].items()),
            highlight=False)
    p = r.get("parallel", {})
    if "jobs" in p:  # a full trial: 20 epochs of 50,000 images (TRIAL_EPOCHS, TRIAL_IMAGES)
        console.print(f"full trials per minute: K=1 {p['trials_per_hour_k1'] / 60:.2f}, "
                      f"K={p['k']} side by side (--jobs) {p['jobs']['trials_per_hour'] / 60:.2f}"
                      f" ({p['jobs']['speedup']:.2f}x)")
