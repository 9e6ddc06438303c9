"""Issue 18: every user error is a clear message and exit 2, with no traceback, and a refused
search run leaves its storage as it was (points 2 and 3; table cases 1, 2, 8, 10, 11, 12).

The property-based tests at the end throw random strings and numbers at the parsers and the
command lines; none loads data (a data root that does not exist stops every run first).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import typing
from pathlib import Path

import optuna
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import models
from benchmarks.__main__ import main as benchmarks_main
from benchmarks.harness.config import Config, add_config_args, names
from benchmarks.harness.device import resolve_device
from benchmarks.tasks import config_from_args
from errors import UserError
from models import ArchError, arch_of, create_model, parse
from models.__main__ import main as models_main
from search.__main__ import main as search_main

REPO = Path(__file__).resolve().parents[1]
NO_DATA = "/nonexistent-mnist-root-for-tests"
TINY = ["--epochs", "1", "--train-subset", "350", "--test-subset", "200", "--no-live"]


def search(*argv) -> int:
    return search_main([str(a) for a in argv])


def mnist(*argv) -> int:
    return benchmarks_main(["mnist", *(str(a) for a in argv)])


def studies(url: str) -> list[str]:
    return optuna.get_all_study_names(url)


def rc_of(call) -> int:
    """The exit code of a CLI call: its return value, or argparse's SystemExit code."""
    try:
        return call()
    except SystemExit as e:
        return e.code


# ----------------------------------------------------------------------------------------------
# Case 1 and 2: architecture strings.

@pytest.mark.parametrize("arch", ["v8-zz-p-gap|do0", "|do0", "v-8-t10-gap|do0",
                                  "c" + "9" * 5000 + "-t10-gap|do0"])
