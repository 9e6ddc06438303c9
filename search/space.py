"""The search space: the one place that calls `trial.suggest_*` (but for the earlier versions
of the space, frozen in versions.py, through which the trials they sampled replay).

`suggest(trial, task)` returns Config overrides: `model` is the canonical architecture string of
a zoo family with sampled depths and widths, the rest are training choices. It is define-by-run,
so each family has its own parameters (`plain.stem0`, `resnet.widths_depth`, ...), and a fixed
parameter dict replays it exactly (`optuna.trial.FixedTrial(trial.params)`, used by confirm).

Nothing here builds or trains a model; the objective counts each sample against the budget.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

from benchmarks.tasks.hymenoptera import MODES
from models.registry import FAMILIES

# Width grids (channels). Steps of 4 keep the space small enough for TPE to learn; ghost
# modules need even widths, which a step of 4 guarantees.
STEP = 4


def _widths(trial, name: str, depth: tuple[int, int], lo: int, hi: int) -> tuple[int, ...]:
    """A variable-depth tuple of widths: the depth first, then one width per position."""
    n = trial.suggest_int(f"{name}_depth", *depth)
    return tuple(trial.suggest_int(f"{name}{i}", lo, hi, step=STEP) for i in range(n))


def _stepped(trial, name: str, lo: float, hi: float, step: float) -> float:
    """A float on a grid, rounded: Optuna's grid points carry float noise (0.15000000000000002)."""
    return round(trial.suggest_float(name, lo, hi, step=step), 6)


def _width(trial, name: str, lo: int, hi: int) -> int:
    return trial.suggest_int(name, lo, hi, step=STEP)


# Per family: its parameters (except dropout, which every family shares). The depth ranges
# keep every sample a valid network (the feature map never shrinks to nothing); how many
# blocks come before the pool/transition is what moves the transitions around.
def _plain(t) -> dict:
    return dict(stem=_widths(t, "plain.stem", (1, 3), 4, 24),
                trans=_width(t, "plain.trans", 4, 20),
                body=_widths(t, "plain.body", (1, 4), 8, 32),
                fc=t.suggest_categorical("plain.fc", [False, True]))


def _sepconv(t) -> dict:
    return dict(stem=_width(t, "sepconv.stem", 4, 16),
                widths=_widths(t, "sepconv.widths", (1, 3), 8, 64),
                trans=_width(t, "sepconv.trans", 4, 32),
                body=_widths(t, "sepconv.body", (1, 3), 16, 96),
                fc=t.suggest_categorical("sepconv.fc", [False, True]))


def _resnet(t) -> dict:
    return dict(stem=_width(t, "resnet.stem", 4, 16),
                widths=_widths(t, "resnet.widths", (2, 4), 4, 24),
                fc=t.suggest_categorical("resnet.fc", [False, True]))


def _dilated(t) -> dict:
    return dict(stem=_width(t, "dilated.stem", 4, 16),
                widths=_widths(t, "dilated.widths", (2, 6), 8, 32),
                fc=t.suggest_categorical("dilated.fc", [False, True]))


def _squeeze(t) -> dict:
    return dict(stem=_widths(t, "squeeze.stem", (1, 3), 4, 24),
                trans=_width(t, "squeeze.trans", 4, 20),
                body=_widths(t, "squeeze.body", (1, 4), 8, 32),
                reduction=t.suggest_categorical("squeeze.reduction", [2, 4, 8]),
                fc=t.suggest_categorical("squeeze.fc", [False, True]))


def _ghost(t) -> dict:
    return dict(stem=_width(t, "ghost.stem", 4, 16),
                widths=_widths(t, "ghost.widths", (1, 3), 8, 40),
                body=_widths(t, "ghost.body", (1, 3), 8, 48),
                fc=t.suggest_categorical("ghost.fc", [False, True]))


