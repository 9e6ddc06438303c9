"""Command-line conventions: console scripts beside `python -m`, no abbreviated flags, an unknown
argument refused by its subcommand, and a suggestion for a misspelled flag or model name."""

from __future__ import annotations

import importlib
import inspect
import tomllib

import pytest
from conftest import REPO

import benchmarks.__main__
import models.__main__
import search.__main__

SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_is_a_main_taking_argv_and_returning_its_exit_code(name, capsys):
    module, func = SCRIPTS[name].split(":")
    main = getattr(importlib.import_module(module), func)
    assert module.endswith(".__main__") and inspect.signature(main).parameters["argv"].default \
        is None
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("main, argv, flag, hint", [
    (benchmarks.__main__.main, ["mnist", "--epoch", "1"], "--epoch", "--epochs"),
    (benchmarks.__main__.main, ["evaluate", "--checkpoint", "x", "--spl", "val"], "--spl", None),
    (search.__main__.main, ["run", "--epoch=1"], "--epoch", "--epochs"),
    (search.__main__.main, ["confirm", "--study", "x", "--seed", "1"], "--seed", "--seeds"),
    (models.__main__.main, ["--cs"], "--cs", None),
])
def test_an_abbreviated_flag_is_refused_not_guessed(main, argv, flag, hint, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and f"unrecognized arguments: {flag}" in err
    assert (f"(did you mean {hint}?)" in err) == (hint is not None)


@pytest.mark.parametrize("main, argv, command, unknown", [
    (benchmarks.__main__.main, ["mnist", "--bogus"], "benchmarks mnist", "--bogus"),
    (benchmarks.__main__.main, ["leaderboard", "extra"], "benchmarks leaderboard", "extra"),
    (search.__main__.main, ["run", "--bogus", "1"], "search run", "--bogus 1"),
    (search.__main__.main, ["export", "--study", "x", "--bogus"], "search export", "--bogus"),
    (models.__main__.main, ["summary", "plain_7k", "--bogus"], "models summary", "--bogus"),
])
def test_an_unknown_argument_is_refused_with_its_subcommands_usage(main, argv, command, unknown,
                                                                  capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith(f"usage: python -m {command} [-h]")
    assert err.endswith(f"python -m {command}: error: unrecognized arguments: {unknown}\n")


def test_a_misspelled_model_gets_the_closest_names(capsys):
    assert models.__main__.main(["summary", "plain_7kk"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "unknown model 'plain_7kk'; did you mean plain_7k" in err
    assert benchmarks.__main__.main(["mnist", "--model", "resnet8k", "--epochs", "1"]) == 2
    assert "did you mean resnet_8k" in capsys.readouterr().err.replace("\n", "")


HEAVY = ("torch", "pandas", "matplotlib")
HELPS = [("benchmarks",), *[("benchmarks", c) for c in
                            ("mnist", "hymenoptera", "leaderboard", "evaluate", "export", "plots",
                             "speed", "docs", "clean")],
         ("search",), *[("search", c) for c in ("run", "confirm", "promote", "export")],
         ("models",)]


@pytest.mark.parametrize("command", HELPS, ids=" ".join)
def test_help_imports_neither_torch_pandas_nor_matplotlib(command):
    """--help builds the parsers only: what each command trains or reads is imported when it
    runs. `python -X importtime` lists every module the process imported."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", *command, "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert len(imported) > 10  # the listing is there: a check that cannot pass vacuously
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
