"""Every version of each task's search space: today's (space.py) and the earlier ones, frozen
here, which only replay the trials they sampled (what confirm and promote train and print).

A study samples from one version: its settings record it ("space", pinned like the budget), so
no study is resumed, or warm-started from, under another (Optuna refuses a categorical whose
choices change within a study, and a sampler would mix the two spaces). A trial replays
through the version that sampled it, which its parameters tell (`sampled_from`), so today's
space never looks at a trial's history.

What keeps this exact: a frozen version never changes, and two versions that ask for the same
parameters replay them alike (a value that would mean something else takes a new name). The
families' own parameters (space.ARCH_SPACES) are the same in every version; only which
families are offered differs.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna

from errors import UserError

from . import space

# The families offered before the staged one.
SIX_FAMILIES = ("dilated", "ghost", "plain", "resnet", "sepconv", "squeeze")


def _stepped(trial, name: str, lo: float, hi: float, step: float) -> float:
    return round(trial.suggest_float(name, lo, hi, step=step), 6)


def _mnist_training_1(trial) -> dict:
    """MNIST version 1: optimizer, schedule, label smoothing and one augmentation strength.
    Every other Config field trained with its default."""
    schedule = trial.suggest_categorical("schedule", ["onecycle", "cosine"])
    strength = _stepped(trial, "augment", 0.0, 1.5, 0.25)
    return {
        "lr": trial.suggest_float("lr", 0.01, 0.4, log=True),
        "momentum": _stepped(trial, "momentum", 0.8, 0.95, 0.05),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "schedule": schedule,
        "warmup": _stepped(trial, "warmup", 0.1, 0.4, 0.05) if schedule == "onecycle" else 0.0,
        "label_smoothing": _stepped(trial, "label_smoothing", 0.0, 0.1, 0.05),
        "rotate": round(7.0 * strength, 4),
        "translate": round(0.08 * strength, 4),
    }


def _mnist_training_2(trial) -> dict:
    """MNIST version 2: version 1 with batch 32, wider warm-up and label smoothing, zoom,
    shear, erasing, a weight average and the one-cycle's shape. Every other Config field
    trained with its default."""
    schedule = trial.suggest_categorical("schedule", ["onecycle", "cosine"])
    strength = _stepped(trial, "augment", 0.0, 1.5, 0.25)
    out = {
        "lr": trial.suggest_float("lr", 0.01, 0.4, log=True),
        "momentum": _stepped(trial, "momentum", 0.8, 0.95, 0.05),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "schedule": schedule,
        "warmup": _stepped(trial, "warmup", 0.05, 0.4, 0.05) if schedule == "onecycle" else 0.0,
        "label_smoothing": _stepped(trial, "label_smoothing", 0.0, 0.15, 0.05),
        "rotate": round(7.0 * strength, 4),
        "translate": round(0.08 * strength, 4),
        "scale": _stepped(trial, "scale", 0.0, 0.2, 0.05),
        "shear": _stepped(trial, "shear", 0.0, 15.0, 5.0),
        "erase": _stepped(trial, "erase", 0.0, 0.5, 0.1),
        "ema": trial.suggest_categorical("ema", [0.0, 0.99, 0.995, 0.998, 0.999]),
    }
    if schedule == "onecycle":
        out["div_factor"] = trial.suggest_float("div_factor", 5.0, 100.0, log=True)
        out["final_div_factor"] = trial.suggest_float("final_div_factor", 10.0, 1e4, log=True)
        out["anneal"] = trial.suggest_categorical("anneal", ["linear", "cos"])
    return out


def _mnist(families: tuple[str, ...], training: Callable) -> Callable[..., dict]:
    """An MNIST space: a member of `families`, trained as `training` samples."""
    def suggest(trial) -> dict:
        return {"model": space.member_arch(space.suggest_member(trial, families)),
                **training(trial)}
    return suggest


FROZEN: dict[str, dict[int, Callable]] = {
    "mnist": {1: _mnist(SIX_FAMILIES, _mnist_training_1),
              2: _mnist(SIX_FAMILIES, _mnist_training_2)},
}
# task -> version -> suggest(trial) -> Config overrides: the frozen ones, then today's.
VERSIONS: dict[str, dict[int, Callable]] = {
    task: {**FROZEN.get(task, {}), space.VERSION[task]: suggest}
    for task, suggest in space.SPACES.items()}


def sampled_from(params: dict, task: str) -> int | None:
    """The version of `task`'s space that sampled a trial with these parameters: the newest one
    that, replaying them, asks for exactly these (None: none does, e.g. a trial that failed
    part-way through sampling). The trial's recorded distributions would not tell: a study
    kept its first batch-size choices when the space grew, as Optuna requires."""
    for version, suggest in sorted(VERSIONS[task].items(), reverse=True):
        trial = optuna.trial.FixedTrial(params)
        try:
            suggest(trial)
        except ValueError:  # a parameter the trial lacks, or a value no choice holds
            continue
        if trial.params.keys() == params.keys():
            return version
    return None


def replay(params: dict, task: str) -> dict:
    """The Config overrides a trial's recorded parameters stand for, through the version of
    the space that sampled them."""
    version = sampled_from(params, task)
    if version is None:
        raise UserError(f"no version of the {task} search space asks for exactly these "
                        f"parameters: {', '.join(sorted(params)) or 'none'}")
    return VERSIONS[task][version](optuna.trial.FixedTrial(params))
