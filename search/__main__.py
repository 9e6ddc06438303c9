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
import math
import os
import sys
from pathlib import Path

import optuna
import torch
from rich.console import Console

from benchmarks.harness.config import Config, add_config_args, config_from_args
from benchmarks.harness.fast import fast_settings, threads_while
from benchmarks.harness.runs import (
    add_jobs_arg,
    for_jobs,
    parse_jobs,
    resolve_jobs,
    run_command,
    stop_on_ctrl_c,
)
from benchmarks.harness.train import DivergedError, device_name, resolve_device
from benchmarks.tasks import get_task
from models import BUDGET, UserError

from . import space
from .live import Reporter
from .objective import Objective
from .publish import confirm, enqueue_zoo, export, promote
from .study import (
    DEFAULT_HEARTBEAT,
    OBJECTIVES,
    PRUNERS,
    SAMPLERS,
    check_study_name,
    check_warm_start,
    load_study,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    peek_study,
    retry,
    safe_url,
    sampler_seed,
    status_of,
    suggest_study_name,
    warm_start,
)

DEFAULT_MAX_TRIALS = 100  # when no --n-trials, --max-trials or --timeout is given
REJECTED_IN_A_ROW = 500  # stop if the sampler finds nothing under the budget this many times
MAX_SECONDS = 10 * 365 * 86400  # a --timeout or --heartbeat beyond ten years is a typo
SEED_LIMIT = 2**31 - 1  # what numpy (the samplers) and torch (training) both take
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
    # --parallel K once trained K trials in one vmapped step (a second training loop, 0.48-1.03x
    # on CPU); trials at once now always run side by side through the one train(): --jobs K.
    p.add_argument("--parallel", type=int, default=None, metavar="K", help=argparse.SUPPRESS)
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


def _positive(name: str, value, most: float = math.inf) -> None:
    """Refuse an option that is given and not a positive number up to `most`: NaN and the
    infinities too (NaN passes every comparison's `not`, and --timeout inf never stops)."""
    if value is None:
        return
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"invalid option: --{name} must be a positive number (got {value})")
    if value > most:
        raise UserError(f"invalid option: --{name} must be at most {most:,} (got {value:,})")


def _seeds(option: str, seeds) -> None:
    for seed in [seeds] if isinstance(seeds, int) else seeds or []:
        if not 0 <= seed <= SEED_LIMIT:
            raise UserError(f"invalid option: {option} must be in [0, {SEED_LIMIT:,}] "
                            f"(got {seed})")


def _default_settings(task: str, objective: str) -> dict:
    """The pinned settings of a run given no option that changes them."""
    ref = config_from_args(argparse.Namespace(), task=task, **get_task(task).SEARCH_DEFAULTS)
    return {"task": task, "objective": objective, "budget": BUDGET,
            **{k: getattr(ref, k) for k in ("epochs", "train_subset", "val_split", "test_subset")}}


