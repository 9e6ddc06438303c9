"""One frozen Config flows from the command line through train() into the result row."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import math
import os
import re
import typing
from dataclasses import dataclass, fields

from models import UserError, recipe_of
from models.registry import RECIPES

SCHEDULES = ("onecycle", "cosine", "constant", "step")
OPTIMIZERS = ("sgd", "adam")
ANNEALS = ("linear", "cos")
SCHEDULE_STEPS = ("batch", "epoch")
INITS = ("default", "xavier", "kaiming")
SWITCH = ("auto", "on", "off")
AMP = ("auto", "bf16", "off")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # what resolve_device takes
INT_LIMIT = 2**31 - 1  # torch and the OS take C ints: a bigger count or seed overflows there
PATH_FIELDS = ("data_root", "weights")
# Which ResNet18 layers the image task trains: all, from layerN on, or only the new head.
MODES = ("finetune", "layer2", "layer3", "layer4", "feature")

@dataclass(frozen=True)
class Config:
    task: str = "mnist"  # which task trains (benchmarks/tasks): mnist | hymenoptera
    model: str = "plain_7k"  # zoo member name or architecture string
    epochs: int = 20  # passes over the training images
    batch_size: int = 128  # training images per optimizer step
    lr: float = 0.05  # peak learning rate (SGD, per batch of batch_size)
    momentum: float = 0.9  # SGD momentum (cycle_momentum replaces it with its own cycle)
    nesterov: bool = True  # Nesterov momentum (SGD, when momentum > 0)
    weight_decay: float = 1e-4  # L2 penalty, applied by the optimizer
    schedule: str = "onecycle"  # onecycle | cosine | constant | step (x gamma every step_size)
    warmup: float = 0.2  # fraction of training spent warming up (onecycle)
    optimizer: str = "sgd"  # sgd | adam (torch's Adam: betas 0.9, 0.999; no momentum, nesterov)
    step_size: int = 7  # step schedule: epochs between learning-rate drops
    gamma: float = 0.1  # step schedule: factor applied to the learning rate at each drop
    div_factor: float = 20.0  # onecycle: the starting learning rate is lr / div_factor
    final_div_factor: float = 200.0  # onecycle: the last one is starting lr / final_div_factor
    anneal: str = "linear"  # onecycle: linear | cos, the shape of the rise and of the fall
    cycle_momentum: bool = False  # onecycle: momentum 0.95 -> 0.85 -> 0.95, as torch's default
    schedule_step: str = "batch"  # batch | epoch: the schedule moves every batch, or per epoch
    init: str = "default"  # default (torch's) | xavier (uniform) | kaiming (He normal); bias 0
    label_smoothing: float = 0.0  # cross-entropy's: the target keeps 1 - this much mass
    rotate: float = 7.0  # augmentation: max rotation, degrees
    translate: float = 0.08  # augmentation: max shift, fraction of the image side
    scale: float = 0.0  # augmentation: max zoom, fraction (0.1: 0.9x to 1.1x); 0: off
    shear: float = 0.0  # augmentation: max horizontal shear, degrees; 0: off
    erase: float = 0.0  # augmentation: chance an image gets a blank square (cutout); 0: off
    augment_p: float = 1.0  # augmentation: chance an image gets the affine map, and the jitter
    brightness: float = 0.0  # augmentation: max brightness shift, fraction of white; 0: off
    contrast: float = 0.0  # augmentation: max contrast change (0.2: 0.8x to 1.2x); 0: off
    ema: float = 0.0  # decay per step of a weight average, evaluated and saved (0: raw weights)
    val_split: int = 0  # images held out of the training set for validation (10000 in search)
    train_subset: int = 0  # use only the first N training images (0: all); for smoke runs
    test_subset: int = 0  # evaluate on the first N test images (0: all); for smoke runs
    eval_batch_size: int = 2000  # evaluation needs no gradients, so bigger batches are free
    seed: int = 1  # initial weights, shuffling, augmentation and dropout draws
    device: str = "auto"  # auto picks cuda, then cpu
    threads: int = 0  # CPU threads in training (0: every core; 1 each with --jobs; fast.py)
    # Speed (issue 5): "auto" is what measured fastest on the device type (benchmarks speed).
    channels_last: str = "auto"  # auto | on | off: NHWC activations (auto: on, CPU and CUDA)
    compile: str = "auto"  # auto | on | off: torch.compile the model (auto: off, see fast.py)
    cuda_graphs: str = "auto"  # auto | on | off: each training step a CUDA graph (auto: on)
    amp: str = "auto"  # auto | bf16 | off: bf16 autocast when training (auto: native bf16)
    fast_dropout: str = "auto"  # auto | on | off: dropout masks from geometric gaps (auto: CPU)
    fast_batchnorm: str = "auto"  # auto | on | off: wide-row batch norm, narrow NHWC (auto: CPU)
    data_root: str = ""  # MNIST root (holding MNIST/raw); else $MNIST_ROOT, else ./data
    target: float = 99.4  # accuracy (%) whose first epoch is recorded
    progress: bool = True  # rich progress bar
    # The image task (ants/bees) only; MNIST ignores these.
    mode: str = "finetune"  # layers trained: finetune (all) | layerN (on) | feature (head)
    weights: str = "imagenet"  # imagenet | none | PATH to a local state-dict file
    image_size: int = 224  # training crop side (evaluation resizes to 8/7 of it, then crops)
    workers: int = 2  # DataLoader worker processes decoding images

    def __post_init__(self):
        self._check_values()
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be non-negative"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup < 1, "warmup must be in [0, 1)"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.step_size >= 1, "step_size must be at least 1 (epochs)"),
            (0 < self.gamma <= 1, "gamma must be in (0, 1]"),
            (self.div_factor >= 1, "div_factor must be at least 1"),
            (self.final_div_factor >= 1, "final_div_factor must be at least 1"),
            (self.anneal in ANNEALS, f"anneal must be one of {', '.join(ANNEALS)}"),
            (self.schedule_step in SCHEDULE_STEPS,
             f"schedule_step must be one of {', '.join(SCHEDULE_STEPS)}"),
            (self.init in INITS, f"init must be one of {', '.join(INITS)}"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 <= self.rotate <= 180, "rotate must be in [0, 180] degrees"),
            (0 <= self.translate < 1, "translate must be in [0, 1)"),
            (0 <= self.scale < 1, "scale must be in [0, 1)"),
            (0 <= self.shear <= 45, "shear must be in [0, 45] degrees"),
            (0 <= self.erase <= 1, "erase must be a probability in [0, 1]"),
            (0 <= self.augment_p <= 1, "augment_p must be a probability in [0, 1]"),
            (0 <= self.brightness <= 1, "brightness must be in [0, 1] (fraction of white)"),
            (0 <= self.contrast < 1, "contrast must be in [0, 1)"),
            (0 <= self.ema < 1, "ema must be in [0, 1) (decay per step; 0: off)"),
            (self.val_split >= 0, "val_split must be non-negative"),
            (self.train_subset >= 0, "train_subset must be non-negative"),
            (self.test_subset >= 0, "test_subset must be non-negative"),
            (0 <= self.threads <= 1024, "threads must be in [0, 1024] (0: every core)"),
            (self.channels_last in SWITCH, "channels_last must be auto, on or off"),
            (self.compile in SWITCH, "compile must be auto, on or off"),
            (self.cuda_graphs in SWITCH, "cuda_graphs must be auto, on or off"),
            (self.fast_dropout in SWITCH, "fast_dropout must be auto, on or off"),
            (self.fast_batchnorm in SWITCH, "fast_batchnorm must be auto, on or off"),
            (self.amp in AMP, "amp must be auto, bf16 or off"),
            (DEVICE.fullmatch(self.device) is not None,
             "device must be auto, cpu, cuda, cuda:N or mps"),
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}"),
            (bool(self.weights), "weights must be imagenet, none or a file path"),
            (self.image_size >= 32, "image_size must be at least 32 (ResNet18 downsamples 32x)"),
            (0 <= self.workers <= 256, "workers must be in [0, 256] (processes)"),
            (self.seed >= 0, "seed must be non-negative"),
            (0 <= self.target <= 100, "target must be an accuracy in [0, 100] (%)"),
        ]
        for ok, why in checks:
            if not ok:
                raise UserError(f"invalid option: {why} (got {self._got(why)})")

    def _check_values(self) -> None:
        """What every field of a kind must be, before the checks of each field: numbers finite
        (NaN and infinities fail no comparison) and within what torch takes, paths that can be
        paths. Fields added later are covered without a line here."""
        kinds = _field_types()
        for f in fields(self):
            value, why = getattr(self, f.name), ""
            kind = kinds[f.name]
            if not _is_kind(value, kind):  # a sidecar or a caller may hand over anything
                raise UserError(f"invalid option: {f.name} must be {kind.__name__} "
                                f"(got {type(value).__name__} {_shown(value)})")
            if isinstance(value, bool):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                why = "must be a finite number"
            elif isinstance(value, int) and abs(value) > INT_LIMIT:
                why = f"must be at most {INT_LIMIT:,} in size"
            elif isinstance(value, str) and "\0" in value:
                why = "must not contain a NUL character"
            elif isinstance(value, str) and f.name in PATH_FIELDS:
                why = _path_problem(value)
            if why:
                raise UserError(f"invalid option: {f.name} {why} (got {_shown(value)})")

    def _got(self, why: str) -> str:
        """The value of the one field a check's sentence starts with."""
        return repr(getattr(self, why.split()[0]))


