"""The generated tables of docs/performance.md, from results/speed.json and
results/speed-profile.json (`python -m benchmarks speed`, with and without --profile)."""

from __future__ import annotations

import json
from pathlib import Path

from .markdown import md


def speed_table(results: Path, _: str = "") -> str:
    """Each workload of results/speed.json (the headline first): every contender against the
    classic loop, in wall time and in CPU time, with the CPU and precision each ran in."""
    r = json.loads((results / "speed.json").read_text())
    out = []
    for w in r.get("workloads", [r]):
        base = w["baseline"]
        entries = [("classic PyTorch loop (baseline)", base), ("harness", w["harness"]),
                   *w["others"].items()]
        rows = [[name, e.get("precision", ""), f"{e['images_per_second']:,.0f}",
                 f"{e['images_per_second'] / base['images_per_second']:.2f}x",
                 f"{e['cpu_images_per_second'] / base['cpu_images_per_second']:.2f}x"
                 if "cpu_images_per_second" in e else "-",
                 " ".join(f"{v:,.0f}" for v in e["runs"])] for name, e in entries]
        recipe = w["harness_settings"]
        augment = ", ".join(f"{k} {v}" for k, v in recipe["augment"].items() if v)
        out.append(f"**{w['model']}** ({w['params']:,} params), batch {w['batch_size']}"
                   f"{', weight average ' + str(recipe['ema']) if recipe.get('ema') else ''}, "
                   f"augmentation {augment}: {w['steps']} steps x {w['rounds']} rounds, "
                   f"{w['device_name']}\n\n"
                   + md(["contender", "precision", "img/s (median)", "vs baseline",
                          "vs baseline, CPU time", "each round"], rows, "llrrrl"))
        if w.get("parts"):  # the step's parts timed alone, each way (contenders.part_timings)
            rows = [[part, way, f"{us:,.1f}", f"{e['speedup'][way]:.2f}x"]
                    for part, e in w["parts"].items() for way, us in e["us"].items()]
            out.append(f"{w['model']}'s step, part by part (medians, one part at a time):\n\n"
                       + md(["part", "done as", "us per step", "speed-up"], rows, "llrr"))
    return "\n".join(out) + (f"\ntorch {r['torch_version']}, commit {r['git_commit']}, "
                             f"{r['timestamp']}; load average {r['loadavg']['start'][0]:.1f} "
                             f"at the start.\n")


def speed_profile_table(results: Path, _: str = "") -> str:
    """results/speed-profile.json (benchmarks speed --profile): one step's parts."""
    r = json.loads((results / "speed-profile.json").read_text())
    rows = [[name, f"{us / 1e3:.3f}", f"{100 * r['shares'][name]:.1f}%"]
            for name, us in r["parts_us"].items()]
    return md(["part of the step", "ms per step", "share"], rows, "lrr") + (
        f"\n{r['model']}, batch {r['batch_size']}, {r['device_name']}: "
        f"{r['step_us'] / 1e3:.2f} ms per step under the profiler, "
        f"{r['step_us_unprofiled'] / 1e3:.2f} ms without it ({r['steps']} steps); torch "
        f"{r['torch_version']}, commit {r['git_commit']}, {r['timestamp']}.\n")
