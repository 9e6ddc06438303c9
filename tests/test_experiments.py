"""The experiments/ scripts run as written: each with tiny settings, its rows checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TINY = "--epochs 1 --train-subset 256 --val-split 128 --test-subset 256"


def test_recipe_ablation_runs_every_variant_on_every_seed(tmp_path, mnist_root):
    results = tmp_path / "ablation.csv"
    env = {**os.environ, "RESULTS": str(results), "EXTRA": TINY, "PY": sys.executable,
           "MNIST_ROOT": str(mnist_root)}
    done = subprocess.run(["bash", str(ROOT / "experiments/recipe-6k.sh"), "4"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(results)
    cfg = runs.config.map(json.loads)
    variants = {(c["ema"], c["scale"], c["shear"], c["erase"], c["label_smoothing"]) for c in cfg}
    assert len(runs) == 6 and len(variants) == 6 and set(runs.seed) == {4}
    assert (runs.epochs == 1).all() and {c["val_split"] for c in cfg} == {128}
    assert all(c["lr"] == 0.05038667787535556 and c["threads"] == 1 for c in cfg)


def test_a_failed_run_fails_the_script(tmp_path):
    env = {**os.environ, "RESULTS": str(tmp_path / "a.csv"), "BASE": "--model nope",
           "PY": sys.executable, "SEEDS": "1"}
    done = subprocess.run(["bash", str(ROOT / "experiments/ablate.sh"), "--ema 0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "nope" in done.stderr
