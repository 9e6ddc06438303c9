"""python -m benchmarks plots: regenerate results/plots/ from the committed results.

Run pictures come from results/runs.csv (every row: search trials write none) and, where a
run's final checkpoint is present, from its weights re-evaluated on the test split. Optuna's
plots come from every study in every results/*.db (optuna.visualization.matplotlib: the
plotly path would need a browser for PNG export). Data roots: $MNIST_ROOT, $HYMENOPTERA_ROOT.
"""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from errors import UserError
from models import arch_of, list_models
from models.registry import SOURCES

from ..harness.config import Config
from ..tasks import get_task
from .leaderboard import leaderboard, recipe_key, trained_with, zoo_task

if TYPE_CHECKING:  # annotations only: --help must not import them
    import optuna
    import pandas as pd


def benchmark_runs(results_dir: Path) -> list[dict]:
    """Rows of runs.csv (benchmark and search-confirm runs; search trials write none), each
    merged with its final checkpoint's sidecar (which adds the full per-epoch history) and
    its path, when that checkpoint is present."""
    import pandas as pd

    from ..harness import results as results_mod
    from ..harness.checkpoint import read_sidecar, run_stem

    path = results_dir / "runs.csv"
    if not path.is_file():
        return []
    rows = results_mod.read_runs(path).to_dict("records")
    runs = []
    for row in rows:
        row = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in row.items()}
        stem = run_stem(row)
        weights = results_dir / "checkpoints" / f"{stem}-final.safetensors"
        if weights.is_file() and weights.with_suffix(".json").is_file():
            row = {**row, **read_sidecar(weights.with_suffix(".json")),
                   "checkpoint": weights}
        runs.append({**row, "stem": stem})
    return runs


def run_plots(run: dict, out: Path, console: Console) -> list[Path]:
    """Curves for every run; confusion, mistakes and predictions for runs with weights."""
    from ..harness.data import DataError
    from . import drawing

    folder = out / "runs" / run["stem"]
    made = [drawing.plot_curves(run, folder / "curves.png")]
    if not run.get("checkpoint"):
        return made
    try:
        _weights_plots(run, folder, console, made)
    except DataError as e:  # one task's data missing should not stop the other pictures
        console.print(f"[yellow]skipped[/yellow] {run['stem']}'s pictures that need its "
                      f"data: {e}", highlight=False)
    return made


def _weights_plots(run: dict, folder: Path, console: Console, made: list[Path]) -> None:
    """The pictures of the run's task (Task.PICTURES) that need its weights and test images,
    appended to `made`. The confusion matrix is the one training recorded; MNIST's test set is
    evaluated again for its mistakes, and must give the recorded accuracy."""
    import torch

    from ..harness.train import evaluate
    from ..tasks.run import load_checkpoint
    from . import drawing
    from .evaluate import load_split

    task = get_task(run["task"])
    device = torch.device("cpu")
    model, side = load_checkpoint(run["checkpoint"], device)
    title = f"{run['model']}, seed {run['seed']}, {run['epochs']} epochs"
    recorded = (side.get("recorded") or {}).get("test") or {}
    # A dozen images make the prediction grid: no need to decode a whole image folder.
    few = {"test_subset": 12, "workers": 0} if "predictions" in task.PICTURES else {}
    split, cfg = load_split(side, "test", device, overrides=few)
    names = getattr(split, "classes", None)  # image folders name their classes
    for picture in task.PICTURES:
        path = folder / f"{picture}.png"
        if picture == "confusion" and recorded.get("confusion"):
            made.append(drawing.plot_confusion(recorded["confusion"], path, title, names))
        elif picture == "misclassified":
            metrics = evaluate(model, split, cfg.eval_batch_size)
            if metrics["acc"] != recorded.get("acc", metrics["acc"]):
                console.print(f"[yellow]warning:[/yellow] {run['checkpoint']}: test accuracy "
                              f"{metrics['acc']} differs from the recorded {recorded['acc']}")
            made.append(drawing.plot_misclassified(model, split, path, title,
                                                 batch_size=cfg.eval_batch_size))
        elif picture == "predictions":
            made.append(drawing.plot_image_predictions(model, split, path, title))