def test_bad_architecture_strings_exit_2_without_traceback(arch, tmp_path, capsys):
    assert mnist("--model", arch, "--data-root", NO_DATA, "--results", tmp_path / "r.csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert models_main(["summary", arch]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("name", ["nope", "plain_7k", ""])
def test_a_recipe_no_member_has_exits_2_and_names_those_that_have_one(name, tmp_path, capsys):
    assert mnist("--model", "v8-p-t8-v12-t10-gap|do0", "--recipe", name, "--data-root", NO_DATA,
                 "--results", tmp_path / "r.csv") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and "nas_plain_6k" in err
    assert f"--recipe {name!r}" in err
    assert not (tmp_path / "r.csv").exists()


def test_arch_error_is_a_user_error_at_the_registry():
    with pytest.raises(UserError) as e:
        arch_of("v8-zz-p-gap|do0")
    assert isinstance(e.value, ArchError)  # what the search's sampler catches, as before
    assert "zz" in str(e.value)


def test_missing_dropout_suffix_says_so(capsys):
    assert models_main(["summary", "v64-v64-p-t10-gap"]) == 2
    err = capsys.readouterr().err
    assert "without its dropout suffix" in err and "|do" in err
    assert "unknown model" not in err
    assert mnist("--model", "v64-v64-p-t10-gap", "--data-root", NO_DATA) == 2
    assert "without its dropout suffix" in capsys.readouterr().err
    with pytest.raises(models.UnknownModelError):  # a zoo-like name still lists the zoo
        arch_of("plain_99k")


def test_absurd_widths_are_refused_before_anything_is_allocated():
    for arch in ("c9999999999-c9999999999-t10-gap|do0", "c99999-c99999-t10-gap|do0",
                 "c" + "9" * 40 + "-t10-gap|do0"):
        with pytest.raises(models.OverBudgetError, match="over the budget"):
            create_model(arch)  # 9e20 parameters would not fit in any memory: counted, not built


def test_counting_first_draws_no_random_numbers():
    torch.manual_seed(3)
    a = create_model("plain_7k")
    torch.manual_seed(3)
    b = models.build(arch_of("plain_7k"))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


# ----------------------------------------------------------------------------------------------
# Case 10 and every numeric option: NaN and the infinities are refused, exit 2.

FLOAT_FIELDS = [f.name for f in dataclasses.fields(Config)
                if typing.get_type_hints(Config)[f.name] is float]
INT_FIELDS = [f.name for f in dataclasses.fields(Config)
              if typing.get_type_hints(Config)[f.name] is int and f.name != "seed"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_every_numeric_option_refuses_nan_and_infinities(value, tmp_path, capsys):
    assert FLOAT_FIELDS and INT_FIELDS
    for field in FLOAT_FIELDS + INT_FIELDS:
        flag = "--" + field.replace("_", "-")
        rc = rc_of(lambda: mnist(flag, value, "--data-root", NO_DATA))
        assert rc == 2, (flag, value)
        err = capsys.readouterr().err
        assert "Traceback" not in err and (field in err or flag in err), (flag, err)
        with pytest.raises(UserError, match=field):
            Config(**{field: float(value)})
    url = f"sqlite:///{tmp_path / 's.db'}"
    for flag in ("--timeout", "--n-trials", "--max-trials", "--seed", "--heartbeat", "--budget",
                 "--val-split", "--test-subset", "--epochs", "--train-subset", "--threads"):
        rc = rc_of(lambda: search("run", "--storage", url, "--data-root", NO_DATA, flag, value))
        assert rc == 2, (flag, value)
        assert "Traceback" not in capsys.readouterr().err
    assert rc_of(lambda: search("confirm", "--study", "x", "--storage", url, "--top", value)) == 2
    assert not (tmp_path / "s.db").exists() or studies(url) == []


def test_timeout_nan_no_longer_runs_for_ever(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert search("run", "--storage", url, "--timeout", "nan", "--data-root", NO_DATA) == 2
    assert "--timeout must be a positive number (got nan)" in capsys.readouterr().err
    assert search("run", "--storage", url, "--timeout", "1e30", "--data-root", NO_DATA) == 2
    assert "--timeout must be at most" in capsys.readouterr().err
    assert search("run", "--storage", url, "--seed", "-1", "--data-root", NO_DATA) == 2
    assert search("run", "--storage", url, "--seed", str(2**40), "--data-root", NO_DATA) == 2
    assert search("confirm", "--study", "x", "--storage", url, "--seeds", "-3") == 2


# ----------------------------------------------------------------------------------------------
# Device strings.

@pytest.mark.parametrize("device", ["cuda:abc", "cuda:", "CPU", "gpu", "cuda:-1", "cpu:x",
                                    " cpu", "cuda:0:1", ""])
def test_malformed_device_strings(device, capsys):
    with pytest.raises(UserError, match="device must be"):
        Config(device=device)
    with pytest.raises(UserError):
        resolve_device(device)
    assert mnist("--device", device, "--data-root", NO_DATA) == 2
    assert "device" in capsys.readouterr().err


def test_devices_this_machine_lacks():
    missing = [] if torch.backends.mps.is_available() else ["mps"]
    missing.append(f"cuda:{torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    for device in missing:
        Config(device=device)  # well formed ...
        with pytest.raises(UserError, match="asked for, but"):
            resolve_device(device)  # ... but not here: refused before any data is loaded


# ----------------------------------------------------------------------------------------------
# Paths, storage URLs and permissions.

def test_storage_urls_paths_and_permissions(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    for url, why in [("sqlite:///", "invalid storage URL"),
                     (f"sqlite:///{folder}", "not a file"),
                     ("nosuchdb://x", "cannot open storage"),
                     (f"sqlite:///{tmp_path / 'f.txt'}/x.db", "cannot use")]:
        (tmp_path / "f.txt").write_text("a file, not a folder")
        assert search("run", "--storage", url, "--data-root", NO_DATA) == 2, url
        assert why in capsys.readouterr().err, url
    # A read-only database (tests run as root, whom permissions do not stop: ask os.access).
    db = tmp_path / "ro.db"
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="kept", storage=url).enqueue_trial({})  # one to export
    real = __import__("os").access
    monkeypatch.setattr("search.storage.os.access",
                        lambda p, mode: False if Path(p) == db else real(p, mode))
    assert search("run", "--storage", url, "--data-root", NO_DATA) == 2
    assert "read-only for this user" in capsys.readouterr().err
    monkeypatch.undo()
    assert studies(url) == ["kept"]
    # export --out: a file where the folder should be; models --csv into a missing folder.
    assert search("export", "--study", "kept", "--storage", url, "--out",
                  tmp_path / "f.txt") == 2
    assert "cannot write the export" in capsys.readouterr().err
    assert models_main(["--csv", str(tmp_path / "missing" / "zoo.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Case 11: study names.

def test_study_names_are_checked_and_never_paths(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    for name in ["", "../../tmp/x", "../outside", "a/b", ".hidden", "x" * 101, "a\0b", "é"]:
        assert search("run", "--storage", url, "--study", name, "--data-root", NO_DATA) == 2
        assert "a study name is" in capsys.readouterr().err
        for cmd in (["export", "--out", tmp_path / "out"], ["confirm"], ["promote", "--trial", 0]):
            assert search(cmd[0], "--study", name, "--storage", url, *cmd[1:]) == 2
            assert "a study name is" in capsys.readouterr().err
    assert search("run", "--storage", url, "--warm-start", "../x", "--data-root", NO_DATA) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even s.db
    # A study made outside the CLI with such a name cannot be exported out of --out either.
    optuna.create_study(study_name="../outside", storage=url)
    out = tmp_path / "out"
    assert search("export", "--study", "../outside", "--storage", url, "--out", out) == 2
    assert not (tmp_path / "outside-trials.csv").exists() and not out.exists()


# ----------------------------------------------------------------------------------------------
# Case 8: a refused run creates and pins nothing; the same command, fixed, then runs.

def test_refused_runs_leave_no_study_behind(tmp_path, mnist_root, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = ["run", "--storage", url, "--study", "q", "--data-root", mnist_root, *TINY]
    assert search(*base, "--n-trials", 1, "--val-split", 60000) == 2
    assert "leaves no training images" in capsys.readouterr().err
    assert search(*base, "--n-trials", 1, "--enqueue-zoo", "plain_7kk") == 2
    assert "not zoo members: plain_7kk" in capsys.readouterr().err
    assert search(*base, "--n-trials", 1, "--warm-start", "nope") == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    assert search(*base, "--n-trials", 1, "--warm-start", "q") == 2  # itself
    assert search(*base, "--n-trials", 1, "--data-root", NO_DATA) == 2
    assert studies(url) == []  # none of them created (or pinned) study q
    assert search(*base, "--n-trials", 1) == 0  # the run without the mistake
    study = optuna.load_study(study_name="q", storage=url)
    assert study.user_attrs["search"]["val_split"] == 10_000
    assert len([t for t in study.trials if t.state.is_finished()]) >= 1


def test_refused_runs_leave_nothing_in_the_working_folder(tmp_path, monkeypatch, capsys):
    """No empty ./data/MNIST/raw from a download that failed, no results/search.db, no
    study database named by --storage: a refused run leaves the folder as it found it."""
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("offline")

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_ROOT", raising=False)  # the ./data default, which downloads
    monkeypatch.setattr("benchmarks.harness.results.RESULTS_DIR", Path("results"))
    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    for argv, why in [
        (["mnist", "--epochs", 0], "epochs must be at least 1"),
        (["mnist", "--model", "plain_7kk"], "unknown model"),
        (["mnist", "--model", "c64-c64-c64-c64-gap-fc|do0"], "budget"),
        (["mnist", "--model", "plain_4k", "--epochs", 1], "could not be downloaded"),
    ]:
        assert mnist(*argv[1:]) == 2, argv
        assert why in capsys.readouterr().err, argv
    for argv, why in [
        (["--storage", "sqlite:///new.db", "--epochs", 0], "epochs must be at least 1"),
        (["--storage", "sqlite:///sub/new.db", "--n-trials", 1], "could not be downloaded"),
        (["--n-trials", 1, "--budget", 10**6], "over the zoo's budget"),
        (["--n-trials", 1], "could not be downloaded"),  # the default, results/search.db
    ]:
        assert search("run", "--study", "x", *argv) == 2, argv
        assert why in capsys.readouterr().err, argv
    assert search("export", "--study", "x", "--storage", "sqlite:///new.db", "--out", "o") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Case 12: the README's tiny search on a fresh clone, whose results/search.db holds the
# 20-epoch mnist-accuracy study.

README_TINY = ["--n-trials", "3", "--epochs", "2", "--train-subset", "700", "--test-subset", "500",
               "--no-live"]


def test_readme_tiny_search_runs_as_written_on_a_fresh_clone(results_dir, mnist_root, capsys):
    shutil.copy(REPO / "results" / "search.db", results_dir / "search.db")
    url = f"sqlite:///{results_dir / 'search.db'}"
    before = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(url)}
    assert before.get("mnist-accuracy")  # the committed 20-epoch study
    # Without --study it resumes mnist-accuracy, pinned to 20 epochs: refused, naming a study.
    assert search("run", *README_TINY, "--data-root", mnist_root) == 2
    err = capsys.readouterr().err
    assert "epochs=20 (now 2)" in err and "--study mnist-accuracy-e2-train700-test500" in err
    # The README's command (its own study), here with one trial to keep the test short.
    argv = ["run", "--study", "mnist-tiny", *README_TINY, "--data-root", mnist_root]
    argv[argv.index("--n-trials") + 1] = "1"
    assert search(*argv) == 0
    after = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(url)}
    assert {k: v for k, v in after.items() if k != "mnist-tiny"} == before  # nothing else moved
    assert after["mnist-tiny"] >= 1


# ----------------------------------------------------------------------------------------------
# Property-based: random strings and numbers at the parsers and the CLI entry points find no
# exception but a UserError (exit 2) or argparse's SystemExit(2).

NUMBERISH = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "Infinity", "1e400", "-0", "0", "1", "0x10",
                     "1_000", " 5 ", "", "1e-400", "2147483648", "-2147483649", "5.5"]),
    st.text(max_size=8),
)
TEXT = st.text(max_size=30)
ARCHISH = st.builds(
    lambda ops, tail: "-".join(ops) + tail,
    st.lists(st.sampled_from(["c8", "v16", "t10", "p", "gap", "fc", "x4", "s8", "d12", "r8",
                              "g8", "g7", "e2", "c8b", "v10ab", "t10n", "fcn", "zz", "", "c0",
                              "c99999999", "V8", "c-1", "c1.5"]), max_size=8),
    st.sampled_from(["|do0", "|do0.1", "|do", "|do1.5", "|donan", "|doinf", "", "|x", "|do-0",
                     "|do0|do0", " |do0"]))
CONFIG_FLAGS = [f.name for f in dataclasses.fields(Config)
                if f.name not in ("task", "seed", "data_root", "threads", "workers")]
PROPERTY = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _value_for(field: str):
    kind = typing.get_type_hints(Config)[field]
    if field == "model":
        return st.one_of(ARCHISH, TEXT, st.sampled_from(models.list_models()))
    if field == "device":
        return st.one_of(TEXT, st.sampled_from(["cpu", "cuda", "cuda:1", "mps", "auto"]))
    return NUMBERISH if kind in (int, float) else st.one_of(TEXT, NUMBERISH)


OPTIONS = st.lists(st.sampled_from(CONFIG_FLAGS).flatmap(
    lambda f: st.tuples(st.just(f), _value_for(f))), max_size=4)


@PROPERTY
@given(OPTIONS)
def test_property_config_from_the_command_line(options):
    parser = argparse.ArgumentParser()
    add_config_args(parser, tuple(n for n in names() if n != "task"))
    argv = [a for f, v in options for a in (f"--{f.replace('_', '-')}", v)]
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: a value of the wrong kind
        assert e.code == 2
        return
    try:
        cfg = config_from_args(args, task="mnist")
    except UserError:
        return
    for f in dataclasses.fields(cfg):  # what passed is usable: finite numbers
        value = getattr(cfg, f.name)
        assert not isinstance(value, float) or math.isfinite(value)


@PROPERTY
@given(ARCHISH | TEXT)
@example("c" + "9" * 5000 + "-t10-gap|do0")
@example("v8-v16-p-t8-v16-t10-gap|do0.05")
def test_property_architecture_strings(text):
    try:
        parse(text)
    except ValueError:  # ArchError (or a width with thousands of digits)
        pass
    try:
        model = create_model(text)
    except UserError:
        return
    assert models.count_params(model) <= models.BUDGET


@PROPERTY
@given(TEXT | st.sampled_from(["cuda:0", "cuda:99", "mps", "cpu", "cpu:0", "meta", "auto"]))
def test_property_device_strings(device):
    try:
        Config(device=device)
    except UserError:
        return
    try:
        resolve_device(device)
    except UserError:
        pass


@PROPERTY
@given(OPTIONS, st.lists(st.sampled_from(["--jobs", "--seeds"]).flatmap(
    lambda f: st.tuples(st.just(f), NUMBERISH)), max_size=2))
def test_property_benchmarks_mnist_cli(tmp_path, options, extra):
    argv = [a for f, v in options for a in (f"--{f.replace('_', '-')}", v)]
    argv += [a for f, v in extra for a in (f, v)]
    results = tmp_path / "runs.csv"
    rc = rc_of(lambda: mnist(*argv, "--data-root", NO_DATA, "--results", results))
    assert rc == 2  # no data here: every run ends before training, with a message
    assert not results.exists()


SEARCH_FLAGS = ["--n-trials", "--max-trials", "--timeout", "--seed", "--heartbeat", "--budget",
                "--val-split", "--test-subset", "--epochs", "--train-subset", "--jobs",
                "--eval-batch-size", "--study", "--warm-start", "--enqueue-zoo", "--task",
                "--objective", "--sampler", "--pruner", "--device"]


SEARCH_TEXT = {"--study": ["q", "mnist-x", "a.b_c+d"], "--warm-start": ["q", "other"],
               "--enqueue-zoo": ["plain_7k", "ghost_9k", "plain_16k"], "--task": ["mnist"],
               "--objective": ["accuracy", "pareto"], "--sampler": ["tpe", "random", "nsga2"],
               "--pruner": ["hyperband", "none", "median"], "--device": ["cpu", "auto"]}


def _search_value(flag: str):
    if flag in SEARCH_TEXT:
        return st.one_of(TEXT, st.sampled_from(SEARCH_TEXT[flag]))
    return st.one_of(NUMBERISH, st.integers(1, 5).map(str))


@PROPERTY
@given(st.lists(st.sampled_from(SEARCH_FLAGS).flatmap(
    lambda f: st.tuples(st.just(f), _search_value(f))), max_size=5))
def test_property_search_run_cli(tmp_path_factory, options):
    folder = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{folder / 's.db'}"
    argv = [a for f, v in options for a in (f, v)]
    threads = torch.get_num_threads()  # --jobs N sets one thread per trial in this process
    try:
        rc = rc_of(lambda: search("run", "--storage", url, *argv, "--data-root", NO_DATA,
                                  "--no-live"))
    finally:
        torch.set_num_threads(threads)
    assert rc == 2
    assert not (folder / "s.db").exists() or studies(url) == []  # refused: no study made


@PROPERTY
@given(ARCHISH | TEXT)
def test_property_models_summary_cli(name):
    assert rc_of(lambda: models_main(["summary", name])) in (0, 2)