def _staged(t) -> dict:
    widths = _widths(t, "staged.widths", (2, 3), 4, 16)
    n = len(widths)  # one depth per stage: asked as a tuple, so params_of inverts it
    depths = tuple(t.suggest_int(f"staged.depths{i}", 1, 3)
                   for i in range(t.suggest_int("staged.depths_depth", n, n)))
    return dict(widths=widths, depths=depths,
                head=t.suggest_categorical("staged.head", ["fc", "fcn"]))


ARCH_SPACES: dict[str, Callable] = {"plain": _plain, "sepconv": _sepconv, "resnet": _resnet,
                                    "dilated": _dilated, "squeeze": _squeeze, "ghost": _ghost,
                                    "staged": _staged}


def suggest_member(trial, families: tuple[str, ...] = tuple(sorted(ARCH_SPACES))) -> dict:
    """Sample one of `families` and its parameters: {'family': ..., **params}, a zoo member's
    spec. An earlier version of the space offered fewer families (versions.py)."""
    family = trial.suggest_categorical("family", list(families))
    params = ARCH_SPACES[family](trial)
    params["dropout"] = _stepped(trial, "dropout", 0.0, 0.15, 0.025)
    return {"family": family, **params}


def member_arch(spec: dict) -> str:
    """The canonical architecture string of a member spec ({'family': ..., **params})."""
    return FAMILIES[spec["family"]](**{k: v for k, v in spec.items() if k != "family"})


def suggest_architecture(trial) -> str:
    """Sample a family and its parameters; return the canonical architecture string."""
    return member_arch(suggest_member(trial))


def suggest_training(trial) -> dict:
    """Sample the optimizer, schedule, augmentation, initialization and weight-averaging
    choices: Config fields, each trial parameter named after its field (but `augment`, see
    DERIVED)."""
    schedule = trial.suggest_categorical("schedule", ["onecycle", "cosine"])
    # One augmentation strength scales rotation and shift together; 1.0 is the harness default
    # (7 degrees, 8% shift), 0 turns augmentation off.
    strength = _stepped(trial, "augment", 0.0, 1.5, 0.25)
    out = {
        "lr": trial.suggest_float("lr", 0.01, 0.4, log=True),
        "momentum": _stepped(trial, "momentum", 0.8, 0.95, 0.05),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "schedule": schedule,
        "warmup": _stepped(trial, "warmup", 0.05, 0.4, 0.05)
        if schedule == "onecycle" else 0.0,
        "label_smoothing": _stepped(trial, "label_smoothing", 0.0, 0.15, 0.05),
        "rotate": round(7.0 * strength, 4),
        "translate": round(0.08 * strength, 4),
        "scale": _stepped(trial, "scale", 0.0, 0.2, 0.05),
        "shear": _stepped(trial, "shear", 0.0, 15.0, 5.0),
        "erase": _stepped(trial, "erase", 0.0, 0.5, 0.1),
        "ema": trial.suggest_categorical("ema", [0.0, 0.99, 0.995, 0.998, 0.999]),
        # What published tiny models train with (models/peers.toml).
        "schedule_step": trial.suggest_categorical("schedule_step", ["batch", "epoch"]),
        "init": trial.suggest_categorical("init", ["default", "xavier", "kaiming"]),
        "augment_p": _stepped(trial, "augment_p", 0.25, 1.0, 0.25),
        "brightness": _stepped(trial, "brightness", 0.0, 0.3, 0.1),
        "contrast": _stepped(trial, "contrast", 0.0, 0.3, 0.1),
    }
    if schedule == "onecycle":  # the cycle's shape: start lr/div, end lr/(div*final_div)
        out["div_factor"] = trial.suggest_float("div_factor", 5.0, 100.0, log=True)
        out["final_div_factor"] = trial.suggest_float("final_div_factor", 10.0, 1e4, log=True)
        out["anneal"] = trial.suggest_categorical("anneal", ["linear", "cos"])
    return out


