"""The runs CSV cannot be corrupted or silently lose a row.

Checked before training, written whole or not at all under a lock, damaged files refused with
the line number, the leaderboard's clear error, no orphan checkpoints. Almost everything here
runs without training: the one real run is 1 epoch on 512 images.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import multiprocessing
import os
import threading

import optuna
import pandas as pd
import pytest

from benchmarks.__main__ import main
from benchmarks.harness import checkpoint
from benchmarks.harness.checkpoint import BestWeights, save_run
from benchmarks.harness.results import (
    COLUMNS,
    KINDS,
    NUMBERS,
    ResultsError,
    append_row,
    check_target,
    check_text,
    encode,
)
from benchmarks.tasks import hymenoptera, mnist, resnet
from models import build
from search.publish import confirm

TINY = ["--epochs", "1", "--train-subset", "512", "--test-subset", "500", "--batch-size", "64",
        "--progress", "false", "--device", "cpu", "--threads", "1"]


def _row(i: int = 0, writer: int = 0, pad: int = 0) -> dict:
    """A row of every column; `pad` makes it long, so interleaved writes would show."""
    row = {c: f"{c} {writer}/{i}" for c in COLUMNS}
    row.update({c: i for c in NUMBERS})
    row.update({c: json.dumps([i]) for c, kind in KINDS.items() if kind in ("percents",
                                                                             "amounts")})
    row["config"] = json.dumps({"writer": writer, "i": i, "pad": "x" * pad})
    return row


def _good(rows: int = 2) -> bytes:
    """A valid runs CSV: the header and `rows` rows, as append_row writes them."""
    return encode(_row(0), COLUMNS, True) + b"".join(encode(_row(i), COLUMNS, False)
                                                     for i in range(1, rows))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


def _bad_quote(data: bytes) -> bytes:
    lines = _lines(data)
    lines[1] = lines[1].replace(b"model 0/0", b'"model 0/0', 1)  # opens, never closes
    assert lines[1].count(b'"model') == 1
    return b"".join(line + b"\r\n" for line in lines)


# name -> (damage done to a good header + 2 rows, the line the error must name)
DAMAGE = {
    "no final newline": (lambda d: d[:-2], 3),
    "damaged header": (lambda d: b"task,model,ar\r\n" + d.split(b"\r\n", 1)[1], 1),
    "blank header": (lambda d: b"\r\n" + d, 1),
    "31 fields": (lambda d: d + b",".join([b"x"] * 31) + b"\r\n", 4),
    "27 fields": (lambda d: d + encode(_row(9), COLUMNS[:-1], False), 4),
    "unbalanced quote": (_bad_quote, 2),
    "quote left open at the end": (lambda d: d + b'mnist,"plain_7k,1\r\n', 4),
    "text in a number column": (lambda d: d.replace(b",1,1,1,", b",1,1x,1,", 1), 3),
    "not UTF-8": (lambda d: d.replace(b"task 0/1", b"task \xff/1"), 3),
}


@pytest.fixture
def no_data(monkeypatch):
    """Loading data (or weights) fails the test: the pre-flight must come first."""
    def fail(*a, **k):
        raise AssertionError("data loaded before the runs CSV was checked")
    for module in (mnist, hymenoptera):
        monkeypatch.setattr(module, "load_data", fail)
    monkeypatch.setattr(resnet, "load_weights", fail)


def _err(capsys) -> str:
    err = capsys.readouterr().err.replace("\n", "")  # rich may wrap long lines
    assert "Traceback" not in err
    return err


# ---- pre-flight: before any data is loaded ---------------------------------------------------

@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_file_is_refused_with_its_line_and_left_untouched(case, tmp_path):
    damage, line = DAMAGE[case]
    path = tmp_path / "runs.csv"
    path.write_bytes(damage(_good()))
    before = path.read_bytes()
    with pytest.raises(ResultsError, match=f"{path}, line {line}: "):
        append_row(_row(5), path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("case", ["no final newline", "damaged header", "31 fields"])
def test_mnist_refuses_a_damaged_file_before_loading_data(case, tmp_path, no_data, capsys):
    damage, line = DAMAGE[case]
    path = tmp_path / "runs.csv"
    path.write_bytes(damage(_good()))
    assert main(["mnist", "--model", "plain_4k", "--results", str(path), *TINY]) == 2
    assert f"{path}, line {line}:" in _err(capsys)


def test_folder_as_results_is_refused_before_loading_data(tmp_path, no_data, capsys):
    assert main(["mnist", "--model", "plain_4k", "--results", str(tmp_path), *TINY]) == 2
    assert f"{tmp_path} is a folder" in _err(capsys)
    assert not (tmp_path.parent / "checkpoints").exists()


def test_unwritable_file_is_refused_before_loading_data(tmp_path, no_data, monkeypatch,
                                                         capsys):
    """chmod 444 as a user without root's override (we run as root: os.access says no)."""
    path = tmp_path / "runs.csv"
    path.write_bytes(_good())
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(path)
                        else real(p, mode))
    assert main(["mnist", "--model", "plain_4k", "--results", str(path), *TINY]) == 2
    assert f"{path} is not writable" in _err(capsys)


