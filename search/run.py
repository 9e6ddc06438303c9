"""`python -m search run`: search (or resume) a study, as many workers as there are.

`plan` checks every option and decides what the run does, touching nothing; `execute` carries
it out. Its `start` checks the storage and the data before it creates (or resumes) and pins the
study, warm-starts it and queues zoo members, so a refused run leaves the storage as it was and
a SQLite file not there yet uncreated; then trials are sampled, counted (over the budget:
rejected untrained), trained on the validation split through the harness's one train() and
pruned between epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

import optuna
import torch
from rich.console import Console

from benchmarks.harness.cli import check_positive, check_seeds, parse_jobs
from benchmarks.harness.config import Config
from benchmarks.harness.device import device_name, resolve_device
from benchmarks.harness.fast import fast_settings, threads_while
from benchmarks.harness.runs import for_jobs, resolve_jobs, stop_on_ctrl_c
from benchmarks.tasks import config_from_args, get_task
from errors import DivergedError, UserError
from models import BUDGET

from . import space
from .live import Reporter
from .objective import Objective
from .publish import enqueue_zoo
from .storage import default_storage, open_storage, retry, safe_url
from .study import (
    DEFAULT_MAX_TRIALS,
    check_study_name,
    check_warm_start,
    make_pruner,
    make_sampler,
    open_study,
    peek_study,
    pinned_settings,
    sampler_seed,
    status_of,
    suggest_study_name,
    warm_start,
)

REJECTED_IN_A_ROW = 500  # stop if the sampler finds nothing under the budget this many times
MAX_SECONDS = 10 * 365 * 86400  # a --timeout or --heartbeat beyond ten years is a typo


class Stopper:
    """Optuna callback: stop after N trained trials of this worker or M in the whole study.
    With --jobs K, the trials this worker is still training count towards N: it stops starting
    trials once those will make N, instead of starting one per thread that frees up."""

    def __init__(self, n_trials: int | None, max_trials: int | None,
                 running: set[int] | frozenset[int] = frozenset()):
        self.n_trials, self.max_trials, self.running = n_trials, max_trials, running
        self.trained = 0
        self.rejected_in_a_row = 0
        self.why = ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if status_of(trial) == "rejected":
            self.rejected_in_a_row += 1
        else:
            self.trained, self.rejected_in_a_row = self.trained + 1, 0
        if self.n_trials and self.trained + len(self.running) >= self.n_trials:
            self.why = f"this worker trained {self.n_trials} trials (--n-trials)"
        elif self.max_trials and study_trained(study) >= self.max_trials:
            self.why = f"the study holds {self.max_trials} trained trials (--max-trials)"
        elif self.rejected_in_a_row >= REJECTED_IN_A_ROW:
            self.why = f"{self.rejected_in_a_row} samples in a row were over the budget"
        if self.why:
            study.stop()


def study_trained(study: optuna.Study) -> int:
    return sum(status_of(t) in ("complete", "pruned", "failed")
               for t in study.get_trials(deepcopy=False))


class _NoQueue:
    """Stands in for the study while checking --enqueue-zoo NAMEs: enqueue_zoo refuses a name
    before it queues any, so a run with this one checks them all and queues nothing."""

    def enqueue_trial(self, *args, **kwargs) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class Plan:
    """A `search run` with every option checked: the study (its name and the settings it is
    pinned to) in which storage, what goes into it first, how each trial trains, and what
    stops the run. Only data: making one opens, loads and writes nothing."""

    study: str
    settings: dict  # study.PINNED: task, objective, budget, space version, epochs, data split
    storage: str | None  # None: the default storage
    base: Config  # every trial's Config before the search space's choices
    jobs: int  # trials at a time
    sampler: str
    pruner: str
    seed: int | None
    heartbeat: int | None
    warm_start: tuple[str, ...] = ()  # studies whose trained trials are copied in, once each
    enqueue_zoo: tuple[str, ...] | None = None  # None: queue nothing; (): every member that fits
    n_trials: int | None = None
    max_trials: int | None = None
    timeout: float | None = None
    live: bool = True


def plan(args: argparse.Namespace) -> Plan:
    """Check every option of `search run` and decide what the run does. Nothing is opened
    or written here, so a refused run leaves the storage as it was, and the same command with
    the mistake fixed then runs."""
    if args.task not in space.SPACES:
        raise UserError(f"no search space for task {args.task!r}; spaces: "
                        f"{', '.join(space.SPACES)}")
    for name in ("n_trials", "max_trials", "budget"):
        check_positive(name.replace("_", "-"), getattr(args, name))
    check_positive("timeout", args.timeout, MAX_SECONDS)
    check_positive("heartbeat", args.heartbeat, 86400)
    check_seeds("--seed", args.seed)
    jobs = parse_jobs(args.jobs)
    budget = BUDGET if args.budget is None else args.budget
    if budget > BUDGET:
        raise UserError(f"invalid option: --budget {budget:,} is over the zoo's budget of "
                        f"{BUDGET:,}; it can only tighten it")
    max_trials = args.max_trials
    if not (args.n_trials or max_trials or args.timeout):
        max_trials = DEFAULT_MAX_TRIALS
    base = config_from_args(args, task=args.task, progress=False,
                            seed=1 if args.seed is None else args.seed,
                            **{k: v for k, v in get_task(args.task).SEARCH_DEFAULTS.items()
                               if getattr(args, k, None) is None})
    name = check_study_name(f"{args.task}-{args.objective}" if args.study is None
                            else args.study)
    for source in args.warm_start:
        check_study_name(source, "--warm-start")
    if args.enqueue_zoo is not None and not get_task(args.task).ZOO:
        raise UserError(f"--enqueue-zoo queues the zoo's models; the {args.task} task has none")
    if args.enqueue_zoo:  # the names given: each a member that can be queued
        enqueue_zoo(_NoQueue(), base, budget, args.enqueue_zoo)
    jobs = resolve_jobs(jobs, resolve_device(base.device))
    return Plan(study=name, settings=pinned_settings(args.task, args.objective, budget, base),
                storage=args.storage, base=for_jobs(base, jobs), jobs=jobs,
                sampler=args.sampler, pruner=args.pruner, seed=args.seed,
                heartbeat=args.heartbeat, warm_start=tuple(args.warm_start),
                enqueue_zoo=None if args.enqueue_zoo is None else tuple(args.enqueue_zoo),
                n_trials=args.n_trials, max_trials=max_trials, timeout=args.timeout,
                live=not args.no_live)


def run(args: argparse.Namespace) -> int:
    """`python -m search run`: plan the run, then execute it."""
    return execute(plan(args))


def execute(plan: Plan) -> int:
    """Open the plan's study (start), then train trials until a limit stops the run."""
    console = Console(highlight=False, soft_wrap=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the reporter logs every trial
    if plan.base.threads:
        torch.set_num_threads(plan.base.threads)
    objective = Objective(plan.base, plan.settings["objective"], budget=plan.settings["budget"])
    study = start(plan, objective, console)
    if study is None:
        return 0
    reporter = Reporter(study, n_trials=plan.n_trials, max_trials=plan.max_trials,
                        timeout=plan.timeout, live=plan.live, console=console, jobs=plan.jobs)
    objective.reporter = reporter
    data, base, jobs = objective.data(), plan.base, plan.jobs
    fast = fast_settings(base, objective.device)
    with threads_while(fast.threads):  # as trials train
        where = device_name(objective.device, fast)
    console.print(f"study {plan.study} in {safe_url(plan.storage or default_storage())}: "
                  f"{len(study.trials)} trials so far; {plan.settings['objective']}, "
                  f"{base.epochs} epochs, {len(data.train):,} training / {len(data.val):,} "
                  f"validation images (test set not loaded), {where}"
                  + (f", {jobs} trials at a time" if jobs > 1 else ""))
    stopper = Stopper(plan.n_trials, plan.max_trials, objective.running)
    callbacks = [reporter.trial_finished, stopper]
    try:
        with reporter, stop_on_ctrl_c(objective.stop if jobs > 1 else None):
            study.optimize(objective, timeout=plan.timeout, catch=(DivergedError,),
                           callbacks=callbacks, n_jobs=jobs)
    except KeyboardInterrupt:
        for number in sorted(objective.running):
            _requeue(study, number, console)
        return 130
    reporter.summary()
    # The hint names the storage it used: without it, export would read the default database,
    # which may hold a committed study of the same name.
    where = f" --storage {shlex.quote(safe_url(plan.storage))}" if plan.storage else ""
    console.print(f"stopped: {stopper.why or 'timeout reached'}. Run the same command to go on; "
                  f"`python -m search export --study {plan.study}{where}` writes the trials to "
                  "CSV.", soft_wrap=True)
    return 0


def start(plan: Plan, objective: Objective, console: Console) -> optuna.Study | None:
    """The plan's study, created or resumed, pinned to its settings, warm-started and queued;
    None when it already holds --max-trials trained trials. The storage and the data are
    checked before anything is written: a refused run leaves the storage as it was, and a
    SQLite file not there yet uncreated."""
    name, settings = plan.study, plan.settings
    if _new_sqlite(plan.storage):  # opening it creates the file and its folders: check first
        if plan.warm_start:
            raise UserError(f"--warm-start {plan.warm_start[0]}: no study named "
                            f"{plan.warm_start[0]!r}; the storage "
                            f"{safe_url(plan.storage or default_storage())} does not "
                            "exist yet")
        objective.data()  # the data a run needs, before there is a database to leave behind
    storage = open_storage(plan.storage, heartbeat=plan.heartbeat)
    known = peek_study(storage, name, settings, hint=suggest_study_name(settings))
    for source in plan.warm_start:
        if known is None or source not in known.user_attrs.get("warm_start", []):
            check_warm_start(storage, source, settings, name)
    if (known is not None and not plan.warm_start and plan.enqueue_zoo is None
            and _holds_enough(plan, known)):  # done: load no data
        return _nothing_to_do(plan, known, console)
    objective.data()  # load once, before any trial starts (and fail early)
    # Only now is the study created (or resumed) and pinned. Its sampler's seed comes from
    # --seed and the trials the study already holds, so a worker restarted with the same
    # --seed samples anew instead of repeating its first run.
    pruner = make_pruner(plan.pruner if settings["objective"] == "accuracy" else "none",
                         plan.base.epochs)
    sampler = make_sampler(plan.sampler, sampler_seed(plan.seed, len(known.trials) if known
                                                      else 0))
    study = open_study(storage, name, settings, sampler, pruner)
    for source in plan.warm_start:
        console.print(f"copied {warm_start(study, storage, source)} trained trials of study "
                      f"{source} (none if copied before)")
    if plan.enqueue_zoo is not None:
        queued = enqueue_zoo(study, plan.base, settings["budget"], list(plan.enqueue_zoo))
        console.print(f"queued {len(queued)} zoo members (skipped if already queued): "
                      f"{', '.join(queued)}")
    return _nothing_to_do(plan, study, console) if _holds_enough(plan, study) else study


def _holds_enough(plan: Plan, study: optuna.Study) -> bool:
    return bool(plan.max_trials) and study_trained(study) >= plan.max_trials


def _nothing_to_do(plan: Plan, study: optuna.Study, console: Console) -> None:
    console.print(f"study {plan.study} already holds {study_trained(study)} trained trials "
                  f"(--max-trials {plan.max_trials}); nothing to do. Raise --max-trials to go on.")


def _new_sqlite(url: str | None) -> bool:
    """Whether opening `url` (None: the default) would create a SQLite file (and folders):
    it is not there yet, and the nearest folder on its path that is there could hold it (if
    not, open_storage refuses it, creating nothing)."""
    url = url or default_storage()
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return False
    path = Path(url[len("sqlite:///"):].split("?")[0])
    if path.exists():
        return False
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.is_dir()


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