def _target(i: int):
    return lambda t: t.values[i]


def _lower_is_better(study: optuna.Study, i: int):
    """Objective i, negated when maximized: PED-ANOVA (Optuna's default importance evaluator)
    ranks parameters by how they reach LOW target values."""
    import optuna

    sign = -1.0 if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return lambda t: sign * t.values[i]


def study_plots(storage: str, out: Path, prefix: str, console: Console) -> list[Path]:
    """History, parameter importances and (with two objectives) the Pareto front per study."""
    import optuna
    import optuna.visualization.matplotlib as vis
    from optuna.search_space import intersection_search_space
    from optuna.trial import TrialState

    from . import drawing

    made = []
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not done:
            console.print(f"study {name}: no complete trials yet, no plots")
            continue
        names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
        multi = len(study.directions) > 1
        stem = f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
        jobs = [("history", lambda: vis.plot_optimization_history(
                    study, target=_target(0) if multi else None, target_name=names[0])),
                # Sorted names: ties would otherwise come in hash order, changing the PNG.
                ("importances", lambda: vis.plot_param_importances(
                    study, params=sorted(intersection_search_space(study.get_trials())),
                    target=_lower_is_better(study, 0) if multi else None,
                    target_name=names[0]))]
        if multi:
            jobs.append(("pareto", lambda: vis.plot_pareto_front(study, target_names=names)))
        for kind, job in jobs:
            try:
                with warnings.catch_warnings():  # "experimental" since Optuna 2: just noise
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    # PED-ANOVA's notes (targets, regimes with few trials) drown the output.
                    warnings.simplefilter("ignore", UserWarning)
                    ax = job()
            except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. too few trials
                console.print(f"study {name}: no {kind} plot ({e})")
                continue
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            if kind == "history" and multi:
                _best_so_far(ax, study, done, names[0])
            if kind == "importances":  # one readable row per parameter (the space has many)
                fig.set_size_inches(8, max(4.0, 0.22 * len(ax.get_yticks()) + 1.5))
            made.append(drawing.save(fig, out / f"{stem}-{kind}.png"))
    return made


def _best_so_far(ax, study: optuna.Study, done: list, name: str) -> None:
    """Optuna draws no best line for a chosen objective of a multi-objective study."""
    import optuna

    better = max if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
    xs, best = [], []
    for t in sorted(done, key=lambda t: t.number):
        xs.append(t.number)
        best.append(t.values[0] if not best else better(best[-1], t.values[0]))
    ax.step(xs, best, where="post", color="tab:red", label=f"best {name} so far")
    ax.legend(loc="lower right")


def params_vs_accuracy(board: pd.DataFrame, out: Path) -> list[Path]:
    """The zoo's leaderboard as a picture: 20-epoch rows, and the peers at their own epochs."""
    from . import drawing

    peers = frozenset(SOURCES)  # published models, trained at their own epoch counts
    board = board[board.task.map(zoo_task) & (board.train_images == 60_000)
                  & ((board.epochs == 20) | board.model.isin(peers))]
    if not len(board):
        return []
    return [drawing.plot_params_vs_accuracy(board, out / "mnist-params-vs-accuracy.png",
                                          peers=peers)]


def summary_plots(results_dir: Path, out: Path) -> list[Path]:
    """The pictures drawn from the runs' leaderboard (sizes against accuracy, certificates),
    from one read of results_dir's runs.csv; nothing without one."""
    from ..harness import results as results_mod
    from .seedplot import plot_certificates

    path = results_dir / "runs.csv"
    if not path.is_file():
        return []
    runs = results_mod.read_runs(path)
    board = leaderboard(runs)
    return params_vs_accuracy(board, out) + plot_certificates(runs, board, out)


