"""Issue 18, point 4 (table case 9): resuming never repeats work. A worker restarted with the
same --seed, after finishing, after Ctrl-C or after SIGKILL, samples no trial the study holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna

from search.__main__ import main
from search.study import sampler_seed, status_of

REPO = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--train-subset", "350", "--test-subset", "200", "--no-live"]


def run(*argv) -> int:
    return main([str(a) for a in argv])


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def assert_no_work_repeated(trials) -> None:
    """No two trials that were sampled and then trained to the end (complete or pruned) or
    rejected untrained share their parameters. A trial killed or interrupted mid-way is failed
    and queued once more with its parameters: that copy finishes it, it does not repeat it."""
    done = [json.dumps(t.params, sort_keys=True) for t in trials
            if status_of(t) in ("complete", "pruned", "rejected")]
    assert len(done) == len(set(done)), [t.params for t in trials]
    failed = [json.dumps(t.params, sort_keys=True) for t in trials if status_of(t) == "failed"]
    for params in failed:  # each failed trial was retried at most once
        assert done.count(params) <= 1


def test_sampler_seed_depends_on_the_trials_held():
    assert sampler_seed(None, 5) is None  # no --seed: a random sampler, as before
    assert sampler_seed(7, 0) == 7  # a new study: the first run is what it always was
    seeds = {sampler_seed(7, n) for n in range(1, 50)} | {sampler_seed(8, n) for n in range(1, 50)}
    assert len(seeds) == 98 and 7 not in seeds
    assert all(0 <= s < 2**32 for s in seeds)  # numpy's RandomState takes them
    assert sampler_seed(7, 3) == sampler_seed(7, 3)  # reproducible


def test_restarted_worker_with_the_same_seed_samples_anew(tmp_path, mnist_root):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["run", "--storage", url, "--study", "r", "--n-trials", 1, "--seed", 7,
            "--pruner", "none", "--data-root", mnist_root, *TINY]
    assert run(*argv) == 0
    assert run(*argv) == 0  # the README's resume: the same command again
    trials = trials_of(url, "r")
    assert len(trials) >= 2
    assert_no_work_repeated(trials)  # the restart must not train trial 0 again


def test_ctrl_c_and_resume_repeats_no_trial(tmp_path, mnist_root, monkeypatch):
    """Ctrl-C in the second trial (raised where the trial checks for it at each epoch)."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["run", "--storage", url, "--study", "c", "--seed", 7, "--pruner", "none",
            "--data-root", mnist_root, *TINY]
    started = []

    def stop_hook(stop, *args):
        started.append(1)

        def hook(epoch, record):
            if len(started) == 2:
                raise KeyboardInterrupt
        return hook

    with monkeypatch.context() as m:
        m.setattr("search.objective.stop_hook", stop_hook)
        assert run(*argv, "--n-trials", 5) == 130
    interrupted = [t for t in trials_of(url, "c") if status_of(t) == "failed"]
    assert len(interrupted) == 1  # failed, and queued again with its parameters
    assert run(*argv, "--n-trials", 2) == 0  # the same command (and seed) resumes
    trials = trials_of(url, "c")
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    assert_no_work_repeated(trials)


def test_killed_and_resumed_search_repeats_no_trial(tmp_path, mnist_root):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    argv = ["run", "--storage", url, "--study", "k", "--seed", 7, "--heartbeat", 1,
            "--pruner", "none", "--data-root", mnist_root, *TINY]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "search", *map(str, argv), "--n-trials", "50"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                trials = trials_of(url, "k")
            except KeyError:  # the study is created once the data is loaded
                continue
            if any(t.state.is_finished() for t in trials):
                break
        assert proc.poll() is None, "the first worker ended before it could be killed"
        proc.kill()  # SIGKILL: no Ctrl-C handler runs, the running trial stays RUNNING
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if any(t.state == optuna.trial.TrialState.RUNNING for t in trials_of(url, "k")):
        time.sleep(2.5)  # its heartbeat stopped: stale after 2 x --heartbeat
    assert run(*argv, "--n-trials", 1) == 0  # the same command (and seed) resumes
    trials = trials_of(url, "k")
    assert_no_work_repeated(trials)
