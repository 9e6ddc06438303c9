"""Progress of a running search: a rich live panel on a terminal, plain log lines elsewhere.

The panel shows the study's trial counts (all workers), the best trial so far, the trial this
worker is training and its epoch, and an estimate of the time left. Finished trials are also
printed one line each, so a worker's log (or a pipe) tells the same story without the panel.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import optuna
from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from models.report import unwrapped

from .study import status_of, tally

STATES = ("complete", "pruned", "rejected", "failed", "running", "waiting")


def _duration(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=round(seconds)))


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """One line about a finished trial: status, accuracy or reason, size, time, architecture."""
    a = trial.user_attrs
    status = status_of(trial)
    curve = a.get("val_acc_per_epoch") or []
    parts = [f"trial {trial.number:>4} {status:<8}"]
    if status == "complete":
        parts.append(f"val {curve[-1]:.2f}%")
    elif status == "pruned":
        parts.append(f"at epoch {len(curve)}" + (f", val {curve[-1]:.2f}%" if curve else ""))
    if a.get("params") is not None:
        parts.append(f"{a['params']:,} params")
    if a.get("seconds") is not None:
        parts.append(f"{a['seconds']:.1f} s")
    if status == "rejected":
        parts.append("over the budget, not trained" if a.get("params") else a.get("reason", ""))
    if status == "failed":
        parts.append(a.get("reason") or trial.system_attrs.get("fail_reason", "failed"))
    parts.append(a.get("arch", ""))
    return "  ".join(parts)


class Reporter:
    """Receives the objective's events and Optuna's after-trial callback; shows progress."""

    def __init__(self, study: optuna.Study, *, n_trials: int | None = None,
                 max_trials: int | None = None, timeout: float | None = None,
                 live: bool = True, console: Console | None = None, jobs: int = 1):
        self.study = study
        self.console = unwrapped(console or Console(highlight=False, soft_wrap=True))
        self.live = live and self.console.is_terminal
        self.n_trials, self.max_trials, self.timeout = n_trials, max_trials, timeout
        self.pareto = len(study.directions) > 1
        self.start = time.monotonic()
        self.trial_seconds: list[float] = []  # trained trials finished by this worker
        self.jobs = jobs  # trials trained side by side (search run --jobs)
        self.running: dict[int, dict] = {}  # trial number -> its progress
        self._live: Live | None = None
        self.refresh(study.get_trials(deepcopy=False))

    def __enter__(self) -> Reporter:
        if self.live:
            self._live = Live(get_renderable=self.render, console=self.console,
                              refresh_per_second=2, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- events ---------------------------------------------------------------------------
    def trial_started(self, number: int, arch: str, params: int, epochs: int) -> None:
        self.running[number] = dict(number=number, arch=arch, params=params, epochs=epochs,
                                    epoch=0, val=None, epoch_seconds=[],
                                    started=time.monotonic())

    def epoch(self, number: int, epoch: int, val_acc: float, seconds: float) -> None:
        c = self.running.get(number)
        if c is None:
            return
        c.update(epoch=epoch, val=val_acc)
        c["epoch_seconds"].append(seconds)
        if not self.live:
            self.console.print(f"  trial {c['number']:>4} epoch {epoch}/{c['epochs']}  "
                               f"val {val_acc:.2f}%  ({seconds:.1f} s)")

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: log the trial, refresh the study-wide counts and the best."""
        if status_of(trial) != "rejected" and trial.user_attrs.get("seconds") is not None:
            self.trial_seconds.append(trial.user_attrs["seconds"])
        self.running.pop(trial.number, None)
        self.console.print(trial_line(trial))
        self.refresh(study.get_trials(deepcopy=False))

    def refresh(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        self.counts = tally(trials)
        done = [t for t in trials if status_of(t) == "complete"]
        if self.pareto:
            self.best = sorted(self.study.best_trials, key=lambda t: -t.values[0]) if done else []
        else:
            self.best = sorted(done, key=lambda t: -t.value)[:1]

    # -- display --------------------------------------------------------------------------
    def trained(self) -> int:
        return sum(self.counts[s] for s in ("complete", "pruned", "failed"))

    def eta(self) -> float | None:
        """Seconds left: remaining trials times this worker's mean trial time (divided among
        the trials it trains side by side), or the timeout."""
        elapsed = time.monotonic() - self.start
        per_trial = statistics.mean(self.trial_seconds) if self.trial_seconds else None
        running = list(self.running.values())
        if per_trial is None:  # no trial done yet: extrapolate from the running ones' epochs
            seen = [(statistics.mean(c["epoch_seconds"]) * c["epochs"]) for c in running
                    if c["epoch_seconds"]]
            per_trial = statistics.mean(seen) if seen else None
        left = []
        remaining = []
        if self.n_trials:
            remaining.append(self.n_trials - len(self.trial_seconds))
        if self.max_trials:
            remaining.append(self.max_trials - self.trained())
        if remaining and per_trial is not None:
            done = sum(min(time.monotonic() - c["started"], per_trial) for c in running)
            left.append(max(0.0, (min(remaining) * per_trial - done) / self.jobs))
        if self.timeout:
            left.append(max(0.0, self.timeout - elapsed))
        return min(left) if left else None

    def _best_text(self) -> str:
        if not self.best:
            return "none complete yet"
        lines = []
        for t in self.best[:3]:
            a = t.user_attrs
            lines.append(f"{t.values[0]:.2f}% val  {a.get('params', 0):,} params  "
                         f"trial {t.number}  {a.get('arch', '')}")
        if self.pareto:
            lines.insert(0, f"Pareto front: {len(self.best)} trials (best accuracy first)")
        return "\n".join(lines)

    def render(self) -> Panel:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        counts = "  ".join(f"{self.counts[s]} {s}" for s in STATES if self.counts[s] or
                           s in ("complete", "pruned", "rejected", "failed"))
        mine = f"this worker: {len(self.trial_seconds)}"
        mine += f" of {self.n_trials}" if self.n_trials else ""
        goal = f", study goal {self.max_trials} trained" if self.max_trials else ""
        grid.add_row("trials", f"{counts}   ({mine}{goal})")
        grid.add_row("best", self._best_text())
        for i, c in enumerate(sorted(self.running.values(), key=lambda c: c["number"])):
            val = f"  val {c['val']:.2f}%" if c["val"] is not None else ""
            grid.add_row("" if i else "training",
                         f"trial {c['number']}  epoch {c['epoch']}/{c['epochs']}"
                         f"{val}  {c['params']:,} params  {c['arch']}")
        elapsed = time.monotonic() - self.start
        grid.add_row("time", f"{_duration(elapsed)} elapsed  ~{_duration(self.eta())} left")
        # Piped, the panel fits its lines rather than the console's (unbounded) width.
        return Panel(grid, title=f"search {self.study.study_name}", title_align="left",
                     expand=self.console.is_terminal)

    def summary(self) -> None:
        """The final panel, printed once when the run ends (also in plain mode)."""
        self.refresh(self.study.get_trials(deepcopy=False))
        self.running.clear()
        self.console.print(self.render())