class _NoQueue:
    """Stands in for the study while checking --enqueue-zoo NAMEs: enqueue_zoo refuses a name
    before it queues any, so a run with this one checks them all and queues nothing."""

    def enqueue_trial(self, *args, **kwargs) -> None:
        pass


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the reporter logs every trial
    if args.task not in space.SPACES:
        raise UserError(f"no search space for task {args.task!r}; spaces: "
                        f"{', '.join(space.SPACES)}")
    for name in ("n_trials", "max_trials", "budget"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _positive("timeout", args.timeout, MAX_SECONDS)
    _positive("heartbeat", args.heartbeat, 86400)
    _seeds("--seed", args.seed)
    if args.parallel is not None and args.jobs != "1":
        raise UserError("invalid option: --parallel is the old name of --jobs; give one of them")
    jobs = parse_jobs(args.jobs if args.parallel is None else str(args.parallel))
    if args.budget > BUDGET:
        raise UserError(f"invalid option: --budget {args.budget:,} is over the zoo's budget of "
                        f"{BUDGET:,}; it can only tighten it")
    max_trials = args.max_trials
    if not (args.n_trials or max_trials or args.timeout):
        max_trials = DEFAULT_MAX_TRIALS
    base = config_from_args(args, task=args.task, progress=False,
                            seed=1 if args.seed is None else args.seed,
                            **{k: v for k, v in get_task(args.task).SEARCH_DEFAULTS.items()
                               if getattr(args, k, None) is None})
    # Every check comes before the study is created or pinned (issue 18): a refused run leaves
    # the storage as it was, and the same command with the mistake fixed then runs.
    name = check_study_name(f"{args.task}-{args.objective}" if args.study is None
                            else args.study)
    for source in args.warm_start:
        check_study_name(source, "--warm-start")
    settings = {"task": args.task, "objective": args.objective, "budget": args.budget,
                **{k: getattr(base, k) for k in ("epochs", "train_subset", "val_split",
                                                 "test_subset")}}
    if args.enqueue_zoo is not None and not get_task(args.task).ZOO:
        raise UserError(f"--enqueue-zoo queues the zoo's models; the {args.task} task has none")
    if args.enqueue_zoo:  # the names given: each a member that can be queued
        enqueue_zoo(_NoQueue(), base, args.budget, args.enqueue_zoo)
    storage = open_storage(args.storage, heartbeat=args.heartbeat)
    known = peek_study(storage, name, settings,
                       hint=suggest_study_name(settings, _default_settings(args.task,
                                                                           args.objective)))
    for source in args.warm_start:
        if known is None or source not in known.user_attrs.get("warm_start", []):
            check_warm_start(storage, source, settings, name)
    if (known is not None and max_trials and study_trained(known) >= max_trials
            and not args.warm_start and args.enqueue_zoo is None):  # done: load no data
        console.print(f"study {name} already holds {study_trained(known)} trained trials "
                      f"(--max-trials {max_trials}); nothing to do. Raise --max-trials to go on.")
        return 0
    jobs = resolve_jobs(jobs, resolve_device(base.device))
    base = for_jobs(base, jobs)
    if base.threads:
        torch.set_num_threads(base.threads)
    objective = Objective(base, args.objective, budget=args.budget)
    data = objective.data()  # load once, before any trial starts (and fail early)
    # Every check has passed: only now is the study created (or resumed) and pinned. Its
    # sampler's seed comes from --seed and the trials the study already holds, so a worker
    # restarted with the same --seed samples anew instead of repeating its first run.
    pruner = make_pruner(args.pruner if args.objective == "accuracy" else "none", base.epochs)
    sampler = make_sampler(args.sampler, sampler_seed(args.seed, len(known.trials) if known
                                                      else 0))
    study = open_study(storage, name, settings, sampler, pruner)
    for source in args.warm_start:
        console.print(f"copied {warm_start(study, storage, source)} trained trials of study "
                      f"{source} (none if copied before)")
    if args.enqueue_zoo is not None:
        queued = enqueue_zoo(study, base, args.budget, args.enqueue_zoo)
        console.print(f"queued {len(queued)} zoo members (skipped if already queued): "
                      f"{', '.join(queued)}")
    if max_trials and study_trained(study) >= max_trials:
        console.print(f"study {name} already holds {study_trained(study)} trained trials "
                      f"(--max-trials {max_trials}); nothing to do. Raise --max-trials to go on.")
        return 0
    reporter = Reporter(study, n_trials=args.n_trials, max_trials=max_trials,
                        timeout=args.timeout, live=not args.no_live, console=console, jobs=jobs)
    objective.reporter = reporter
    with threads_while(fast_settings(base, objective.device).threads):  # as trials train
        where = device_name(objective.device)
    console.print(f"study {name} in {safe_url(storage.url)}: {len(study.trials)} trials so far; "
                  f"{args.objective}, {base.epochs} epochs, {len(data.train):,} training / "
                  f"{len(data.val):,} validation images (test set not loaded), "
                  f"{where}" + (f", {jobs} trials at a time" if jobs > 1 else ""))
    stopper = Stopper(args.n_trials, max_trials)
    callbacks = [reporter.trial_finished, stopper]
    try:
        with reporter, stop_on_ctrl_c(objective.stop if jobs > 1 else None):
            study.optimize(objective, timeout=args.timeout, catch=(DivergedError,),
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
    check_study_name(args.study)
    _positive("top", args.top)
    _seeds("--seeds", args.seeds)
    jobs = parse_jobs(args.jobs)
    overrides = {f: getattr(args, f) for f in CONFIRM_FIELDS if getattr(args, f) is not None}
    Config(**overrides)  # check the options before any training
    study = load_study(open_storage(args.storage, create=False), args.study)
    confirm(study, args.top, args.seeds, overrides, numbers=args.trials, jobs=jobs)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    check_study_name(args.study)
    if args.name is not None and not (args.name.isidentifier() and args.name.isascii()):
        raise UserError(f"invalid option: --name {args.name!r} must be a Python name (it "
                        "becomes the member's function), e.g. nas_plain_9k")
    study = load_study(open_storage(args.storage, create=False), args.study)
    print(promote(study, args.trial, args.name), end="")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from benchmarks.harness import results

    check_study_name(args.study)  # it names the files: never a path out of --out
    study = load_study(open_storage(args.storage, create=False), args.study)
    out = args.out or Path(results.RESULTS_DIR)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "the folder is read-only for this user")
        written = export(study, out)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        if isinstance(e, UserError) or not isinstance(e, OSError) and "null" not in str(e):
            raise
        raise UserError(f"cannot write the export under {out}: "
                        f"{getattr(e, 'strerror', None) or e}") from None
    for path in written:
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
