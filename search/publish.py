"""After a search: `confirm` the best trials on the test set, `export` a study to CSV and PNG.

confirm re-trains the top trials from their recorded parameters (replayed with
`optuna.trial.FixedTrial` through the version of the search space that sampled them) on the
full training set, measures test accuracy, and appends one row per seed to results/runs.csv,
where the leaderboard reads them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from benchmarks.harness.config import Config
from benchmarks.harness.device import resolve_device
from benchmarks.harness.results import CONFIRMED, check_target
from benchmarks.harness.runs import for_jobs, resolve_jobs, side_by_side, stop_hook
from benchmarks.tasks import get_task, task_config
from benchmarks.tasks.run import run_one
from errors import UserError
from models import OverBudgetError, list_models, recipe_of
from models.registry import MODELS, family_params
from models.report import unwrapped

from . import space
from .objective import make_model
from .study import status_of
from .versions import replay


def _settings(study: optuna.Study) -> dict:
    settings = study.user_attrs.get("search")
    if not settings:
        raise UserError(f"study {study.study_name!r} was not made by `python -m search run` "
                        "(it has no 'search' user attribute)")
    return settings


def pick(study: optuna.Study, top: int) -> list[optuna.trial.FrozenTrial]:
    """The best `top` distinct completed trials: by validation accuracy, or the Pareto front."""
    task = _settings(study)["task"]
    if len(study.directions) > 1:
        ranked = study.best_trials
    else:
        ranked = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    ranked = sorted(ranked, key=lambda t: (-t.values[0], t.user_attrs.get("params", 0)))
    chosen, seen = [], set()
    for t in ranked:
        key = json.dumps(replay(t.params, task), sort_keys=True)  # same model + training
        if key not in seen:
            seen.add(key)
            chosen.append(t)
    return chosen[:top]


def chosen(study: optuna.Study, numbers: list[int]) -> list[optuna.trial.FrozenTrial]:
    """The trials numbered `numbers`, each of which must have completed."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for n in numbers:
        if n not in by_number or by_number[n].state != optuna.trial.TrialState.COMPLETE:
            state = status_of(by_number[n]) if n in by_number else "not in the study"
            raise UserError(f"trial {n} of {study.study_name!r} cannot be confirmed: {state}; "
                            "only completed trials can")
    return [by_number[n] for n in dict.fromkeys(numbers)]


def confirm(study: optuna.Study, top: int, seeds: list[int], overrides: dict,
            console: Console | None = None, numbers: list[int] | None = None,
            jobs: int | None = 1, results: Path | None = None) -> list[dict]:
    """Re-train the top trials (or the trials numbered `numbers`) on the full training set
    per seed, `jobs` runs at a time (None: one per core on CPU); append rows to `results`
    (default: results/runs.csv)."""
    console = unwrapped(console or Console(highlight=False))
    trials = chosen(study, numbers) if numbers else pick(study, top)
    if not trials:
        raise UserError(f"study {study.study_name!r} has no completed trial to confirm")
    task = get_task(_settings(study)["task"])
    base = dataclasses.replace(task_config(_settings(study)["task"]), val_split=0, **overrides)
    device = resolve_device(base.device)
    n_jobs = resolve_jobs(jobs, device)
    base = for_jobs(dataclasses.replace(base, progress=console.is_terminal), n_jobs)
    check_target(results)  # the runs CSV can take the rows, before any data is loaded
    data = task.load_data(base, device)  # full train set and the test set
    console.print(f"confirming {len(trials)} trial(s) of {study.study_name} with seeds {seeds}: "
                  f"{len(data.train):,} training images, {len(data.test):,} test images, "
                  f"{base.epochs} epochs" + (f", {n_jobs} runs at a time" if n_jobs > 1 else ""),
                  soft_wrap=True)

    def run(pair, stop) -> dict:
        t, seed = pair
        cfg = dataclasses.replace(base, **replay(t.params, base.task), seed=seed)
        row = run_one(task, cfg, data, source=f"{CONFIRMED}{study.study_name}:{t.number}",
                      results=results,
                      on_epoch=stop_hook(stop, console if n_jobs > 1 else None,
                                         f"trial {t.number} seed {seed}"))
        console.print(f"trial {t.number} seed {seed}: test {row['final_test_acc']:.2f}%  "
                      f"{row['params']:,} params  {row['seconds']:.0f} s  {row['arch']}")
        return {**row, "trial": t.number, "search_val_acc": t.values[0]}

    rows = side_by_side(n_jobs, run, [(t, seed) for t in trials for seed in seeds])
    _print_table(rows, console)
    return rows


def member_spec(trial: optuna.trial.FrozenTrial) -> dict:
    """A zoo member's spec for an MNIST trial: family, its parameters and the training recipe."""
    spec = space.suggest_member(optuna.trial.FixedTrial(trial.params))  # as in every version
    recipe = {k: v for k, v in replay(trial.params, "mnist").items() if k != "model"}
    return {**spec, "recipe": recipe}


