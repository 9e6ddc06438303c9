"""One frozen Config flows from the command line through train() into the result row."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, fields

from models import UserError

SCHEDULES = ("onecycle", "cosine", "constant")


@dataclass(frozen=True)
class Config:
    task: str = "mnist"
    model: str = "plain_7k"  # zoo member name or architecture string
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.05  # peak learning rate (SGD, per batch of batch_size)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup: float = 0.2  # fraction of training spent warming up (onecycle)
    label_smoothing: float = 0.0
    rotate: float = 7.0  # augmentation: max rotation, degrees
    translate: float = 0.08  # augmentation: max shift, fraction of the image side
    val_split: int = 0  # images held out of the training set for validation (10000 in search)
    train_subset: int = 0  # use only the first N training images (0: all); for smoke runs
    test_subset: int = 0  # evaluate on the first N test images (0: all); for smoke runs
    eval_batch_size: int = 2000  # evaluation needs no gradients, so bigger batches are free
    seed: int = 1
    device: str = "auto"  # auto picks cuda, then cpu
    threads: int = 0  # CPU threads for torch (0: torch's default)
    data_root: str = ""  # MNIST root (holding MNIST/raw); else $MNIST_ROOT, else ./data
    target: float = 99.4  # accuracy (%) whose first epoch is recorded
    progress: bool = True  # rich progress bar

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be non-negative"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup < 1, "warmup must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 <= self.rotate <= 180, "rotate must be in [0, 180] degrees"),
            (0 <= self.translate < 1, "translate must be in [0, 1)"),
            (self.val_split >= 0 and self.train_subset >= 0 and self.test_subset >= 0,
             "val_split, train_subset and test_subset must be non-negative"),
            (self.threads >= 0, "threads must be non-negative"),
            (self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
             "device must be auto, cpu, cuda, cuda:N or mps"),
        ]
        for ok, why in checks:
            if not ok:
                raise UserError(f"invalid option: {why} (got {self._got(why)})")

    def _got(self, why: str) -> str:
        name = why.split()[0].rstrip(",")
        return repr(getattr(self, name, "?"))


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_args(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One --flag per Config field (underscores become dashes); defaults stay in Config."""
    hints = typing.get_type_hints(Config)
    for f in fields(Config):
        if f.name in skip:
            continue
        kind = hints[f.name]
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                            type=_parse_bool if kind is bool else kind,
                            metavar=kind.__name__.upper(), help=f"default: {f.default!r}")


def config_from_args(args: argparse.Namespace, **extra) -> Config:
    """Config from parsed flags: only the flags the user gave replace the defaults."""
    given = {f.name: getattr(args, f.name) for f in fields(Config)
             if getattr(args, f.name, None) is not None}
    return dataclasses.replace(Config(), **{**given, **extra})
