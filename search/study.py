"""Study set-up: names, settings, sampler, pruner, warm start and trial bookkeeping.

Every study lives in an Optuna RDB storage (storage.py). Studies stay plain Optuna studies, so
`optuna trials`, `optuna-dashboard <url>` and `optuna.load_study` read them as they are.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import re
import warnings

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from benchmarks.harness.config import Config, names
from benchmarks.tasks import config_from_args, get_task
from errors import UserError

from .storage import StorageError, safe_url

DEFAULT_HEARTBEAT = 60  # seconds; a trial whose worker is silent for 2x this is failed, retried
OBJECTIVES = {"accuracy": ["maximize"], "pareto": ["maximize", "minimize"]}
METRIC_NAMES = {"accuracy": ["val_acc"], "pareto": ["val_acc", "params"]}
DEFAULT_MAX_TRIALS = 100  # when no --n-trials, --max-trials or --timeout is given
PRUNERS = ("hyperband", "sh", "median", "none")
SAMPLERS = ("tpe", "nsga2", "random")
# Settings that change what a trial's value means, or (space: the version of the search space,
# versions.py) what it can sample; a study refuses to resume with others.
PINNED = ("task", "objective", *names(Config, pinned=True), "budget", "space")

# Heartbeat, multivariate TPE and friends are "experimental" in Optuna; the warnings are noise.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


# A study name is also a file name (`search export` writes <out>/<study>-trials.csv), so it is
# one plain path component: never empty, never '..', never a folder of its own.
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def check_study_name(name: str, option: str = "--study") -> str:
    """`name` if it can name a study (and its export files); a UserError saying why not."""
    if not STUDY_NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 60 else repr(name[:57] + "...")
        raise UserError(f"invalid option: {option} {shown}: a study name is 1 to 100 letters, "
                        "digits and . _ + -, starting with a letter or digit (it also names "
                        "the files `search export` writes)")
    return name


def sampler_seed(seed: int | None, n_trials: int) -> int | None:
    """The sampler's seed for a worker started with --seed `seed` on a study that holds
    `n_trials` trials: the seed itself on a new study (so a first run is what it always was),
    else one drawn from both, so a restarted worker does not sample its first run's trials
    again (a fixed seed would replay the same random startup samples)."""
    if seed is None or n_trials == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{n_trials}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for the conditional space), NSGA-II or random."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    # constant_liar keeps parallel workers from proposing the same point at once.
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                      constant_liar=True, n_startup_trials=10)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """Hyperband over epochs by default; successive halving, median or none on request."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                              reduction_factor=3)
    if name == "sh":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def ran_with(recorded: dict) -> dict:
    """The pinned settings a study ran with, from its recorded "search" user attribute (None
    for one it does not record)."""
    return {k: recorded.get(k) for k in PINNED}


def peek_study(storage, name: str, settings: dict,
               hint: str | None = None) -> optuna.Study | None:
    """Study `name` if the storage holds it (None if not), checked for resuming with
    `settings`: a UserError (suggesting --study `hint`) if it ran with other ones. Reads only:
    nothing is created or pinned, so a refused run leaves the storage as it was."""
    try:
        study = optuna.load_study(study_name=name, storage=storage,
                                  sampler=optuna.samplers.RandomSampler())
    except KeyError:
        return None
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise StorageError(f"cannot read storage {safe_url(storage.url)}: "
                           f"{str(e).strip().splitlines()[0]}") from None
    _check_settings(study, name, settings, hint)
    return study


def pinned_settings(task: str, objective: str, budget: int, cfg: Config) -> dict:
    """The settings (PINNED) of a study of `task` searched with `cfg` under `budget`."""
    from . import space

    return {"task": task, "objective": objective, "budget": budget, "space": space.VERSION[task],
            **{k: getattr(cfg, k) for k in names(Config, pinned=True)}}


def suggest_study_name(settings: dict) -> str:
    """A study name for `settings`: <task>-<objective>, then each pinned setting that differs
    from those of a run given no option that changes them, e.g. mnist-accuracy-e2-train700."""
    from models import BUDGET

    task = settings["task"]
    ref = config_from_args(argparse.Namespace(), task=task, **get_task(task).SEARCH_DEFAULTS)
    defaults = pinned_settings(task, settings["objective"], BUDGET, ref)
    name = f"{task}-{settings['objective']}"
    label = {"epochs": "e", "train_subset": "train", "val_split": "val", "test_subset": "test"}
    extra = "".join(f"-{label.get(k, k)}{settings[k]}" for k in PINNED
                    if k not in ("task", "objective") and settings.get(k) != defaults.get(k))
    return (name + extra)[:100]