def enqueue_zoo(study: optuna.Study, base: Config, budget: int | None = None,
                names: list[str] | None = None) -> list[str]:
    """Queue zoo members as trials (their recipe, else `base`'s training), once per study, so
    the search starts from the hand-made models: every member within the budget whose values
    lie on the search grid, or exactly `names` (an error, before any is queued, if one cannot
    be). Returns the names queued."""
    if names:
        unknown = sorted(set(names) - set(list_models()))
        if unknown:
            raise UserError(f"not zoo members: {', '.join(unknown)} (see python -m models "
                            "summary)")
    picked = {}  # name -> trial params; queued only once every named member passed
    for name in names or list_models():
        fam, overrides = MODELS[name]
        if fam not in space.ARCH_SPACES:  # no search family: the peers (models/peers.toml)
            if names:
                raise UserError(f"{name} lies off the search grid: it cannot be a trial")
            continue
        cfg = dataclasses.replace(base, model=name, **recipe_of(name))
        try:
            make_model(cfg, budget)
        except OverBudgetError as err:
            if names:
                raise UserError(f"{name}: {err}") from err
            continue
        params = space.replay_params({"family": fam, **family_params(fam), **overrides},
                                     dataclasses.asdict(cfg), base.task)
        if params is None:
            if names:
                raise UserError(f"{name} lies off the search grid: it cannot be a trial")
            continue
        picked[name] = params
    for name, params in picked.items():
        study.enqueue_trial(params, user_attrs={"zoo": name}, skip_if_exists=True)
    return list(picked)


def promote(study: optuna.Study, number: int, name: str | None = None) -> str:
    """Trial `number` as a named zoo member: a TOML table to add to models/champions.toml, its
    family parameters, `found_by` and the training recipe the trial was found with."""
    from models.members import table  # the form models/members.py reads back

    if not get_task(_settings(study)["task"]).ZOO:
        raise UserError(f"only trials of the zoo's task are zoo models; "
                        f"{_settings(study)['task']} trials have no member")
    trial = chosen(study, [number])[0]
    spec = member_spec(trial)
    params = trial.user_attrs["params"]
    name = name or f"nas_{spec['family']}_{round(params / 1000)}k"
    recipe = spec.pop("recipe")
    comment = ("Add to models/champions.toml, this line replaced by why the member is there:\n"
               f"{study.study_name} trial {number}: {params:,} params, {trial.values[0]:.2f}% "
               "validation.")
    return table(name, {**spec, "found_by": f"{study.study_name}:{number}", "recipe": recipe},
                 comment)


def _print_table(rows: list[dict], console: Console) -> None:
    table = Table(title="confirmed on the test set (rows appended to runs.csv)")
    for col in ("trial", "params", "search val", "test (per seed)", "mean test", "arch"):
        table.add_column(col, justify="left" if col == "arch" else "right")
    for number in dict.fromkeys(r["trial"] for r in rows):
        mine = [r for r in rows if r["trial"] == number]
        tests = [r["final_test_acc"] for r in mine]
        table.add_row(str(number), f"{mine[0]['params']:,}", f"{mine[0]['search_val_acc']:.2f}%",
                      " ".join(f"{v:.2f}" for v in tests), f"{sum(tests) / len(tests):.2f}%",
                      mine[0]["arch"])
    console.print(table)


def _write_atomic(path: Path, write) -> None:
    """Write via a temporary file, so a failure never leaves a half-written export."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export(study: optuna.Study, out: Path, storage_flag: str = "") -> list[Path]:
    """<study>-trials.csv; for Pareto studies also <study>-pareto.csv and <study>-pareto.png.
    `storage_flag` (' --storage URL', or '' for the default) goes into the hint it may give."""
    name = study.study_name
    if not study.get_trials(deepcopy=False):  # before `out` is made: a refusal leaves nothing
        raise UserError(f"study {name!r} has no trials yet: nothing to export (`python -m "
                        f"search run --study {name}{storage_flag}` adds them)")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(13, "the folder is read-only for this user")
    df = study.trials_dataframe()
    status = {t.number: status_of(t) for t in study.get_trials(deepcopy=False)}
    df.insert(1, "status", df["number"].map(status))
    paths = [out / f"{name}-trials.csv"]
    _write_atomic(paths[0], lambda p: df.to_csv(p, index=False))
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: t.values[1])
        if not front:
            raise UserError(f"study {name!r} has no completed trial, so no Pareto front yet")
        import pandas as pd

        table = pd.DataFrame([{
            "number": t.number, "val_acc": t.values[0], "params": int(t.values[1]),
            "macs": t.user_attrs.get("macs"), "family": t.user_attrs.get("family"),
            "arch": t.user_attrs.get("arch"), "seconds": t.user_attrs.get("seconds"),
            "params_json": json.dumps(t.params, sort_keys=True)} for t in front])
        paths.append(out / f"{name}-pareto.csv")
        _write_atomic(paths[-1], lambda p: table.to_csv(p, index=False))
        paths.append(out / f"{name}-pareto.png")
        _write_atomic(paths[-1], lambda p: _pareto_png(study, p))
    return paths


def _pareto_png(study: optuna.Study, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_pareto_front

    # Parameters on x (smaller is better), validation accuracy on y (higher is better).
    ax = plot_pareto_front(study, targets=lambda t: (t.values[1], t.values[0]),
                           target_names=["parameters", "validation accuracy (%)"])
    ax.set_title(f"{study.study_name}: Pareto front (validation accuracy vs parameters)")
    ax.figure.savefig(path, dpi=120, bbox_inches="tight", format="png")
    plt.close(ax.figure)
