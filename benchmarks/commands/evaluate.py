"""python -m benchmarks evaluate --checkpoint PATH: re-test saved weights on test or val.

The model is rebuilt from the sidecar's architecture string and the data is loaded with the
sidecar's own Config (val_split, test_subset), so the split is the one the run measured and
the accuracy matches the recorded one exactly on the same kind of device.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from errors import UserError

from ..harness.config import Config
from ..tasks import config_fields, get_task

if TYPE_CHECKING:  # annotations only: --help must not import them
    import torch


def config_of(side: dict, **overrides) -> Config:
    """The run's Config from its sidecar (read_sidecar checked it is a JSON object); fields this
    version no longer has are dropped."""
    saved = side.get("config") or {}
    task = saved.get("task", side.get("task", "mnist"))
    known = config_fields(task)  # an unknown task: a UserError naming the known ones
    try:
        return get_task(task).CONFIG(**{**{k: v for k, v in saved.items() if k in known},
                                        **overrides})
    except UserError as e:
        raise UserError(f"the checkpoint's sidecar holds an {e}") from None


def default_device(side: dict) -> str:
    """The kind of device the run used when this machine has one, else the CPU."""
    import torch

    if side.get("device") == "cuda" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_split(side: dict, split: str, device: torch.device, data_root: str = "",
               overrides: dict | None = None):
    """The run's `split` ('test' or 'val'), loaded per the sidecar's Config (+ overrides)."""
    cfg = config_of(side, device=str(device), data_root=data_root, progress=False,
                    **(overrides or {}))
    if split == "val" and not cfg.val_split:
        raise UserError(f"--split val: the run of {side['model']} held out no validation "
                        "split (val_split 0); use --split test")
    data = get_task(cfg.task).load_data(cfg, device, with_test=split == "test")
    return getattr(data, split), cfg


def evaluate_checkpoint(path: Path | str, split: str = "test", device: str | None = None,
                        data_root: str = "") -> dict:
    """Load a checkpoint, evaluate it on `split`; figures in percent, with the recorded ones."""
    from ..harness.device import resolve_device
    from ..harness.train import evaluate
    from ..tasks.run import load_checkpoint

    model, side = load_checkpoint(path, "cpu")
    dev = resolve_device(device or default_device(side))
    data, cfg = load_split(side, split, dev, data_root)
    outputs = output_width(model)
    if outputs is not None and outputs != data.num_classes:
        raise UserError(f"{path}: the model tells {outputs} classes apart, the {split} data has "
                        f"{data.num_classes}; it was trained on other classes")
    metrics = evaluate(model.to(dev), data, cfg.eval_batch_size)
    recorded = (side.get("recorded") or {}).get(f"{split}_acc")
    return {
        "checkpoint": str(path), "split": split, f"{split}_acc": metrics["acc"],
        **metrics, "images": len(data), "recorded_acc": recorded,
        "matches_recorded": None if recorded is None else metrics["acc"] == recorded,
        "task": side["task"], "model": side["model"], "arch": side["arch"],
        "params": side.get("params"), "seed": side.get("seed"), "epochs": side.get("epochs"),
        "checkpoint_kind": side.get("checkpoint_kind"),
        "epoch": (side.get("recorded") or {}).get("epoch"),
        "recorded_device": side.get("device_name"), "device": str(dev),
        "classes": getattr(data, "classes", None) or [str(i) for i in range(data.num_classes)],
    }


def output_width(model: torch.nn.Module) -> int | None:
    """How many classes the network outputs: its last layer with weights (a linear or 1x1 head,
    a bare classifier conv, or the BatchNorm after the last conv)."""
    import torch

    last = next((m for m in reversed(list(model.modules()))
                 if isinstance(m, torch.nn.Linear | torch.nn.Conv2d | torch.nn.BatchNorm2d)),
                None)
    if isinstance(last, torch.nn.Linear):
        return last.out_features
    if isinstance(last, torch.nn.Conv2d):
        return last.out_channels
    return None if last is None else last.num_features


def print_report(r: dict, console: Console | None = None) -> None:
    """The figures as rich tables: summary, per-class precision/recall, confusion matrix."""
    from models.report import unwrapped

    console = unwrapped(console)
    classes = r["classes"]
    head = Table(title=f"{r['model']} ({r['checkpoint_kind']} weights, epoch {r['epoch']}), "
                       f"{r['split']} split, {r['images']:,} images")
    topk = f"top-{min(3, len(classes))} %"  # evaluate()'s top-3, capped at the class count
    for col in ("accuracy %", topk, "loss", "recorded %", "params", "device"):
        head.add_column(col, justify="right")
    rec = "-" if r["recorded_acc"] is None else f"{r['recorded_acc']:.2f} " + (
        "[green](same)" if r["matches_recorded"] else "[red](differs)")
    head.add_row(f"{r['acc']:.2f}", f"{r['top3']:.2f}", f"{r['loss']:.4f}", rec,
                 f"{r['params']:,}" if r["params"] else "-", r["device"])
    console.print(head)
    console.print(f"architecture {r['arch']}", highlight=False)

    per = Table(title="Per class (%)")
    per.add_column("class", no_wrap=True)
    for name in classes:
        per.add_column(name, justify="right")
    per.add_row("precision", *(f"{v:.1f}" for v in r["precision"]))
    per.add_row("recall", *(f"{v:.1f}" for v in r["recall"]))
    console.print(per)

    cm = Table(title="Confusion matrix (rows: true class, columns: predicted)")
    cm.add_column("true", no_wrap=True)
    for name in classes:
        cm.add_column(name, justify="right")
    for i, row in enumerate(r["confusion"]):
        cm.add_row(classes[i], *(f"[bold]{v}[/bold]" if i == j else (str(v) if v else "[dim]0")
                                 for j, v in enumerate(row)))
    console.print(cm)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-test a saved checkpoint on the test or val split",
                       description="Rebuild a model from a checkpoint's sidecar, load its "
                                   "weights and evaluate it.")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the .safetensors file (its .json sidecar must sit beside it)")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--device", default=None,
                   help="default: the kind of device the run used when present, else cpu")
    p.add_argument("--data-root", default="",
                   help="data folder (default: $MNIST_ROOT, else ./data)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.set_defaults(func=main)


def check_out(path: Path, flag: str, example: str) -> None:
    """An output file option must name a file that can be written: checked before any work
    (`example`: a file name to suggest when it names a folder)."""
    if path.is_dir():
        raise UserError(f"invalid option: {flag} {path} is a folder; give a file name, e.g. "
                        f"{path / example}")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"invalid option: {flag} {path}: cannot write there ({parent} is not "
                        "a writable folder)")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"invalid option: {flag} {path} is not writable")


def main(args: argparse.Namespace) -> int:
    if args.json:
        check_out(args.json, "--json", "evaluation.json")
    r = evaluate_checkpoint(args.checkpoint, args.split, args.device, args.data_root)
    print_report(r)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0