@functools.cache
def _field_types() -> dict[str, type]:
    return typing.get_type_hints(Config)


def _is_kind(value, kind: type) -> bool:
    """Whether `value` can stand in a field of type `kind` (an int where a float belongs)."""
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _shown(value) -> str:
    return repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."


def _path_problem(text: str) -> str:
    """Why `text` can be no file path on this system ('' when it can be one)."""
    try:
        raw = os.fsencode(text)
    except UnicodeError:
        return "is not a valid file path (characters the file system cannot encode)"
    if len(raw) >= 4096 or any(len(part) > 255 for part in raw.split(b"/")):
        return "is too long for a file path"
    return ""


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def task_defaults(task: str) -> dict:
    """The task's Config values (benchmarks/tasks/NAME.py's DEFAULTS), under the user's flags.
    Tasks build on the harness, so the registry is read at call time, not at import."""
    from ..tasks import get_task
    return dict(get_task(task).DEFAULTS)


def add_config_args(parser: argparse.ArgumentParser, skip: tuple[str, ...] = (),
                    task: str = "mnist") -> None:
    """One --flag per Config field (underscores become dashes); defaults stay in Config."""
    hints = _field_types()
    defaults = task_defaults(task)
    for f in fields(Config):
        if f.name in skip:
            continue
        kind = hints[f.name]
        what = field_help().get(f.name, "").replace("%", "%%")  # argparse formats help with %
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                            type=_parse_bool if kind is bool else kind,
                            metavar=kind.__name__.upper(),
                            help=f"{what + '; ' if what else ''}"
                                 f"default: {defaults.get(f.name, f.default)!r}")


