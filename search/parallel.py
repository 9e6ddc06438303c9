"""`python -m search run --parallel K`: K trials of one architecture trained at once (issue 5).

A group starts from one trial sampled in full, the leader. K-1 followers are enqueued with the
leader's architecture and batch size fixed, so the sampler picks their training choices (lr,
momentum, weight decay, schedule, augmentation, ...); benchmarks.parallel.train_group then
trains all K in one vmapped step. That pays where one small model leaves the device idle (a
GPU); on the CPU it measured slower than one trial after another, so the default is 1.

Every trial still runs the unchanged Objective (sampling, budget check, user attributes,
pruning, the live view), each in its own thread; the threads meet in GroupTask.run_one, where
the last to arrive trains the group and each gets back its own result. The leader is
study.optimize's own trial; the followers are told here, with the same callbacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import optuna
import torch
from optuna.trial import TrialState

from benchmarks.parallel import train_group
from benchmarks.results import make_row
from models import ArchError, OverBudgetError, UserError, family_of
from models.report import profile

from . import space
from .objective import make_model

try:  # keeps a follower's heartbeat like study.optimize does for its own trial
    from optuna.storages._heartbeat import get_heartbeat_thread
except ImportError:  # pragma: no cover - a future Optuna without it
    get_heartbeat_thread = None

PARALLEL_TASKS = ("mnist",)  # tasks whose trials of one architecture share epochs and batch


def group_objective(objective, k: int, callbacks: list, catch: tuple):
    """The objective study.optimize should call: `objective` itself for K = 1."""
    if k < 1:
        raise UserError(f"invalid option: --parallel must be at least 1 (got {k})")
    if k == 1:
        return objective
    if objective.base.task not in PARALLEL_TASKS:
        raise UserError(f"--parallel trains trials of one architecture together; the "
                        f"{objective.base.task} task's trials differ in epochs, so use 1")
    return GroupObjective(objective, k, callbacks, catch)


class GroupObjective:
    """Each call trains a group: the leader (returned to study.optimize) and K-1 followers."""

    def __init__(self, objective, k: int, callbacks: list, catch: tuple):
        self.objective, self.k, self.callbacks, self.catch = objective, k, callbacks, catch

    def __call__(self, leader: optuna.Trial):
        study = leader.study
        followers, strays = self._followers(study, leader)
        with contextlib.ExitStack() as beats:
            for t in followers + strays:
                if get_heartbeat_thread is not None:
                    beats.enter_context(get_heartbeat_thread(t._trial_id, study._storage))
            outcomes = self._run([leader, *followers]) if followers else \
                [_outcome(self.objective, leader)]
            for t in strays:  # another worker took our enqueued trial: these run alone
                outcomes.append(_outcome(self.objective, t))
            errors = [self._tell(study, t, o) for t, o in zip(followers + strays, outcomes[1:])]
        lead = outcomes[0]
        if isinstance(lead, BaseException):
            raise lead
        for e in errors:
            if e is not None:
                raise e
        return lead

    def _followers(self, study, leader) -> tuple[list, list]:
        """Ask K-1 trials sharing the leader's architecture and batch size."""
        base = self.objective.base
        # The values the Objective's own prepare() will see (a trial repeats its suggestions).
        cfg = dataclasses.replace(base, **space.suggest(leader, base.task))
        try:
            make_model(cfg, self.objective.budget)
        except (OverBudgetError, ArchError):
            return [], []  # the leader is rejected untrained, as usual; no group
        probe = optuna.trial.FixedTrial(leader.params)
        space.suggest_architecture(probe)
        fixed = {**probe.params, "batch_size": cfg.batch_size}
        followers, strays = [], []
        for _ in range(self.k - 1):
            study.enqueue_trial(fixed, user_attrs={"group_of": leader.number})
            trial = study.ask()
            mine = dataclasses.replace(base, **space.suggest(trial, base.task))
            same = (mine.model, mine.batch_size) == (cfg.model, cfg.batch_size)
            (followers if same else strays).append(trial)
        return followers, strays

    def _run(self, trials: list) -> list:
        """Run the Objective on every trial, each in a thread; they train as one group."""
        group = GroupTask(self.objective.task, len(trials))
        outcomes: list = [None] * len(trials)

        def work(i: int, trial) -> None:
            try:
                outcomes[i] = _outcome(self.objective, trial)
            finally:
                group.done()

        self.objective.task = group
        try:
            threads = []
            for i, trial in enumerate(trials):
                # One at a time up to training: prepare() seeds torch's global generator.
                threads.append(threading.Thread(target=work, args=(i, trial), daemon=True))
                threads[-1].start()
                group.wait_settled(i + 1)
            for t in threads:
                t.join()
        finally:
            self.objective.task = group.task
        return outcomes

    def _tell(self, study, trial, outcome) -> BaseException | None:
        """Tell a follower's outcome the way study.optimize tells its own trial."""
        if isinstance(outcome, optuna.TrialPruned):
            frozen = study.tell(trial, state=TrialState.PRUNED)
        elif isinstance(outcome, BaseException):
            frozen = study.tell(trial, state=TrialState.FAIL)
        else:
            frozen = study.tell(trial, outcome)
        for callback in self.callbacks:
            callback(study, frozen)
        fatal = isinstance(outcome, BaseException) and not isinstance(
            outcome, (optuna.TrialPruned, *self.catch))
        return outcome if fatal else None