def _check_settings(study: optuna.Study, name: str, settings: dict,
                    hint: str | None = None) -> None:
    """UserError unless study `name` may be resumed with `settings` (directions and every
    pinned setting alike; a study with no recorded settings takes these)."""
    objective = settings["objective"]
    stored = study.user_attrs.get("search")
    if len(study.directions) != len(OBJECTIVES[objective]):
        was = (stored or {}).get("objective") or ("pareto" if len(study.directions) > 1
                                                  else "accuracy")
        raise UserError(f"study {name!r} is a {was} study; pass --objective {was} or another "
                        "--study")
    if stored is None:
        return
    old = ran_with(stored)
    diff = {k: (old[k], settings.get(k)) for k in PINNED if old[k] != settings.get(k)}
    if diff:
        shown = ", ".join(f"{k}={old!r} (now {new!r})" for k, (old, new) in diff.items())
        raise UserError(f"study {name!r} was run with {shown}; resume it with the same "
                        "settings, or pass another --study"
                        + (f" (e.g. --study {hint})" if hint and hint != name else ""))


def open_study(storage, name: str, settings: dict, sampler=None, pruner=None) -> optuna.Study:
    """Create the study or resume it (load_if_exists); refuse to mix different settings.
    The study is pinned to `settings` (its "search" user attribute) when it has none: call
    this only once every other check of a run has passed (peek_study checks without writing).
    """
    objective = settings["objective"]
    try:
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler,
                                    pruner=pruner, directions=OBJECTIVES[objective],
                                    load_if_exists=True)
    except ValueError as e:  # e.g. the study exists with other directions
        raise UserError(f"study {name!r}: {e}") from None
    except sqlalchemy.exc.SQLAlchemyError as e:  # e.g. a read-only database file
        raise StorageError(f"cannot write storage {safe_url(storage.url)}: "
                           f"{str(e).strip().splitlines()[0]}") from None
    _check_settings(study, name, settings)
    if study.user_attrs.get("search") is None:
        study.set_user_attr("search", settings)
        study.set_metric_names(METRIC_NAMES[objective])
    return study


def load_study(storage, name: str) -> optuna.Study:
    """An existing study, or a StorageError that lists the studies the storage holds."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise StorageError(f"no study named {name!r} in {safe_url(storage.url)}; studies "
                           f"there: {', '.join(names) or 'none'}") from None


def status_of(trial: FrozenTrial) -> str:
    """complete | pruned | rejected (over budget, never trained) | failed | running | waiting."""
    if trial.state == TrialState.PRUNED and trial.user_attrs.get("status") == "rejected":
        return "rejected"
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
            TrialState.FAIL: "failed", TrialState.RUNNING: "running",
            TrialState.WAITING: "waiting"}[trial.state]


def tally(trials: list[FrozenTrial]) -> collections.Counter:
    """How many trials are in each status_of state."""
    return collections.Counter(status_of(t) for t in trials)


def check_warm_start(storage, source: str, settings: dict, name: str) -> optuna.Study:
    """Study `source`, if study `name` (with `settings`) may warm-start from it: it exists,
    is another study, and agrees on every pinned setting but the budget, which may only grow.
    A UserError otherwise. Reads only."""
    if source == name:
        raise UserError(f"invalid option: --warm-start {source}: a study cannot warm-start "
                        "from itself (its trials would be copied into it twice)")
    src = load_study(storage, source)
    old = ran_with(src.user_attrs.get("search", {}))
    grown = old["budget"] is not None and old["budget"] <= settings["budget"]
    diff = [k for k in PINNED if old[k] != settings.get(k) and not (k == "budget" and grown)]
    if diff:
        why = ", ".join(f"{k}={old[k]!r} (here {settings.get(k)!r})" for k in diff)
        raise UserError(f"cannot warm-start from study {source!r}: it ran with {why}")
    return src


def warm_start(study: optuna.Study, storage, source: str) -> int:
    """Copy the trained (complete or pruned) trials of study `source` into `study`, once, so
    its sampler starts from what that study learned (e.g. a study under a tighter budget).
    The two must agree on every pinned setting but the budget, which may only grow: a sample
    rejected under the old budget could fit the new one, so rejected trials are not copied.
    Returns how many trials were copied (0 when `source` was copied before)."""
    done = study.user_attrs.get("warm_start", [])
    if source in done:
        return 0
    src = check_warm_start(storage, source, study.user_attrs["search"], study.study_name)
    copied = [optuna.trial.create_trial(
        state=t.state, values=t.values if t.state == TrialState.COMPLETE else None,
        params=t.params, distributions=t.distributions, intermediate_values=t.intermediate_values,
        user_attrs={**t.user_attrs, "copied_from": f"{source}:{t.number}"})
        for t in src.get_trials(deepcopy=False)
        if status_of(t) in ("complete", "pruned")]
    study.add_trials(copied)
    study.set_user_attr("warm_start", [*done, source])
    return len(copied)