FIELD_COMMENT = re.compile(r"^    (\w+): [^#]+#\s*(.+)$")


@functools.cache  # parsed once per process, not once per flag of every subcommand
def field_help() -> dict[str, str]:
    """Each Config field's trailing comment above, as its flag's help: one place says it."""
    try:
        source = inspect.getsource(Config).partition("def __post_init__")[0]
    except (OSError, TypeError):  # no source shipped (a frozen build): defaults only
        return {}
    return {m[1]: m[2].strip() for m in map(FIELD_COMMENT.match, source.splitlines()) if m}


def task_config(task: str = "mnist", **values) -> Config:
    """Config for `task`: its DEFAULTS, then `values` on top."""
    return dataclasses.replace(Config(), task=task, **{**task_defaults(task), **values})


def config_from_args(args: argparse.Namespace, **extra) -> Config:
    """Config from parsed flags: only the flags the user gave replace the (task's) defaults and,
    for a zoo member promoted from a search, the training recipe it was confirmed with."""
    given = {f.name: getattr(args, f.name) for f in fields(Config)
             if getattr(args, f.name, None) is not None}
    values = {**given, **extra}
    recipe = getattr(args, "recipe", None)  # --recipe MEMBER, where the command has it
    values = {**member_recipe(values.get("model", "") if recipe is None else recipe,
                              given=recipe is not None), **values}
    return task_config(values.pop("task", "mnist"), **values)


def member_recipe(name: str, given: bool = False) -> dict:
    """A promoted member's recipe ({} for other models); `given` (by --recipe): a UserError
    naming the members that have one, rather than a silent default recipe."""
    recipe = recipe_of(name)
    if given and not recipe:
        raise UserError(f"invalid option: --recipe {name!r} is no zoo member with a recipe; "
                        f"members with one: {', '.join(sorted(RECIPES))}")
    return recipe
