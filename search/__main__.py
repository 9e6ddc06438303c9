"""python -m search {run,confirm,promote,export}: the architecture search's command line.

  run      search (or resume) a study: sample, reject over-budget models, train on the
           validation split, prune; many workers may share one storage
  confirm  re-train a study's best trials on the full training set, test them, append rows
           to results/runs.csv
  promote  print a trial as a named zoo member (for models/champions.py)
  export   write a study's trials (and a Pareto study's front, CSV and PNG) under results/
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import optuna
import torch
from rich.console import Console

from benchmarks.config import Config, add_config_args, config_from_args
from benchmarks.fast import fast_settings, threads_while
from benchmarks.runs import (
    add_jobs_arg,
    for_jobs,
    parse_jobs,
    resolve_jobs,
    run_command,
    stop_on_ctrl_c,
)
from benchmarks.train import DivergedError, device_name, resolve_device
from models import BUDGET, UserError

from . import space
from .live import Reporter
from .objective import Objective
from .parallel import group_objective
from .publish import confirm, enqueue_zoo, export, promote
from .study import (
    DEFAULT_HEARTBEAT,
    OBJECTIVES,
    PRUNERS,
    SAMPLERS,
    load_study,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    retry,
    safe_url,
    status_of,
    warm_start,
)

DEFAULT_MAX_TRIALS = 100  # when no --n-trials, --max-trials or --timeout is given
REJECTED_IN_A_ROW = 500  # stop if the sampler finds nothing under the budget this many times
# Config fields a search run takes from the command line; the space samples the rest.
RUN_FIELDS = ("epochs", "train_subset", "val_split", "test_subset", "eval_batch_size", "device",
              "threads", "data_root", "weights", "image_size", "workers")
CONFIRM_FIELDS = ("epochs", "train_subset", "test_subset", "eval_batch_size", "device",
                  "threads", "data_root", "weights", "image_size", "workers")


def _skip(keep: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Config) if f.name not in keep)


def _storage_args(p: argparse.ArgumentParser, study_required: bool) -> None:
    p.add_argument("--study", required=study_required, default=None, metavar="NAME",
                   help="study name" + ("" if study_required else
                                        " (default: <task>-<objective>, e.g. mnist-accuracy)"))
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage URL, e.g. postgresql+psycopg://user:pw@host/db "
                        "(default: sqlite:///results/search.db)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run or resume a search study",
                       description="Run (or resume: the same command continues the study) an "
                                   "Optuna search. Start the same command on several machines "
                                   "with one --storage URL to share the study.")
    _storage_args(p, study_required=False)
    p.add_argument("--task", default="mnist", help="task to search (default: mnist)")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="accuracy",
                   help="accuracy: maximize validation accuracy (pruned); pareto: also "
                        "minimize parameters (default: accuracy)")
    p.add_argument("--n-trials", type=int, default=None, metavar="N",
                   help="stop after this worker trained N trials (over-budget samples, which "
                        "are rejected untrained, do not count)")
    p.add_argument("--max-trials", type=int, default=None, metavar="N",
                   help="stop once the study holds N trained trials, all workers together "
                        f"(default {DEFAULT_MAX_TRIALS} when no other limit is given)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="stop starting trials after S seconds")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="seed of the sampler and of every trial's training (default: random "
                        "sampler, training seed 1); give each worker its own seed")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default: tpe")
    p.add_argument("--pruner", choices=PRUNERS, default="hyperband",
                   help="hyperband (default), sh (successive halving), median or none; "
                        "pareto studies are not pruned")
    p.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT, metavar="S",
                   help="seconds between a running trial's heartbeats; a trial silent for "
                        f"twice this is failed and retried (default {DEFAULT_HEARTBEAT})")
    p.add_argument("--no-live", action="store_true",
                   help="plain log lines instead of the live view (automatic when not a tty)")
    p.add_argument("--budget", type=int, default=BUDGET, metavar="P",
                   help="reject (untrained) every sampled model over P parameters, to search "
                        f"for the best small model (default: the zoo's budget, {BUDGET:,})")
    p.add_argument("--enqueue-zoo", nargs="*", default=None, metavar="NAME",
                   help="first queue zoo members (every one within the budget, or the NAMEs "
                        "given) once per study, so the search starts from the hand-made models")
    p.add_argument("--warm-start", action="append", default=[], metavar="STUDY",
                   help="first copy the trained trials of STUDY (same storage and settings, "
                        "a budget no larger) into this one, once, so the sampler starts from "
                        "what it learned")
    p.add_argument("--parallel", type=int, default=1, metavar="K",
                   help="train K trials of one architecture at once, for a GPU (default 1: "
                        "one at a time, faster on CPU; see search/parallel.py)")
    add_jobs_arg(p, "trials", "; `make search` uses auto; Optuna's n_jobs. With N > 1, "
                 "--n-trials may be passed by the trials still running when it is reached")
    p.add_argument("--val-split", type=int, default=None, metavar="N",
                   help="images held out of the training set to select on (default: 10000 "
                        "for mnist); the test set is never loaded")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="evaluate on only the first N validation images (smoke runs)")
    add_config_args(p, skip=_skip(RUN_FIELDS) + ("val_split", "test_subset"))
    p.set_defaults(func=run)

    p = sub.add_parser("confirm", help="re-train the best trials and measure test accuracy",
                       description="Re-train a study's top trials (the Pareto front for pareto "
                                   "studies) on the full training set, once per seed; append "
                                   "a row per run to results/runs.csv.")
    _storage_args(p, study_required=True)
    p.add_argument("--top", type=int, default=3, metavar="K", help="default: 3")
    p.add_argument("--trials", type=int, nargs="+", default=None, metavar="N",
                   help="confirm these trial numbers instead of the top K (e.g. the smallest "
                        "model that reached the target on validation)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1], metavar="S", help="default: 1")
    add_jobs_arg(p, "runs")
    add_config_args(p, skip=_skip(CONFIRM_FIELDS))
    p.set_defaults(func=run_confirm)

    p = sub.add_parser("promote", help="print a trial as a named zoo member (Python source)",
                       description="Print the @register source that makes a trial a named zoo "
                                   "member (architecture, training recipe, where it was found); "
                                   "add it to models/champions.py.")
    _storage_args(p, study_required=True)
    p.add_argument("--trial", type=int, required=True, metavar="N")
    p.add_argument("--name", default=None,
                   help="member name (default: nas_<family>_<size>k)")
    p.set_defaults(func=run_promote)

    p = sub.add_parser("export", help="write a study's trials (and Pareto front) to files",
                       description="Write study.trials_dataframe() to <out>/<study>-trials.csv; "
                                   "for pareto studies also <study>-pareto.csv and .png.")
    _storage_args(p, study_required=True)
    p.add_argument("--out", type=Path, default=None,
                   help="folder (default: results/, or $NAS_RESULTS)")
    p.set_defaults(func=run_export)


class Stopper:
    """Optuna callback: stop after N trained trials of this worker or M in the whole study."""

    def __init__(self, n_trials: int | None, max_trials: int | None):
        self.n_trials, self.max_trials = n_trials, max_trials
        self.trained = 0
        self.rejected_in_a_row = 0
        self.why = ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if status_of(trial) == "rejected":
            self.rejected_in_a_row += 1
        else:
            self.trained, self.rejected_in_a_row = self.trained + 1, 0
        if self.n_trials and self.trained >= self.n_trials:
            self.why = f"this worker trained {self.trained} trials (--n-trials)"
        elif self.max_trials and study_trained(study) >= self.max_trials:
            self.why = f"the study holds {self.max_trials} trained trials (--max-trials)"
        elif self.rejected_in_a_row >= REJECTED_IN_A_ROW:
            self.why = f"{self.rejected_in_a_row} samples in a row were over the budget"
        if self.why:
            study.stop()


def study_trained(study: optuna.Study) -> int:
    return sum(status_of(t) in ("complete", "pruned", "failed")
               for t in study.get_trials(deepcopy=False))


def _positive(name: str, value) -> None:
    if value is not None and value <= 0:
        raise UserError(f"invalid option: --{name} must be positive (got {value})")


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the reporter logs every trial
    if args.task not in space.SPACES:
        raise UserError(f"no search space for task {args.task!r}; spaces: "
                        f"{', '.join(space.SPACES)}")
    for name in ("n_trials", "max_trials", "timeout", "heartbeat", "budget"):
        _positive(name.replace("_", "-"), getattr(args, name))
    jobs = parse_jobs(args.jobs)
    if (jobs or 1) > 1 and args.parallel > 1:
        raise UserError("invalid option: --jobs (trials side by side, for CPU) and --parallel "
                        "(trials in one vmapped step, for a GPU) do not combine; pick one")
    if args.budget > BUDGET:
        raise UserError(f"invalid option: --budget {args.budget:,} is over the zoo's budget of "
                        f"{BUDGET:,}; it can only tighten it")
    max_trials = args.max_trials
    if not (args.n_trials or max_trials or args.timeout):
        max_trials = DEFAULT_MAX_TRIALS
    base = config_from_args(args, task=args.task, progress=False,
                            seed=1 if args.seed is None else args.seed,
                            **{k: v for k, v in space.SEARCH_DEFAULTS.get(args.task, {}).items()
                               if getattr(args, k, None) is None})
    name = args.study or f"{args.task}-{args.objective}"
    settings = {"task": args.task, "objective": args.objective, "budget": args.budget,
                **{k: getattr(base, k) for k in ("epochs", "train_subset", "val_split",
                                                 "test_subset")}}
    storage = open_storage(args.storage, heartbeat=args.heartbeat)
    pruner = make_pruner(args.pruner if args.objective == "accuracy" else "none", base.epochs)
    study = open_study(storage, name, settings, make_sampler(args.sampler, args.seed), pruner)
    for source in args.warm_start:
        console.print(f"copied {warm_start(study, storage, source)} trained trials of study "
                      f"{source} (none if copied before)")
    if args.enqueue_zoo is not None:
        if args.task != "mnist":
            raise UserError("--enqueue-zoo is for the mnist task (the zoo's models)")
        queued = enqueue_zoo(study, base, args.budget, args.enqueue_zoo)
        console.print(f"queued {len(queued)} zoo members (skipped if already queued): "
                      f"{', '.join(queued)}")
    if max_trials and study_trained(study) >= max_trials:
        console.print(f"study {name} already holds {study_trained(study)} trained trials "
                      f"(--max-trials {max_trials}); nothing to do. Raise --max-trials to go on.")
        return 0
    jobs = resolve_jobs(jobs, resolve_device(base.device)) if args.parallel == 1 else 1
    base = for_jobs(base, jobs)
    if base.threads:
        torch.set_num_threads(base.threads)
    objective = Objective(base, args.objective, budget=args.budget)
    reporter = Reporter(study, n_trials=args.n_trials, max_trials=max_trials,
                        timeout=args.timeout, live=not args.no_live, console=console, jobs=jobs)
    objective.reporter = reporter
    data = objective.data()  # load once, before any trial starts (and fail early)
    with threads_while(fast_settings(base, objective.device).threads):  # as trials train
        where = device_name(objective.device)
    console.print(f"study {name} in {safe_url(storage.url)}: {len(study.trials)} trials so far; "
                  f"{args.objective}, {base.epochs} epochs, {len(data.train):,} training / "
                  f"{len(data.val):,} validation images (test set not loaded), "
                  f"{where}" + (f", {jobs} trials at a time" if jobs > 1 else ""))
    stopper = Stopper(args.n_trials, max_trials)
    callbacks = [reporter.trial_finished, stopper]
    func = group_objective(objective, args.parallel, callbacks, (DivergedError,))
    try:
        with reporter, stop_on_ctrl_c(objective.stop if jobs > 1 else None):
            study.optimize(func, timeout=args.timeout, catch=(DivergedError,),
                           callbacks=callbacks, n_jobs=jobs)
    except KeyboardInterrupt:
        for number in sorted(objective.running):
            _requeue(study, number, console)
        return 130
    reporter.summary()
    console.print(f"stopped: {stopper.why or 'timeout reached'}. Run the same command to go on; "
                  f"`python -m search export --study {name}` writes the trials to CSV.")
    return 0


def _requeue(study: optuna.Study, number: int | None, console: Console) -> None:
    """After Ctrl-C: fail the interrupted trial and queue its parameters for the next run."""
    note = ""
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None and trial.state == optuna.trial.TrialState.RUNNING:
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if trial is not None and status_of(trial) == "failed":
        retry(study, trial)
        note = f" trial {number} was failed and queued again;"
    Console(stderr=True, soft_wrap=True).print(
        f"[yellow]interrupted:[/yellow]{note} run the same command to resume study "
        f"{study.study_name}.")


def run_confirm(args: argparse.Namespace) -> int:
    _positive("top", args.top)
    jobs = parse_jobs(args.jobs)
    overrides = {f: getattr(args, f) for f in CONFIRM_FIELDS if getattr(args, f) is not None}
    Config(**overrides)  # check the options before any training
    study = load_study(open_storage(args.storage, create=False), args.study)
    confirm(study, args.top, args.seeds, overrides, numbers=args.trials, jobs=jobs)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    study = load_study(open_storage(args.storage, create=False), args.study)
    print(promote(study, args.trial, args.name), end="")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from benchmarks import results

    study = load_study(open_storage(args.storage, create=False), args.study)
    for path in export(study, args.out or Path(results.RESULTS_DIR)):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    return run_command(lambda: args.func(args), interrupted="interrupted")

if __name__ == "__main__":
    sys.exit(main())
