"""The objective: sample a trial, count it against the budget, train it, record what happened.

Each trial's user attributes (what `export` and optuna-dashboard show): status (complete,
pruned, rejected, diverged, interrupted, failed), reason, arch, family, params, macs,
val_acc_per_epoch, seconds, device, device_name. Only the validation split is ever loaded
here: the test set is left for `confirm`, so it can never steer the search.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import optuna
from torch import nn

from benchmarks.harness.config import Config
from benchmarks.harness.device import device_name, resolve_device
from benchmarks.harness.fast import fast_settings
from benchmarks.harness.runs import signals_held, stop_hook
from benchmarks.harness.train import seeded
from benchmarks.tasks import get_task
from benchmarks.tasks.run import run_one
from errors import DivergedError, UserError
from models import ArchError, Net, OverBudgetError, build, count_params

from . import space


class Rejected(optuna.TrialPruned):
    """A sample over the parameter budget: recorded as such, never trained."""


def make_model(cfg: Config, budget: int | None = None) -> nn.Module:
    """The task's model for `cfg`, counted against the zoo budget and, for zoo nets, against a
    search's tighter `budget` (`search run --budget`); raises OverBudgetError when over."""
    model = get_task(cfg.task).make_model(cfg)
    n = count_params(model)
    if budget is not None and isinstance(model, Net) and n > budget:
        raise OverBudgetError(f"{cfg.model} has {n:,} parameters, over the search's budget "
                              f"of {budget:,}")
    return model


def prepare(trial, base: Config, budget: int | None = None) -> tuple[Config, nn.Module]:
    """Sample the trial's Config and build its model; reject it at once when over budget.

    This is the only way a trial reaches training, so nothing over the budget is ever trained.
    """
    cfg = dataclasses.replace(base, **space.suggest(trial, base.task))
    trial.set_user_attr("arch", cfg.model)
    trial.set_user_attr("family", trial.params.get("family", "custom"))
    try:
        with seeded(cfg.seed):  # the same sample starts from the same weights
            model = make_model(cfg, budget)
    except (OverBudgetError, ArchError) as e:
        try:
            trial.set_user_attr("params", count_params(build(cfg.model)))
        except ArchError:
            pass  # an invalid string has no count to record; the reason says why
        trial.set_user_attr("status", "rejected")
        trial.set_user_attr("reason", str(e))
        raise Rejected(str(e)) from None
    trial.set_user_attr("params", count_params(model))
    if getattr(model, "arch", cfg.model) != cfg.model:  # e.g. resnet18-layer4-imagenet
        trial.set_user_attr("arch", model.arch)
    return cfg, model


class Objective:
    """Callable for `study.optimize`; loads the task's data once per worker process."""

    def __init__(self, base: Config, objective: str = "accuracy", reporter=None,
                 budget: int | None = None):
        self.base = base
        self.budget = budget  # None: the zoo's BUDGET only
        self.pareto = objective == "pareto"
        self.reporter = reporter
        self.task = get_task(base.task)
        self.device = resolve_device(base.device)
        # Trials started here and not finished (or stopped by Ctrl-C): what to requeue.
        self.running: set[int] = set()
        self.stop = threading.Event()  # set on Ctrl-C: trials in other threads stop too
        self._data = None

    def data(self):
        """Train and validation splits on the device; the test set is never loaded."""
        if self._data is None:
            data = self.task.load_data(self.base, self.device, with_test=False)
            if data.val is None:
                raise UserError("the search selects on a validation split; "
                                "set --val-split to a positive number of images")
            self._data = data
        return self._data

    def __call__(self, trial: optuna.Trial):
        start = time.perf_counter()
        cfg, model = prepare(trial, self.base, self.budget)
        data = self.data()
        params = trial.user_attrs["params"]
        stats = self.task.profile(model, cfg)  # torchinfo, once: before training, and the row's
        trial.set_user_attr("macs", stats["macs"])
        if self.reporter:
            self.reporter.trial_started(trial.number, trial.user_attrs["arch"], params,
                                        cfg.epochs)
        curve: list[float] = []
        check_stop = stop_hook(self.stop)  # Ctrl-C reaches trials in other threads this way

        def on_epoch(epoch: int, record: dict) -> None:
            check_stop(epoch, record)
            curve.append(record["val_acc"])
            # A Ctrl-C inside a storage write could leave its transaction (and SQLite's lock)
            # open, and the writes that fail and requeue the trial would wait on it: it is
            # delivered once the writes are done.
            with signals_held():
                trial.set_user_attr("val_acc_per_epoch", curve)
                # Optuna prunes single-objective studies only. Pruning saves the epochs still
                # to come; a trial that trained them all has its value, and completes (a
                # one-epoch study would otherwise prune some).
                if not self.pareto:
                    trial.report(record["val_acc"], epoch)
                prune = not self.pareto and epoch < cfg.epochs and trial.should_prune()
            if self.reporter:
                self.reporter.epoch(trial.number, epoch, record["val_acc"], record["seconds"])
            if prune:
                raise optuna.TrialPruned(f"val acc {record['val_acc']:.2f}% at epoch {epoch}")

        status, reason = "failed", None
        self.running.add(trial.number)
        try:
            run_one(self.task, cfg, data, results=False, on_epoch=on_epoch, model=model,
                    stats=stats, source=f"search trial {trial.number}")
            status = "complete"
        except optuna.TrialPruned as e:
            status, reason = "pruned", str(e)
            raise
        except DivergedError as e:  # optimize(catch=DivergedError) fails it; the study goes on
            status, reason = "diverged", str(e)
            raise
        except KeyboardInterrupt:
            status, reason = "interrupted", "stopped by Ctrl-C"
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            raise
        finally:
            if status != "interrupted":
                self.running.discard(trial.number)
            with signals_held():
                trial.set_user_attr("status", status)
                if reason:
                    trial.set_user_attr("reason", reason)
                trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
                trial.set_user_attr("device", self.device.type)
                trial.set_user_attr("device_name", device_name(self.device,
                                                               fast_settings(cfg, self.device)))
        acc = trial.user_attrs["val_acc_per_epoch"][-1]  # the row's final_val_acc
        return (acc, params) if self.pareto else acc
