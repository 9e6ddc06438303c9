"""The dashboard launcher serves optuna-dashboard's API for a real study, on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]


def test_dashboard_lists_the_study_over_http(tmp_path):
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = optuna.create_study(study_name="tiny-dashboard-study", storage=url)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.25) ** 2, n_trials=3)

    proc = subprocess.Popen([sys.executable, "-m", "search.dashboard", "--storage", url,
                             "--port", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        line = proc.stdout.readline()  # printed once the socket is bound
        match = re.search(r"http://127\.0\.0\.1:(\d+)/dashboard", line)
        assert match, line + proc.stdout.read() if proc.poll() is not None else line
        api = f"http://127.0.0.1:{match[1]}/api/studies"
        for _ in range(50):
            try:
                with urllib.request.urlopen(api, timeout=5) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.2)
        names = [s["study_name"] for s in body["study_summaries"]]
        assert names == ["tiny-dashboard-study"]
        assert body["study_summaries"][0]["directions"] == ["minimize"]
        with urllib.request.urlopen(f"http://127.0.0.1:{match[1]}/dashboard", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_missing_storage_is_a_clear_error(tmp_path, capsys):
    from search.dashboard import main

    assert main(["--storage", f"sqlite:///{tmp_path / 'none.db'}", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "none.db" in err
