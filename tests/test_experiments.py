"""The experiments/ scripts run as written: each with tiny settings, its rows checked."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.commands.leaderboard import recipe_key

ROOT = Path(__file__).resolve().parents[1]
TINY = "--epochs 1 --train-subset 256 --val-split 128 --test-subset 256"


@pytest.mark.parametrize("script, rows", [("recipe-6k.sh", "ablation.csv"),
                                          ("candidates-6k.sh", "candidates-6k.csv"),
                                          ("recipe-4k.sh", "recipe-4k.csv"),
                                          ("batch-16.sh", "batch-16.csv"),
                                          ("recipe-5k.sh", "recipe-5k.csv"),
                                          ("peer-layout.sh", "peer-layout.csv"),
                                          ("recipe-3700.sh", "recipe-3700.csv")])
def test_each_script_trains_exactly_the_recipes_of_its_committed_rows(tmp_path, mnist_root,
                                                                       script, rows):
    """Run with tiny settings on one seed, a script trains every variant its committed rows
    hold, each with the same model and recipe: the script is the record of what ran."""
    results = tmp_path / rows
    env = {**os.environ, "RESULTS": str(results), "EXTRA": TINY, "PY": sys.executable,
           "MNIST_ROOT": str(mnist_root)}
    done = subprocess.run(["bash", str(ROOT / "experiments" / script), "4"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ran, committed = pd.read_csv(results), pd.read_csv(ROOT / "results" / rows)

    def variants(runs: pd.DataFrame) -> list[tuple[str, str]]:
        return sorted(set(zip(runs.arch, runs.config.map(recipe_key))))

    assert len(ran) == len(variants(ran)) and set(ran.seed) == {4}
    assert variants(ran) == variants(committed)
    cfg = ran.config.map(json.loads)
    assert (ran.epochs == 1).all() and {c["val_split"] for c in cfg} == {128}
    assert {c["threads"] for c in cfg} == {1}


def test_a_script_run_again_trains_only_what_has_no_row(tmp_path, mnist_root):
    """ablate.sh passes --resume: a second run of the same script skips every (variant, seed)
    with a row, and a seed added later is the only one trained."""
    results = tmp_path / "a.csv"
    env = {**os.environ, "RESULTS": str(results), "PY": sys.executable, "JOBS": "1",
           "BASE": f"--model plain_4k {TINY} --threads 1 --progress false",
           "MNIST_ROOT": str(mnist_root)}

    def script(seeds: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", str(ROOT / "experiments/ablate.sh"), "", "--lr 0.1"],
                              env={**env, "SEEDS": seeds}, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done

    script("1")
    first = results.read_bytes()
    assert "skipped" in script("1").stdout and results.read_bytes() == first
    script("1 2")
    runs = pd.read_csv(results)
    assert sorted(zip(runs.seed, runs.config.map(lambda c: json.loads(c)["lr"]))) == \
        [(1, 0.05), (1, 0.1), (2, 0.05), (2, 0.1)]


def test_a_failed_run_fails_the_script(tmp_path):
    env = {**os.environ, "RESULTS": str(tmp_path / "a.csv"), "BASE": "--model nope",
           "PY": sys.executable, "SEEDS": "1"}
    done = subprocess.run(["bash", str(ROOT / "experiments/ablate.sh"), "--ema 0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nope" in done.stderr


def load_handpicked():
    spec = importlib.util.spec_from_file_location("handpicked", ROOT / "experiments/handpicked.py")
    handpicked = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handpicked)
    return handpicked


def test_handpicked_runs_as_a_script(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "experiments/handpicked.py"), "--study",
                           "mnist-under4k", "--storage", f"sqlite:///{tmp_path / 'q.db'}"],
                          capture_output=True, text=True, timeout=120)
    candidates = load_handpicked().STUDIES["mnist-under4k"][2]
    assert done.returncode == 0 and done.stdout.count("queued ") == len(candidates), done.stderr


@pytest.mark.parametrize("study", ["mnist-under4k", "mnist-under5k-b32", "mnist-under5500-b32",
                                   "mnist-under4k-sep", "mnist-under3700"])
def test_handpicked_queues_each_candidate_once_under_the_budget(tmp_path, study):
    import optuna

    url = f"sqlite:///{tmp_path / 'q.db'}"
    handpicked = load_handpicked()  # in this process: a subprocess per run cost 6 s of imports
    for _ in range(2):  # the second run finds them queued
        assert handpicked.main(["--study", study, "--storage", url]) == 0
    trials = optuna.load_study(study_name=study, storage=url).get_trials()
    candidates = handpicked.STUDIES[study][2]
    assert len(trials) == len(candidates) == len(set(map(str, candidates)))
    assert {t.state for t in trials} == {optuna.trial.TrialState.WAITING}
    queued = [t.system_attrs["fixed_params"] for t in trials]  # what enqueue_trial stores
    assert {q["batch_size"] for q in queued} == {32}  # the recipe of nas_plain_6k and 5k


def test_stamp_space_runs_as_a_script_once(tmp_path):
    """experiments/stamp_space.py on a copy of results/demo.db: the study records its space
    version and budget, and a second run changes nothing."""
    import shutil

    import optuna

    shutil.copy(ROOT / "results" / "demo.db", tmp_path / "demo.db")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runs = [subprocess.run([sys.executable, str(ROOT / "experiments/stamp_space.py"), url],
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "every study records both" in runs[1].stdout
    settings = optuna.load_study(study_name="mnist-pareto-demo", storage=url).user_attrs["search"]
    assert settings["space"] == 1 and settings["budget"] == 20_000
