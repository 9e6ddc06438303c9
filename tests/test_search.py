"""`python -m search run/confirm/export` end to end on a few hundred images, SQLite storage."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
import pytest

from benchmarks.harness.config import Config
from errors import UserError
from models import BUDGET, arch_of, count_params, create_model, list_models
from models.registry import MODELS
from search.__main__ import main
from search.publish import enqueue_zoo
from search.space import ARCH_SPACES
from search.storage import open_storage
from search.study import status_of

# 350 images, one epoch: 6, 3 or 2 steps (batch 64/128/256). Not 4, 5 or 10, where a sampled
# one-cycle warmup (0.25, 0.2, 0.1) would end on step 1, which torch's OneCycleLR divides by.
TINY = ["--epochs", "1", "--train-subset", "350", "--test-subset", "200", "--no-live"]


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def trained(trials) -> list:
    return [t for t in trials if status_of(t) in ("complete", "pruned", "failed")]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, mnist_root) -> Path:
    """A 3-trial accuracy study (seeded), built once; tests copy the database file."""
    db = tmp_path_factory.mktemp("search") / "search.db"
    rc = run("run", "--storage", f"sqlite:///{db}", "--n-trials", 3, "--seed", 0,
             "--data-root", mnist_root, *TINY)
    assert rc == 0
    return db


def copy_of(db: Path, tmp_path: Path) -> str:
    shutil.copy(db, tmp_path / "copy.db")
    return f"sqlite:///{tmp_path / 'copy.db'}"


def test_run_records_each_trial(tiny_study, capsys):
    trials = trials_of(f"sqlite:///{tiny_study}", "mnist-accuracy")
    assert len(trained(trials)) == 3
    for t in trials:
        a = t.user_attrs
        assert a["status"] in ("complete", "pruned", "rejected")
        assert a["arch"] and a["family"] == t.params["family"]
        if a["status"] == "rejected":
            assert a["params"] > BUDGET and "val_acc_per_epoch" not in a
            continue
        assert a["params"] <= BUDGET and a["macs"] > 0
        assert a["device"] == "cpu" and a["device_name"] and a["seconds"] > 0
        assert len(a["val_acc_per_epoch"]) == 1
        assert list(t.intermediate_values.values()) == a["val_acc_per_epoch"]
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == a["val_acc_per_epoch"][-1]
    settings = optuna.load_study(study_name="mnist-accuracy",
                                 storage=f"sqlite:///{tiny_study}").user_attrs["search"]
    assert settings["val_split"] == 10_000 and settings["epochs"] == 1


def test_rerun_resumes_and_refuses_other_settings(tiny_study, tmp_path, mnist_root, capsys):
    url = copy_of(tiny_study, tmp_path)
    before = {t.number: t.value for t in trials_of(url, "mnist-accuracy")}
    assert run("run", "--storage", url, "--n-trials", 1, "--data-root", mnist_root, *TINY) == 0
    after = trials_of(url, "mnist-accuracy")
    assert len(trained(after)) == 3 + 1
    assert {t.number: t.value for t in after if t.number in before} == before
    assert sorted(t.number for t in after) == list(range(len(after)))
    # --max-trials counts the whole study: 4 are there, so nothing more runs.
    assert run("run", "--storage", url, "--max-trials", 4, "--data-root", mnist_root,
               *TINY) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(trials_of(url, "mnist-accuracy")) == len(after)
    # Other epochs would mix incomparable values into the study.
    assert run("run", "--storage", url, "--n-trials", 1, "--data-root", mnist_root,
               *TINY, "--epochs", 3) == 2
    assert "epochs=1 (now 3)" in capsys.readouterr().err


def test_diverging_trial_fails_with_reason_and_the_study_goes_on(tiny_study, tmp_path,
                                                                  mnist_root):
    url = copy_of(tiny_study, tmp_path)
    study = optuna.load_study(study_name="mnist-accuracy", storage=url)
    last = study.trials[-1].number
    good = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    study.enqueue_trial({**good.params, "lr": 1e20})  # out of range on purpose: it diverges
    assert run("run", "--storage", url, "--n-trials", 2, "--pruner", "none",
               "--data-root", mnist_root, *TINY) == 0
    new = [t for t in trials_of(url, "mnist-accuracy") if t.number > last]
    diverged = new[0]
    assert diverged.state == optuna.trial.TrialState.FAIL
    assert diverged.user_attrs["status"] == "diverged"
    assert "training loss is" in diverged.user_attrs["reason"]
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in new[1:])


def test_export_csv_and_readable_by_optuna_tools(tiny_study, tmp_path, capsys):
    url = f"sqlite:///{tiny_study}"
    assert run("export", "--study", "mnist-accuracy", "--storage", url, "--out", tmp_path) == 0
    with open(tmp_path / "mnist-accuracy-trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(trials_of(url, "mnist-accuracy"))
    assert {"status", "value_val_acc", "user_attrs_arch", "user_attrs_params",
            "params_family"} <= set(rows[0])
    # Optuna's own CLI and optuna-dashboard read the study as it is.
    optuna_cli = Path(sys.executable).parent / "optuna"
    if optuna_cli.exists():
        out = subprocess.run([str(optuna_cli), "trials", "--study-name", "mnist-accuracy",
                              "--storage", url, "-f", "json"], capture_output=True, text=True,
                             check=True).stdout
        assert len(json.loads(out)) == len(rows)
    import optuna_dashboard

    app = optuna_dashboard.wsgi(url)
    env: dict = {}
    setup_testing_defaults(env)
    env["PATH_INFO"] = "/api/studies"
    status = []
    body = b"".join(app(env, lambda s, h, *a: status.append(s)))
    assert status == ["200 OK"]
    assert json.loads(body)["study_summaries"][0]["study_name"] == "mnist-accuracy"


def test_pareto_study_exports_front_csv_and_png(tmp_path, mnist_root, capsys):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert run("run", "--storage", url, "--objective", "pareto", "--n-trials", 3, "--seed", 2,
               "--data-root", mnist_root, *TINY) == 0
    study = optuna.load_study(study_name="mnist-pareto", storage=url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert run("export", "--study", "mnist-pareto", "--storage", url, "--out", tmp_path) == 0
    with open(tmp_path / "mnist-pareto-pareto.csv") as f:
        front = list(csv.DictReader(f))
    assert {int(r["number"]) for r in front} == {t.number for t in study.best_trials}
    for r in front:  # no point of the front is dominated by another
        acc, n = float(r["val_acc"]), int(r["params"])
        assert n <= BUDGET
        assert not any(float(o["val_acc"]) >= acc and int(o["params"]) <= n and o is not r and
                       (float(o["val_acc"]), int(o["params"])) != (acc, n) for o in front)
    png = (tmp_path / "mnist-pareto-pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (tmp_path / "mnist-pareto-trials.csv").is_file()


def test_confirm_appends_test_rows(tiny_study, results_dir, mnist_root, capsys):
    url = f"sqlite:///{tiny_study}"
    assert run("confirm", "--study", "mnist-accuracy", "--storage", url, "--top", 1,
               "--seeds", 1, 2, "--epochs", 1, "--train-subset", 350, "--test-subset", 200,
               "--jobs", 2, "--data-root", mnist_root) == 0
    with open(results_dir / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    best = optuna.load_study(study_name="mnist-accuracy", storage=url).best_trial
    assert sorted(r["seed"] for r in rows) == ["1", "2"]  # two at a time: either may end first
    assert "2 runs at a time" in capsys.readouterr().out
    for r in rows:
        assert r["source"] == f"search confirm mnist-accuracy:{best.number}"
        assert r["arch"] == best.user_attrs["arch"] and int(r["params"]) <= BUDGET
        assert r["test_images"] == "200" and 0 <= float(r["final_test_acc"]) <= 100
        assert json.loads(r["config"])["val_split"] == 0  # the whole training set


def test_budget_rejects_bigger_models_untrained_and_is_pinned(tmp_path, mnist_root, capsys):
    url = f"sqlite:///{tmp_path / 'small.db'}"
    assert run("run", "--storage", url, "--study", "small", "--budget", 4000, "--n-trials", 2,
               "--seed", 3, "--data-root", mnist_root, *TINY) == 0
    trials = trials_of(url, "small")
    assert len(trained(trials)) == 2
    rejected = [t for t in trials if status_of(t) == "rejected"]
    assert rejected  # seed 3 samples models between 4,000 and 20,000 parameters
    assert any(t.user_attrs["params"] <= BUDGET for t in rejected)
    for t in trials:
        a = t.user_attrs
        assert (a["params"] > 4000) == (status_of(t) == "rejected")
        assert (status_of(t) == "rejected") == ("val_acc_per_epoch" not in a)
    assert run("run", "--storage", url, "--study", "small", "--n-trials", 1,
               "--data-root", mnist_root, *TINY) == 2
    assert "budget=4000 (now 20000)" in capsys.readouterr().err
    assert run("run", "--storage", url, "--budget", BUDGET + 1, "--n-trials", 1) == 2
    assert "can only tighten it" in capsys.readouterr().err


def test_enqueue_zoo_starts_from_members_within_the_budget(tmp_path, mnist_root, capsys):
    url = f"sqlite:///{tmp_path / 'zoo.db'}"
    argv = ["run", "--storage", url, "--study", "zoo", "--budget", 5000, "--enqueue-zoo",
            "--pruner", "none", "--data-root", mnist_root, *TINY]
    assert run(*argv, "--n-trials", 1) == 0
    assert run(*argv, "--max-trials", 1) == 0  # queues nothing twice; trains nothing more
    trials = trials_of(url, "zoo")
    queued = {t.user_attrs["zoo"]: t for t in trials if "zoo" in t.user_attrs}
    searchable = {m for m in list_models() if MODELS[m][0] in ARCH_SPACES}  # not handmade
    off_grid = {"plain_11k", "staged_4k"}  # staged_4k: weight decay 0, off the log-scale grid
    assert set(queued) == {m for m in searchable
                           if count_params(create_model(m)) <= 5000} - off_grid
    first = min(queued.values(), key=lambda t: t.number)
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert first.user_attrs["arch"] == arch_of(first.user_attrs["zoo"])
    assert sum(t.state == optuna.trial.TrialState.WAITING for t in trials) == len(queued) - 1


def test_enqueue_zoo_names_queues_exactly_those(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'named.db'}"
    study = optuna.create_study(study_name="named", storage=url)
    assert enqueue_zoo(study, Config(), 12000, ["ghost_9k", "squeeze_7k"]) == ["ghost_9k",
                                                                               "squeeze_7k"]
    queued = [t.user_attrs["zoo"] for t in trials_of(url, "named")]
    assert queued == ["ghost_9k", "squeeze_7k"]
    with pytest.raises(UserError, match="plain_11k lies off the search grid"):
        enqueue_zoo(study, Config(), 12000, ["plain_11k"])  # width 10 is not a choice
    assert len(trials_of(url, "named")) == 2
    argv = ["run", "--storage", url, "--study", "cli", "--budget", 12000, "--max-trials", 1]
    assert run(*argv, "--enqueue-zoo", "plain_16k") == 2  # 15,558 params: over --budget
    assert "plain_16k" in capsys.readouterr().err
    assert run(*argv, "--enqueue-zoo", "ghost_9k", "plain_16k") == 2  # all or nothing
    assert "plain_16k" in capsys.readouterr().err
    assert run(*argv, "--enqueue-zoo", "no_such_model") == 2
    assert "not zoo members: no_such_model" in capsys.readouterr().err
    # Refused before anything was queued or trained, or the study even created (issue 18).
    assert "cli" not in optuna.get_all_study_names(url)


def test_warm_start_copies_trained_trials_once(tiny_study, tmp_path, mnist_root, capsys):
    db = tmp_path / "warm.db"
    shutil.copy(tiny_study, db)
    url = f"sqlite:///{db}"
    source = [t for t in trials_of(url, "mnist-accuracy") if status_of(t) in ("complete",
                                                                              "pruned")]
    argv = ["run", "--storage", url, "--warm-start", "mnist-accuracy", "--data-root", mnist_root,
            *TINY]
    for copied in (len(source), 0):  # the second run copies nothing again
        assert run(*argv, "--study", "warm", "--max-trials", len(source)) == 0
        assert f"copied {copied} trained trials of study mnist-accuracy" in \
            capsys.readouterr().out
    warm = trials_of(url, "warm")
    assert [t.user_attrs["copied_from"] for t in warm] == [f"mnist-accuracy:{t.number}"
                                                           for t in source]
    def what_tpe_sees(t):  # a pruned trial's value is its last intermediate value anyway
        return t.params, t.intermediate_values, t.state, t.user_attrs["params"], \
            t.values if t.state == optuna.trial.TrialState.COMPLETE else None
    assert [what_tpe_sees(t) for t in warm] == [what_tpe_sees(t) for t in source]
    assert run(*argv, "--study", "tight", "--budget", 8000) == 2  # wider budget: refused
    assert "it ran with budget=20000 (here 8000)" in capsys.readouterr().err
    assert run(*argv, "--study", "longer", "--epochs", 2) == 2  # differently trained: refused
    assert "epochs=1 (here 2)" in capsys.readouterr().err
    assert {"tight", "longer"}.isdisjoint(optuna.get_all_study_names(url))  # not created


def test_confirm_named_trials_only_completed(tiny_study, results_dir, mnist_root, capsys):
    url = f"sqlite:///{tiny_study}"
    trials = trials_of(url, "mnist-accuracy")
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    worst = min(done, key=lambda t: t.value)
    assert run("confirm", "--study", "mnist-accuracy", "--storage", url, "--trials",
               worst.number, "--seeds", 3, "--epochs", 1, "--train-subset", 350,
               "--test-subset", 200, "--data-root", mnist_root) == 0
    with open(results_dir / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["source"], r["seed"]) for r in rows] == [
        (f"search confirm mnist-accuracy:{worst.number}", "3")]
    other = next((t for t in trials if t.state != optuna.trial.TrialState.COMPLETE), None)
    for number in [len(trials) + 5] + ([other.number] if other else []):
        assert run("confirm", "--study", "mnist-accuracy", "--storage", url, "--trials",
                   number, "--data-root", mnist_root) == 2
        assert f"trial {number} of 'mnist-accuracy' cannot be confirmed" in \
            capsys.readouterr().err
    with open(results_dir / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 1


def test_user_errors_exit_2_and_write_nothing(tmp_path, capsys):
    missing = tmp_path / "missing.db"
    assert run("export", "--study", "x", "--storage", f"sqlite:///{missing}") == 2
    assert "no search storage" in capsys.readouterr().err and not missing.exists()
    assert run("run", "--storage", "nosuchdb://x", "--n-trials", 1) == 2
    assert "cannot open storage nosuchdb://x" in capsys.readouterr().err
    assert run("run", "--storage", "postgresql+psycopg://u:secret@127.0.0.1:9/db",
               "--n-trials", 1) == 2
    err = capsys.readouterr().err
    assert "cannot open storage" in err and "secret" not in err
    db = tmp_path / "s.db"
    open_storage(f"sqlite:///{db}").engine.dispose()
    assert run("confirm", "--study", "nope", "--storage", f"sqlite:///{db}") == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    assert run("run", "--task", "cifar", "--n-trials", 1) == 2
    assert "no search space for task 'cifar'" in capsys.readouterr().err
    assert run("run", "--n-trials", 0) == 2
    for bad in (["--jobs", 0], ["--jobs", "two"]):
        assert run("run", "--storage", f"sqlite:///{tmp_path / 'j.db'}", *bad) == 2
        assert "--jobs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [db]


def test_jobs_train_trials_side_by_side(tmp_path, mnist_root, capsys):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert run("run", "--storage", url, "--jobs", 2, "--n-trials", 3, "--seed", 3,
               "--data-root", mnist_root, *TINY) == 0
    out = capsys.readouterr().out
    assert "2 trials at a time" in out
    trials = trials_of(url, "mnist-accuracy")
    # Optuna's n_jobs: one trial per thread; rarely one over --n-trials (a thread sampling as
    # another's trial ends: trials still training count, trials being sampled cannot).
    assert 3 <= len(trained(trials)) <= 4
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    assert all(t.user_attrs["status"] in ("complete", "pruned", "rejected") for t in trials)
    for t in trained(trials):
        assert len(t.user_attrs["val_acc_per_epoch"]) == 1


def test_trials_still_training_count_towards_n_trials():
    from search.run import Stopper

    class Study:
        stopped = False

        def stop(self):
            self.stopped = True

    done = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0,
                                     user_attrs={"status": "complete"})
    for running, stops_after in ((set(), 3), ({7}, 2)):  # {7}: another thread's trial
        study, stopper = Study(), Stopper(3, None, running)
        for finished in range(1, 4):
            stopper(study, done)
            assert study.stopped == (finished >= stops_after)
    assert "trained 3 trials" in stopper.why


def test_plan_decides_the_run_and_touches_nothing(tmp_path):
    """`search run` is a plan (every option checked, the study named and its settings
    decided: pure) and its execution; planning creates no storage, loads no data."""
    import argparse

    from search import space
    from search.__main__ import add_parsers
    from search.run import plan
    from search.study import DEFAULT_MAX_TRIALS

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    db = tmp_path / "new" / "search.db"
    args = parser.parse_args(["run", "--storage", f"sqlite:///{db}", "--budget", "5000",
                              "--warm-start", "mnist-under5k", "--enqueue-zoo",
                              "--data-root", str(tmp_path / "no-data"), *TINY])
    p = plan(args)
    assert (p.study, p.storage, p.warm_start, p.enqueue_zoo) == \
        ("mnist-accuracy", f"sqlite:///{db}", ("mnist-under5k",), ())
    assert p.settings == {"task": "mnist", "objective": "accuracy", "budget": 5000,
                          "space": space.VERSION["mnist"], "epochs": 1, "train_subset": 350,
                          "val_split": 10_000, "test_subset": 200}
    assert p.max_trials == DEFAULT_MAX_TRIALS and p.base.epochs == 1 and not p.live
    assert not (tmp_path / "new").exists()
    with pytest.raises(UserError, match="--budget 30,000 is over"):
        plan(parser.parse_args(["run", "--budget", "30000"]))


def test_export_of_a_study_with_no_trials_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="empty", storage=url)
    out = tmp_path / "out"
    assert run("export", "--study", "empty", "--storage", url, "--out", out) == 2
    err = capsys.readouterr().err
    assert "study 'empty' has no trials yet" in err and "Traceback" not in err
    assert f"`python -m search run --study empty --storage {url}` adds them" in err
    assert not out.exists()  # refused before the folder is made


def test_a_run_refused_for_its_data_leaves_no_storage_behind(tmp_path, capsys):
    folder = tmp_path / "new" / "deeper"
    url = f"sqlite:///{folder / 's.db'}"
    assert run("run", "--storage", url, "--n-trials", 1, "--data-root", tmp_path / "no-mnist",
               *TINY) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # neither the database nor its folders
    assert run("run", "--storage", url, "--n-trials", 1, "--warm-start", "other", *TINY) == 2
    assert "no study named 'other'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    # A storage that was there stays as it was.
    db = tmp_path / "kept.db"
    open_storage(f"sqlite:///{db}").engine.dispose()
    before = db.read_bytes()
    assert run("run", "--storage", f"sqlite:///{db}", "--n-trials", 1, "--data-root",
               tmp_path / "no-mnist", *TINY) == 2
    assert db.read_bytes() == before


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_trial_that_trained_every_epoch_completes(tmp_path, mnist_root, monkeypatch):
    """The pruner stops a trial between epochs; after the last one there is nothing to stop."""
    monkeypatch.setattr("search.run.make_pruner", lambda name, epochs: AlwaysPrune())
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run("run", "--storage", url, "--n-trials", 1, "--seed", 0, "--data-root", mnist_root,
               "--enqueue-zoo", "plain_4k", *TINY) == 0
    (trial,) = trials_of(url, "mnist-accuracy")
    assert status_of(trial) == "complete" and trial.user_attrs["status"] == "complete"
    assert trial.value == trial.user_attrs["val_acc_per_epoch"][-1]
