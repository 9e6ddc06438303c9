"""The tables in README.md and docs/ are generated from the committed result files."""

from __future__ import annotations

from benchmarks.__main__ import main


def _write_runs(rows: list[dict], path) -> None:
    """`rows` as a runs CSV its readers accept: every column (results.KINDS), those a test
    leaves out filled with a value of their kind."""
    import pandas as pd

    from benchmarks.harness.results import KINDS

    filler = {"text": "x", "count": 1, "percent": None, "amount": 1.0, "percents": "[]",
              "amounts": "[]", "object": "{}"}
    pd.DataFrame([{c: r.get(c, filler[kind.rstrip("?")]) for c, kind in KINDS.items()}
                  for r in rows]).to_csv(path, index=False)


STALE = "intro\n\n<!-- table: leaderboard -->\n| made up by hand |\n<!-- end table -->\nafter\n"


def test_committed_docs_are_up_to_date(capsys):
    """`python -m benchmarks docs` after changing results/: this fails until it is run."""
    assert main(["docs", "--check"]) == 0, capsys.readouterr().out


def test_check_finds_a_hand_edited_table_and_docs_rewrites_it(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(STALE)
    assert main(["docs", "--check", str(doc)]) == 1 and doc.read_text() == STALE
    assert main(["docs", str(doc)]) == 0
    text = doc.read_text()
    assert "made up" not in text and "| `nas_plain_10k` | 9,522 |" in text
    assert text.startswith("intro\n") and text.endswith("<!-- end table -->\nafter\n")
    assert main(["docs", "--check", str(doc)]) == 0


def test_unknown_table_is_a_user_error(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table: nope -->\n<!-- end table -->\n")
    assert main(["docs", str(doc)]) == 2
    assert "unknown generated table 'nope'" in capsys.readouterr().err


def test_ablation_table_compares_each_variant_with_its_parent_seed_by_seed(tmp_path):
    import json

    from benchmarks.commands.tables import ablation_table

    base = {"model": "a", "ema": 0.999, "scale": 0.0, "shear": 0.0, "val_split": 10000}
    variants = [({"ema": 0.0}, [99.40, 99.50]), ({}, [99.45, 99.52]),
                ({"scale": 0.1}, [99.40, 99.60]),
                ({"scale": 0.1, "shear": 10.0}, [99.50, 99.50])]
    rows = [{"arch": "a", "epochs": 20, "train_images": 50000, "device_name": "cpu",
             "seed": seed, "final_val_acc": acc, "final_test_acc": 0.0,
             "config": json.dumps({**base, **changes, "seed": seed})}
            for changes, accs in variants for seed, acc in zip((1, 2), accs)]
    # Written child first: the reference is the most common settings, not the first row.
    _write_runs(rows[::-1], tmp_path / "ablation.csv")
    lines = ablation_table(tmp_path, "ablation").splitlines()
    assert lines[2].startswith("| reference: ema 0.999, scale 0.0, shear 0.0 | - | 2 | "
                               "1: 99.45 2: 99.52 | 99.48 | - | - |")
    assert lines[3] == "| ema 0.0 | reference | 2 | 1: 99.40 2: 99.50 | 99.45 | -0.035 | 0 of 2 |"
    assert lines[4] == ("| scale 0.1 | reference | 2 | 1: 99.40 2: 99.60 | 99.50 | +0.015 "
                        "| 1 of 2 |")
    assert lines[5] == ("| scale 0.1, shear 10.0 | scale 0.1 | 2 | 1: 99.50 2: 99.50 | 99.50 "
                        "| +0.000 | 1 of 2 |")
    assert lines[-1].startswith("`a`, 20 epochs, trained on 50,000 images")
    # A variant that changes the model: the footer names the reference's only.
    rows.append({**rows[0], "arch": "b", "config": json.dumps({**base, "model": "b", "seed": 1})})
    _write_runs(rows, tmp_path / "ablation.csv")
    lines = ablation_table(tmp_path, "ablation").splitlines()
    assert any(line.startswith("| model b | reference | 1 |") for line in lines)
    # Two fields changed at once, with neither alone run: compared with the reference.
    rows.append({**rows[0], "seed": 2, "final_val_acc": 99.30,
                 "config": json.dumps({**base, "ema": 0.5, "shear": 20.0, "seed": 2})})
    _write_runs(rows, tmp_path / "ablation.csv")
    lines = ablation_table(tmp_path, "ablation").splitlines()
    assert "| ema 0.5, shear 20.0 | reference | 1 | 2: 99.30 | 99.30 | -0.220 | 0 of 1 |" in lines
    assert lines[-1].startswith("Reference model `a`, 20 epochs")


def test_trials_table_lists_trained_trials_best_first(tmp_path):
    import pandas as pd

    from benchmarks.commands.tables import trials_table

    def trial(number, status, acc, params, epochs):
        return {"number": number, "status": status, "value_val_acc": acc,
                "user_attrs_arch": f"a{number}|do0", "user_attrs_params": params,
                "user_attrs_val_acc_per_epoch": str([acc] * epochs)}
    pd.DataFrame([trial(0, "complete", 99.1, 3000, 20), trial(1, "rejected", None, 9000, 0),
                  trial(2, "pruned", 99.3, 3500, 9), trial(3, "complete", 99.1, 2000, 20)]
                 ).to_csv(tmp_path / "s-trials.csv", index=False)
    lines = trials_table(tmp_path, "s").splitlines()
    assert lines[2:] == ["| 2 | `a2\\|do0` | 3,500 | 9 | 99.30 | pruned |",
                         "| 3 | `a3\\|do0` | 2,000 | 20 | 99.10 | complete |",
                         "| 0 | `a0\\|do0` | 3,000 | 20 | 99.10 | complete |"]


def test_ablation_reference_is_the_mode_and_a_sweeps_centre_on_a_tie():
    from benchmarks.commands.tables import _reference

    assert _reference([0.1, 0.05, 0.05, 0.025]) == 0.05
    assert _reference([0.1, 0.025, 0.0504]) == 0.0504  # each once: the middle value
    assert _reference([0.999, 0.0]) == 0.0  # an even tie: the lower middle
    assert _reference(["cos", "linear", None, 3]) == "cos"  # numbers first, then by text


def test_found_by_reads_the_confirmed_trial_from_a_row_source():
    from benchmarks.harness.results import found_by

    assert found_by("search confirm mnist-under4k:0") == "mnist-under4k:0"
    assert found_by("benchmarks mnist") is None and found_by(float("nan")) is None


def test_peers_table_splits_a_peers_runs_by_recipe(tmp_path):
    import dataclasses
    import json

    from benchmarks.commands.tables import PEER_RECIPE, peers_table
    from benchmarks.harness.config import Config
    from models import arch_of, recipe_of

    name = "peer_minakshi_6k"

    def run(recipe: dict, seed: int, acc: float, **flags) -> dict:
        cfg = Config(**{"epochs": 20, **recipe, **flags, "model": name, "seed": seed})
        return {"arch": arch_of(name), "train_images": 60_000, "epochs": cfg.epochs,
                "seed": seed, "final_test_acc": acc,
                "config": json.dumps(dataclasses.asdict(cfg))}
    own, ours = recipe_of(name), recipe_of(PEER_RECIPE)
    _write_runs([run(own, 2, 99.30), run(own, 1, 99.50), run(ours, 1, 99.45),
                 run(ours, 2, 99.35), run(ours, 3, 99.20, lr=0.2),  # another recipe: neither
                 run(own, 3, 99.10, epochs=20)],  # its recipe at 20 epochs: neither either
                tmp_path / "runs.csv")
    row = next(line for line in peers_table(tmp_path).splitlines() if f"`{name}`" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4:] == [str(own["epochs"]), "2", "99.40", "99.30", "1 of 2", "99.40, 1 of 2"]


def test_each_champion_reproduces_from_its_commands(mnist_root, tmp_path):
    """The reproduce block's confirm line retrains the champion's own trial, and its fresh-seed
    line the champion itself: run as written (tiny settings appended, a copy of the study
    database), each writes a row of the champion's architecture."""
    import os
    import shlex
    import shutil
    import subprocess
    import sys

    import pandas as pd
    from conftest import REPO

    from benchmarks.commands.leaderboard import champions
    from benchmarks.commands.studytables import reproduce_table

    text = reproduce_table(REPO / "results")
    board = pd.read_csv(REPO / "results" / "leaderboard.csv")
    archs = {r.arch for r in champions(board).values() if r is not None}
    lines = [shlex.split(line) for line in text.splitlines()
             if line.startswith(("python -m search confirm", "python -m benchmarks mnist"))]
    assert len(lines) == 2 * len(archs) >= 2  # both champions were found by a study
    shutil.copy(REPO / "results" / "search.db", tmp_path / "search.db")
    tiny = ["--epochs", "1", "--train-subset", "256", "--test-subset", "200", "--seeds", "1",
            "--jobs", "1", "--threads", "1", "--results", str(tmp_path / "runs.csv")]
    for argv in lines:
        more = ["--storage", f"sqlite:///{tmp_path / 'search.db'}"] if "search" in argv else []
        done = subprocess.run([sys.executable, *argv[1:], *tiny, *more], cwd=REPO,
                              env={**os.environ, "MNIST_ROOT": str(mnist_root)},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert set(pd.read_csv(tmp_path / "runs.csv").arch) == archs