def regenerate(results_dir: Path | None = None, out: Path | None = None,
               console: Console | None = None, summary: bool = False) -> list[Path]:
    """Write every picture (with summary, only those drawn from the leaderboard); returns their
    paths."""
    import torch

    from models.report import unwrapped

    from ..harness import results as results_mod
    from ..harness.data import DataError
    from ..tasks.mnist_files import load_mnist
    from . import drawing

    results_dir = Path(results_dir or results_mod.RESULTS_DIR)
    out = Path(out or results_dir / "plots")
    _check_out(out)
    if summary:
        return summary_plots(results_dir, out)
    console = unwrapped(console)
    runs = benchmark_runs(results_dir)
    made = []
    # A run's own folder only where its weights are at hand (the committed champions'): the
    # other runs' curves are in zoo-curves.png and their rows; stale folders are removed.
    kept = [run for run in runs if run.get("checkpoint")]
    for run in kept:
        made += run_plots(run, out, console)
    _prune_run_folders(out / "runs", {run["stem"] for run in kept})
    # The zoo's members, each by name, on one chart: one run per member (its lowest seed) of
    # the member's own recipe keeps it readable.
    members = {arch_of(m): m for m in list_models()}
    first = {}
    for r in sorted(runs, key=lambda r: int(r["seed"])):
        member = members.get(r["arch"])
        if member and zoo_task(r["task"]) and int(r["epochs"]) >= 5 and trained_with(
                member, recipe_key(r["config"]), int(r["epochs"])):
            first.setdefault(member, {**r, "model": member})
    if first:
        made.append(drawing.plot_zoo_curves(list(first.values()), out / "zoo-curves.png"))
    made += summary_plots(results_dir, out)
    # Augmentation as the default Config trains: on CPU, a few training digits.
    cfg = Config(device="cpu", train_subset=16, progress=False)
    try:
        train = load_mnist(cfg, torch.device("cpu"), False).train
        made.append(drawing.plot_augmentation(train, cfg, out / "mnist-augmentation.png"))
    except DataError as e:
        console.print(f"[yellow]skipped[/yellow] the augmentation grid: {e}", highlight=False)
    dbs = sorted(results_dir.glob("*.db"))
    if not dbs:
        console.print(f"no study databases (*.db) in {results_dir}: no Optuna plots")
    for db in dbs:
        made += study_plots(f"sqlite:///{db}", out, db.stem, console)
    return made


def _prune_run_folders(folder: Path, keep: set[str]) -> None:
    """Remove run folders (only PNGs in folders named like runs) that no kept run drew."""
    if not folder.is_dir():
        return
    for run in folder.iterdir():
        if run.is_dir() and run.name not in keep and re.fullmatch(r"\w[\w.-]*-s\d+-\d+T\d+(-\d+)?",
                                                                 run.name):
            pngs = list(run.glob("*.png"))
            if len(pngs) == len(list(run.iterdir())):  # nothing but pictures: ours to remove
                for png in pngs:
                    png.unlink()
                run.rmdir()


def _check_out(out: Path) -> None:
    """--out is a folder, or can be made one: checked before anything is read or drawn."""
    there = out
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        raise UserError(f"--out {out} is not a folder" + (f" ({there} is a file)"
                                                           if there != out else "")
                        + ": the pictures go in a folder")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plots", help="regenerate results/plots/*.png from the committed results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", type=Path, default=None,
                   help="default: results/ or $NAS_RESULTS")
    p.add_argument("--out", type=Path, default=None, help="default: <results dir>/plots")
    p.add_argument("--summary", action="store_true",
                   help="only the pictures drawn from the leaderboard (params vs accuracy)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from models.report import unwrapped

    console = unwrapped()
    made = regenerate(args.results_dir, args.out, console, args.summary)
    for path in made:
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{len(made)} PNG files written")
    return 0
