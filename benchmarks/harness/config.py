"""One frozen Config flows from the command line through train() into the result row.

Each field says what it is in its metadata, and every list about fields is read from there
(`names`): its flag's help and choices, its check, its concern (the recipe a leaderboard row's
key holds, the scope of a run, or how and where it runs), what a task must use for the field to
mean anything, and whether a search takes it from the command line, pins it in a study, or the
speed bench may set it. A task with settings of its own adds them in a subclass (tasks/).

Nothing here imports torch: `--help` builds its flags from these fields without loading it.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import typing
from dataclasses import MISSING, Field, dataclass, field, fields

from errors import UserError

RECIPE, SCOPE, RUN = "recipe", "scope", "run"  # concerns: what a field is part of
# What a task must use for a field to mean anything (a task lists them in its USES): the
# harness's digit augmentation, the zoo's networks, a validation split held out of training.
AUGMENT, ZOO, HOLDOUT = "augment", "zoo", "holdout"
SWITCH = ("auto", "on", "off")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # what resolve_device takes
INT_LIMIT = 2**31 - 1  # torch and the OS take C ints: a bigger count or seed overflows there


def setting(default, help: str, concern: str = RECIPE, *, choices: tuple = (), check=None,
            must: str = "", needs: str = "", search: bool = False, pinned: bool = False,
            bench: bool = False, path: bool = False) -> Field:
    """A Config field and what it is: `check(value)` true or "must be ..." (`must`) is the
    refusal; `choices` a closed set; `needs` what a task must use (AUGMENT, ZOO, HOLDOUT) for it
    to mean anything; `search` a search takes it from its command line (the space samples the
    other recipe fields), `pinned` a study keeps it for good; `bench` the speed bench sets it;
    `path` a file path."""
    if choices:
        check, must = (lambda v: v in choices), f"must be one of {', '.join(map(str, choices))}"
    return field(default=default, metadata=dict(
        help=help, concern=concern, choices=choices, check=check, must=must, needs=needs,
        search=search, pinned=pinned, bench=bench, path=path))


def _in(lo, hi, closed: bool = True):
    return (lambda v: lo <= v <= hi) if closed else (lambda v: lo <= v < hi)


def _at_least(lo):
    return lambda v: v >= lo


@dataclass(frozen=True)
class Config:
    task: str = setting("mnist", "which task trains (benchmarks/tasks)", SCOPE)
    model: str = setting("plain_7k", "zoo member name or architecture string", SCOPE,
                         needs=ZOO)
    epochs: int = setting(20, "passes over the training images", SCOPE, check=_at_least(1),
                          must="must be at least 1", search=True, pinned=True)
    batch_size: int = setting(128, "training images per optimizer step", check=_at_least(1),
                              must="must be at least 1", bench=True)
    lr: float = setting(0.05, "peak learning rate (SGD, per batch of batch_size)",
                        check=lambda v: v > 0, must="must be positive", bench=True)
    momentum: float = setting(0.9, "SGD momentum (cycle_momentum replaces it with its own cycle)",
                              check=_in(0, 1, False), must="must be in [0, 1)", bench=True)
    nesterov: bool = setting(True, "Nesterov momentum (SGD, when momentum > 0)")
    weight_decay: float = setting(1e-4, "L2 penalty, applied by the optimizer",
                                  check=_at_least(0), must="must be non-negative")
    schedule: str = setting("onecycle", "learning-rate schedule (step: x gamma every step_size)",
                            choices=("onecycle", "cosine", "constant", "step"))
    warmup: float = setting(0.2, "fraction of training spent warming up (onecycle)",
                            check=_in(0, 1, False), must="must be in [0, 1)")
    optimizer: str = setting("sgd", "adam is torch's Adam: betas 0.9, 0.999; no momentum, "
                             "nesterov", choices=("sgd", "adam"))
    step_size: int = setting(7, "step schedule: epochs between learning-rate drops",
                             check=_at_least(1), must="must be at least 1 (epochs)")
    gamma: float = setting(0.1, "step schedule: factor applied to the learning rate at each "
                           "drop", check=lambda v: 0 < v <= 1, must="must be in (0, 1]")
    div_factor: float = setting(20.0, "onecycle: the starting learning rate is lr / div_factor",
                                check=_at_least(1), must="must be at least 1")
    final_div_factor: float = setting(200.0, "onecycle: the last one is starting lr / "
                                      "final_div_factor", check=_at_least(1),
                                      must="must be at least 1")
    anneal: str = setting("linear", "onecycle: the shape of the rise and of the fall",
                          choices=("linear", "cos"))
    cycle_momentum: bool = setting(False, "onecycle: momentum 0.95 -> 0.85 -> 0.95, as torch's "
                                   "default")
    schedule_step: str = setting("batch", "the schedule moves every batch, or per epoch",
                                 choices=("batch", "epoch"))
    init: str = setting("default", "initial weights: torch's, xavier (uniform) or kaiming (He "
                        "normal); bias 0", choices=("default", "xavier", "kaiming"), needs=ZOO)
    label_smoothing: float = setting(0.0, "cross-entropy's: the target keeps 1 - this much mass",
                                     check=_in(0, 1, False), must="must be in [0, 1)")
    rotate: float = setting(7.0, "augmentation: max rotation, degrees", check=_in(0, 180),
                            must="must be in [0, 180] degrees", needs=AUGMENT, bench=True)
    translate: float = setting(0.08, "augmentation: max shift, fraction of the image side",
                               check=_in(0, 1, False), must="must be in [0, 1)", needs=AUGMENT,
                               bench=True)
    scale: float = setting(0.0, "augmentation: max zoom, fraction (0.1: 0.9x to 1.1x); 0: off",
                           check=_in(0, 1, False), must="must be in [0, 1)", needs=AUGMENT)
    shear: float = setting(0.0, "augmentation: max horizontal shear, degrees; 0: off",
                           check=_in(0, 45), must="must be in [0, 45] degrees", needs=AUGMENT)
    erase: float = setting(0.0, "augmentation: chance an image gets a blank square (cutout); "
                           "0: off", check=_in(0, 1), must="must be a probability in [0, 1]",
                           needs=AUGMENT)
    augment_p: float = setting(1.0, "augmentation: chance an image gets the affine map, and "
                               "the jitter", check=_in(0, 1),
                               must="must be a probability in [0, 1]", needs=AUGMENT)
    brightness: float = setting(0.0, "augmentation: max brightness shift, fraction of white; "
                                "0: off", check=_in(0, 1),
                                must="must be in [0, 1] (fraction of white)", needs=AUGMENT)
    contrast: float = setting(0.0, "augmentation: max contrast change (0.2: 0.8x to 1.2x); "
                              "0: off", check=_in(0, 1, False), must="must be in [0, 1)",
                              needs=AUGMENT)
    ema: float = setting(0.0, "decay per step of a weight average, evaluated and saved (0: raw "
                         "weights)", check=_in(0, 1, False),
                         must="must be in [0, 1) (decay per step; 0: off)")
    train_subset: int = setting(0, "use only the first N training images (0: all); for smoke "
                                "runs", SCOPE, check=_at_least(0), must="must be non-negative",
                                search=True, pinned=True)
    val_split: int = setting(0, "images held out of the training set for validation (10000 in "
                             "search)", SCOPE, check=_at_least(0), must="must be non-negative",
                             needs=HOLDOUT, search=True, pinned=True)
    test_subset: int = setting(0, "evaluate on the first N test images (0: all); for smoke runs",
                               SCOPE, check=_at_least(0), must="must be non-negative",
                               search=True, pinned=True)
    eval_batch_size: int = setting(2000, "evaluation needs no gradients, so bigger batches are "
                                   "free", RUN, check=_at_least(1), must="must be at least 1",
                                   search=True)
    seed: int = setting(1, "initial weights, shuffling, augmentation and dropout draws", SCOPE,
                        check=_at_least(0), must="must be non-negative", bench=True)
    device: str = setting("auto", "auto picks cuda, then cpu", RUN,
                          check=lambda v: DEVICE.fullmatch(v) is not None,
                          must="must be auto, cpu, cuda, cuda:N or mps", search=True,
                          bench=True)
    threads: int = setting(0, "CPU threads in training (0: every core; 1 each with --jobs)",
                           RUN, check=_in(0, 1024), must="must be in [0, 1024] (0: every core)",
                           search=True, bench=True)
    # The fast path: "auto" is what measured fastest on the device type (fast.py).
    channels_last: str = setting("auto", "NHWC activations (auto: on, CPU and CUDA)", RUN,
                                 choices=SWITCH, bench=True)
    compile: str = setting("auto", "torch.compile the model (auto: off, see fast.py)", RUN,
                           choices=SWITCH, bench=True)
    cuda_graphs: str = setting("auto", "each training step a CUDA graph (auto: on)", RUN,
                               choices=SWITCH, bench=True)
    amp: str = setting("auto", "bf16 autocast when training (auto: CUDA with native bf16)", RUN,
                       choices=("auto", "bf16", "off"), bench=True)
    fast_dropout: str = setting("auto", "dropout masks from geometric gaps (auto: CPU)", RUN,
                                choices=SWITCH)
    fast_batchnorm: str = setting("auto", "wide-row batch norm, narrow NHWC layers (auto: CPU "
                                  "with several threads, batch >= 128)", RUN, choices=SWITCH)
    data_root: str = setting("", "MNIST root (holding MNIST/raw); else $MNIST_ROOT, else ./data",
                             RUN, search=True, bench=True, path=True)
    target: float = setting(99.4, "accuracy (%) whose first epoch is recorded", RUN,
                            check=_in(0, 100), must="must be an accuracy in [0, 100] (%)")
    progress: bool = setting(True, "rich progress bar", RUN)

    def __post_init__(self):
        kinds = _field_types(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if not _is_kind(value, kinds[f.name]):  # a sidecar or a caller may hand over anything
                raise UserError(f"invalid option: {f.name} must be {kinds[f.name].__name__} "
                                f"(got {type(value).__name__} {_shown(value)})")
            why = _kind_problem(f, value) or _value_problem(f, value)
            if why:
                raise UserError(f"invalid option: {f.name} {why} (got {_shown(value)})")


def _kind_problem(f: Field, value) -> str:
    """What every field of a kind must be, before its own check: numbers finite (NaN and
    infinities fail no comparison) and within what torch takes, paths that can be paths."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and abs(value) > INT_LIMIT:
        return f"must be at most {INT_LIMIT:,} in size"
    if isinstance(value, str) and "\0" in value:
        return "must not contain a NUL character"
    if isinstance(value, str) and f.metadata.get("path"):
        return _path_problem(value)
    return ""