def test_uncreatable_file_is_refused(tmp_path, no_data, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    assert main(["mnist", "--model", "plain_4k", "--results", str(blocker / "runs.csv"),
                 *TINY]) == 2
    assert f"cannot create {blocker / 'runs.csv'}: {blocker} is not a folder" in _err(capsys)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    real = os.access
    os_access = lambda p, mode: False if str(p) == str(readonly) else real(p, mode)  # noqa
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "access", os_access)
        with pytest.raises(ResultsError, match=f"{readonly} is not writable"):
            check_target(readonly / "runs.csv")


def test_checkpoints_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "checkpoints").write_text("")
    with pytest.raises(ResultsError, match="cannot save the run's checkpoints"):
        check_target(tmp_path / "runs.csv")


def test_hymenoptera_checks_before_weights_and_images(tmp_path, no_data, capsys):
    assert main(["hymenoptera", "--weights", "none", "--results", str(tmp_path),
                 "--epochs", "1"]) == 2
    assert f"{tmp_path} is a folder" in _err(capsys)


def test_search_confirm_checks_before_loading_data(results_dir, no_data):
    (results_dir / "runs.csv").write_bytes(DAMAGE["31 fields"][0](_good()))
    study = optuna.create_study()
    study.set_user_attr("search", {"task": "mnist"})
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=90.0))
    with pytest.raises(ResultsError, match="runs.csv, line 4: 31 fields"):
        confirm(study, 1, [1], {"device": "cpu"}, numbers=[0])


