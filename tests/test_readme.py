"""Every command in README.md runs as written: the shell blocks' `python -m` lines
run with tiny settings appended (argparse keeps the last value of a repeated flag), against a
private results folder and a copy of the committed study database; `make` lines must name a
target of the Makefile; the Python block runs as is."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(bash|python)\n(.*?)```", README, re.S)
COMMANDS = [line.split("#")[0].strip() for kind, body in BLOCKS if kind == "bash"
            for line in body.splitlines() if line.strip() and not line.startswith("#")]
PYTHON = [c for c in COMMANDS if c.startswith("python -m ")]
MAKE = [c for c in COMMANDS if c.startswith("make ")]
SMALL = ["--epochs", "1", "--train-subset", "256", "--test-subset", "200"]


def tiny(argv: list[str], tmp) -> list[str]:
    """The settings that make one README command take seconds, appended to it."""
    storage = ["--storage", f"sqlite:///{tmp / 'search.db'}"]  # a copy of the committed one
    module, command = argv[2], argv[3] if len(argv) > 3 else ""
    if (module, command) == ("benchmarks", "mnist"):
        return [*SMALL, "--seeds", "1", "--progress", "false"]
    if (module, command) == ("search", "run"):
        # a new database: the committed studies are pinned to their own (20-epoch) settings
        fresh = ["--storage", f"sqlite:///{tmp / 'fresh.db'}"]
        return [*fresh, *SMALL, "--n-trials", "1", "--no-live", "--jobs", "1"]
    if (module, command) == ("search", "confirm"):
        return [*storage, *SMALL, "--seeds", "1", "--top", "1"]
    if (module, command) == ("search", "export"):
        return [*storage, "--out", str(tmp)]
    return []


def test_readme_has_commands_to_check():
    assert len(PYTHON) >= 6 and {"make test", "make search"} <= set(MAKE)
    assert not [c for c in COMMANDS if "[" in c or "..." in c], "placeholders are not runnable"


@pytest.mark.parametrize("command", MAKE)
def test_make_lines_name_a_target(command):
    target = shlex.split(command)[1]
    assert re.search(rf"^{re.escape(target)}:", (REPO / "Makefile").read_text(), re.M), command


@pytest.mark.parametrize("command", PYTHON)
def test_python_lines_run_as_written(command, mnist_root, tmp_path):
    shutil.copy(REPO / "results" / "search.db", tmp_path / "search.db")
    argv = shlex.split(command)
    env = {**os.environ, "MNIST_ROOT": str(mnist_root), "NAS_RESULTS": str(tmp_path)}
    out = subprocess.run([sys.executable, *argv[1:], *tiny(argv, tmp_path)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"


def test_python_block_runs():
    for kind, body in BLOCKS:
        if kind == "python":
            exec(compile(body, "README.md", "exec"), {})