def _value_problem(f: Field, value) -> str:
    check = f.metadata.get("check")
    return f.metadata["must"] if check is not None and not check(value) else ""


@functools.cache
def _field_types(cls: type) -> dict[str, type]:
    """Each field's type, a task's subclass's fields and Config's (annotations are strings)."""
    return typing.get_type_hints(cls)


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


def names(cls: type = Config, *, uses=None, **metadata) -> tuple[str, ...]:
    """The fields of `cls` whose metadata has every given value (concern=RECIPE, search=True,
    ...); with `uses` (a task's USES), only the fields that task uses."""
    return tuple(f.name for f in fields(cls)
                 if all(f.metadata.get(k) == v for k, v in metadata.items())
                 and (uses is None or not f.metadata.get("needs")
                      or f.metadata["needs"] in uses))


def defaults(cls: type = Config) -> dict:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def field_help(cls: type = Config) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_args(parser: argparse.ArgumentParser, only: tuple[str, ...], cls: type = Config,
                    values: dict | None = None) -> None:
    """One --flag per field in `only` (underscores become dashes): its help and choices from
    the field's metadata, its default shown as `values` (a task's defaults) or the field's; the
    parsed value stays None unless given, so defaults keep one home."""
    values = values or {}
    for f in fields(cls):
        if f.name not in only:
            continue
        kind = _field_types(cls)[f.name]
        choices = f.metadata.get("choices") or (("true", "false") if kind is bool else ())
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
            type=_parse_bool if kind is bool else kind,
            metavar="{" + ",".join(map(str, choices)) + "}" if choices else kind.__name__.upper(),
            help=f"{f.metadata.get('help', '')}; default: {values.get(f.name, f.default)!r}"
                 .replace("%", "%%"))  # argparse formats help with %


def given(args: argparse.Namespace, cls: type = Config) -> dict:
    """The fields the user gave on the command line (a flag left out parses as None)."""
    return {f.name: getattr(args, f.name) for f in fields(cls)
            if getattr(args, f.name, None) is not None}