# Trial parameters that are no Config field: each read back from a recipe (Config fields).
DERIVED: dict[str, Callable[[dict], object]] = {"augment": lambda recipe: recipe["rotate"] / 7}


class _Answers:
    """A stand-in trial answering every suggest_* call from a recipe (its Config field, or
    DERIVED), and recording what was asked: the parameters that replay the recipe."""

    def __init__(self, recipe: dict):
        self.recipe, self.params = recipe, {}

    def _answer(self, name: str, *args, **kwargs):
        value = DERIVED[name](self.recipe) if name in DERIVED else self.recipe[name]
        self.params[name] = value
        return value

    suggest_float = suggest_int = suggest_categorical = _answer


def params_of(spec: dict, recipe: dict) -> dict:
    """The trial parameters that replay a member spec ({'family': ..., **params}) trained with
    `recipe` (every Config field): the inverse of suggest_member + suggest_training. Unchecked:
    values off the grid do not replay; replay_params checks."""
    fam, params = spec["family"], dict(spec)
    out = {"family": fam, "dropout": params.pop("dropout")}
    for key, value in params.items():
        if key == "family":
            continue
        if isinstance(value, tuple):
            out[f"{fam}.{key}_depth"] = len(value)
            out.update({f"{fam}.{key}{i}": w for i, w in enumerate(value)})
        else:
            out[f"{fam}.{key}"] = value
    answers = _Answers(recipe)
    suggest_training(answers)
    return {**out, **answers.params}


def suggest_mnist(trial) -> dict:
    """MNIST: any zoo family under the budget, plus the training choices."""
    return {"model": suggest_architecture(trial), **suggest_training(trial)}


def _epoch_cap(trial, default: int = 25) -> int:
    """The study's --epochs, at most 25: the most epochs an ants/bees trial may sample. A
    replayed trial (FixedTrial) has no study; its recorded value stands."""
    study = getattr(trial, "study", None)
    settings = study.user_attrs.get("search", {}) if study is not None else {}
    return max(1, min(int(settings.get("epochs") or default), default))


def suggest_hymenoptera(trial) -> dict:
    """Ants/bees (ResNet18 transfer): SGD around the tutorial's settings, how many epochs,
    and which layers train (all, from layer2/3/4 on, or only the new head)."""
    return {
        "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        "momentum": trial.suggest_float("momentum", 0.8, 0.95, step=0.05),
        "schedule": trial.suggest_categorical("schedule", ["step", "cosine", "constant"]),
        "epochs": trial.suggest_int("epochs", 1, _epoch_cap(trial)),
        "mode": trial.suggest_categorical("mode", list(MODES)),
    }


# task -> suggest(trial) -> Config overrides. Other tasks add their space here.
SPACES: dict[str, Callable] = {"mnist": suggest_mnist, "hymenoptera": suggest_hymenoptera}
# task -> the version of its space above, which each study records and is pinned to: a change
# that a recorded trial would notice (a parameter added, removed, renamed or given other
# choices) raises it, and freezes the space it replaces in versions.py.
VERSION: dict[str, int] = {"mnist": 3, "hymenoptera": 1}


def suggest(trial, task: str = "mnist") -> dict:
    """Config overrides for one trial of `task`'s search space."""
    return SPACES[task](trial)


def replay_params(spec: dict, recipe: dict, task: str = "mnist") -> dict | None:
    """params_of, checked: the trial parameters that replay member `spec` trained with `recipe`
    (every Config field), or None when the replay differs (a value off the search grid)."""
    params = params_of(spec, recipe)
    with warnings.catch_warnings(record=True) as caught:  # FixedTrial warns off the grid
        warnings.simplefilter("always")
        try:
            replayed = suggest(optuna.trial.FixedTrial(params), task)
        except ValueError:  # and refuses what no distribution holds (0 on a log scale)
            return None
    want = {**{k: recipe[k] for k in replayed if k != "model"}, "model": member_arch(spec)}
    return None if caught or replayed != want else params