def _outcome(objective, trial):
    try:
        return objective(trial)
    except BaseException as e:  # noqa: BLE001 - handed to the caller, who tells or re-raises
        return e


class GroupTask:
    """Stands in for the task module while a group runs: each trial's run_one waits here
    until every thread has arrived (or ended without training), then one train_group trains
    them all and each run_one returns its own row, or raises its own exception."""

    def __init__(self, task, expected: int):
        self.task, self.expected = task, expected
        self.cond = threading.Condition()
        self.members: list[tuple] = []  # (cfg, model, on_epoch, source, stats)
        self.arrived: set[int] = set()
        self.left = 0
        self.data = None
        self.training = False
        self.results: list | None = None

    def __getattr__(self, name: str):  # load_data, make_model: the task's own
        return getattr(self.task, name)

    def wait_settled(self, n: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: len(self.members) + self.left >= n)

    def run_one(self, cfg, data, *, results=None, source: str = "", on_epoch=None, model=None):
        stats = profile(model)  # torchinfo, on the CPU, before training (as run_one does)
        with self.cond:
            me = len(self.members)
            self.members.append((cfg, model, on_epoch, source, stats))
            self.arrived.add(threading.get_ident())
            self.data = data
            self.cond.notify_all()
        self._train_if_all_here()
        with self.cond:
            self.cond.wait_for(lambda: self.results is not None)
        outcome = self.results[me]
        if isinstance(outcome, BaseException):
            raise outcome
        row = make_row(cfg, outcome, arch=model.arch, family=family_of(cfg.model),
                       params=stats["params"], macs=stats["macs"], source=source)
        return {**row, "_result": outcome, "_model": model}

    def done(self) -> None:
        """A thread's Objective call ended; if it never reached run_one, stop waiting for it."""
        with self.cond:
            if threading.get_ident() not in self.arrived:
                self.left += 1
                self.cond.notify_all()
        self._train_if_all_here()

    def _train_if_all_here(self) -> None:
        with self.cond:
            if self.training or len(self.members) + self.left < self.expected:
                return
            self.training = True
        cfgs, models, hooks = ([m[i] for m in self.members] for i in range(3))
        if cfgs:
            torch.manual_seed(cfgs[0].seed)  # dropout's draws, as run_one seeds them
        try:
            results = train_group(models, cfgs, self.data, hooks) if models else []
        except Exception as e:  # noqa: BLE001 - every member reports the group's failure
            results = [e] * len(models)
        with self.cond:
            self.results = results
            self.cond.notify_all()