def test_headers_accepted_and_refused(tmp_path):
    """Extra columns are kept (left empty); a header lacking one would drop values: refused."""
    path = tmp_path / "runs.csv"
    path.write_text(",".join([*COLUMNS, "note"]) + "\n")
    append_row(_row(1), path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert rows[0]["note"] == "" and rows[0]["model"] == "model 0/1"
    path.write_text(",".join(c for c in COLUMNS if c != "seed") + "\n")
    with pytest.raises(ResultsError, match="line 1: not a runs header: it lacks the column"):
        append_row(_row(1), path)
    empty = tmp_path / "empty.csv"
    empty.touch()  # 0 bytes: the header comes with the first row
    append_row(_row(1), empty)
    assert pd.read_csv(empty).shape == (1, len(COLUMNS))


# ---- whole rows or none ---------------------------------------------------------------------

def test_a_row_is_one_write_then_fsync(tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    path.write_bytes(_good())
    calls, real_write, real_fsync = [], os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, b: calls.append(("write", bytes(b)))
                        or real_write(fd, b))
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync",)) or real_fsync(fd))
    append_row(_row(7, pad=100_000), path)
    assert calls == [("write", encode(_row(7, pad=100_000), COLUMNS, False)), ("fsync",)]


def _disk_full(path, monkeypatch, short: bool = False) -> None:
    """os.write on `path` writes part of the data, then fails as a full disk does (or, short,
    returns the count written, as a write that ran out of room half way may)."""
    real = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}") != str(path):
            return real(fd, data)
        n = real(fd, bytes(data)[:len(data) // 2])
        if short:
            return n
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("short", [False, True], ids=["ENOSPC", "short write"])
def test_full_disk_cuts_the_file_back(short, tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    path.write_bytes(_good())
    before = path.read_bytes()
    with monkeypatch.context() as m:
        _disk_full(path, m, short)
        with pytest.raises(ResultsError, match="no row was written.*the file is as it was"):
            append_row(_row(3, pad=1000), path)
    assert path.read_bytes() == before
    append_row(_row(4), path)  # the next row lands on a clean line
    assert check_text(path.read_bytes(), path) == COLUMNS
    assert len(pd.read_csv(path)) == 3


def test_full_disk_during_a_run_leaves_no_row_and_no_checkpoint(mnist_root, results_dir,
                                                                monkeypatch, capsys):
    runs = results_dir / "runs.csv"
    runs.write_bytes(_good())
    before = runs.read_bytes()
    _disk_full(runs, monkeypatch)
    assert main(["mnist", "--model", "plain_4k", "--data-root", str(mnist_root), "--results",
                 str(runs), "--val-split", "100", *TINY]) == 2
    assert "no row was written" in _err(capsys)
    assert runs.read_bytes() == before
    assert list((results_dir / "checkpoints").iterdir()) == []  # final, best and sidecars gone


def test_save_run_that_fails_half_way_leaves_no_files(tmp_path, monkeypatch):
    model = build("v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05")
    best = BestWeights(model)
    best(1, {"val_acc": 50.0})
    real, saved = checkpoint.save, []

    def save(state, sidecar, path):  # the final weights fit, the best ones do not
        if saved:
            path.with_name(path.name + ".tmp").write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        saved.append(path)
        return real(state, sidecar, path)
    monkeypatch.setattr(checkpoint, "save", save)
    row = {"task": "mnist", "model": "m", "seed": 1, "epochs": 1, "arch": model.arch,
           "timestamp": "2025-01-02T03:04:05+00:00",
           "_result": {"history": [{"epoch": 1, "val_acc": 50.0}]}}
    with pytest.raises(OSError):
        save_run(row, model, best, tmp_path)
    assert saved and list(tmp_path.iterdir()) == []


# ---- concurrent writers -----------------------------------------------------------------------

def _write_rows(path, writer: int, n: int) -> None:
    for i in range(n):
        append_row(_row(i, writer, pad=3000), path)


def _check_all_rows(path, writers: int, n: int) -> None:
    data = path.read_bytes()
    assert check_text(data, path) == COLUMNS
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert all(len(r) == len(COLUMNS) for r in rows)
    seen = sorted((json.loads(r[-1])["writer"], json.loads(r[-1])["i"]) for r in rows[1:])
    assert seen == [(w, i) for w in range(writers) for i in range(n)]


def test_threads_never_interleave(tmp_path):
    path = tmp_path / "runs.csv"
    threads = [threading.Thread(target=_write_rows, args=(path, w, 25)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_all_rows(path, 4, 25)


def test_processes_never_interleave(tmp_path):
    path = tmp_path / "runs.csv"
    fork = multiprocessing.get_context("fork")  # torch is imported already: no re-import
    procs = [fork.Process(target=_write_rows, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    _check_all_rows(path, 4, 25)


# ---- the leaderboard --------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["31 fields", "unbalanced quote", "no final newline",
                                  "text in a number column"])
def test_leaderboard_names_the_damaged_line(case, tmp_path, capsys):
    damage, line = DAMAGE[case]
    (tmp_path / "runs.csv").write_bytes(damage(_good()))
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'runs.csv'}, line {line}:" in _err(capsys)
    assert not (tmp_path / "leaderboard.csv").exists()


def test_leaderboard_of_an_empty_file(tmp_path, capsys):
    (tmp_path / "runs.csv").touch()
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'runs.csv'} is empty (0 bytes)" in _err(capsys)


# ---- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("column, value", [("final_test_acc", float("inf")), ("seed", -1),
                                           ("test_acc_per_epoch", "[NaN]"), ("config", "[]"),
                                           ("seconds", float("nan"))])
def test_a_row_that_would_damage_the_file_is_not_written(column, value, tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(_good())
    with pytest.raises(ResultsError, match=f"row was not written: its {column} is"):
        append_row({**_row(5), column: value}, path)
    assert path.read_bytes() == _good()


def test_a_file_saved_with_a_bom_takes_rows(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _good())
    append_row(_row(5), path)
    assert pd.read_csv(path, encoding="utf-8-sig").seed.tolist() == [0, 1, 5]


def test_seeds_done_match_recipe_and_scope_not_where_it_ran(tmp_path):
    """--resume's reading of a runs CSV: a row counts for the seed it ran when every recipe and
    scope field but the seed equals the planned run's, wherever it ran (threads, device); a
    field a row predates counts at its default."""
    import dataclasses
    from dataclasses import asdict

    from benchmarks.harness.config import Config
    from benchmarks.harness.results import seeds_done

    path = tmp_path / "runs.csv"
    cfg = Config(model="plain_4k", epochs=20, lr=0.05)
    ran = [asdict(cfg) | {"seed": 1, "threads": 2},                   # same run, elsewhere
           asdict(cfg) | {"seed": 2, "lr": 0.1},                      # another recipe
           asdict(cfg) | {"seed": 3, "epochs": 15},                   # another scope
           {k: v for k, v in asdict(cfg).items() if k != "ema"} | {"seed": 4}]  # predates ema
    for i, config in enumerate(ran):
        append_row(_row(i) | {"config": json.dumps(config)}, path)
    assert seeds_done(cfg, path) == {1, 4}
    assert seeds_done(cfg, tmp_path / "none.csv") == set()
    assert seeds_done(dataclasses.replace(cfg, ema=0.5), path) == set()  # no row ran that
