"""python -m benchmarks {mnist,leaderboard,...}: the training harness's command line."""

from __future__ import annotations

import argparse
import sys

from . import docs, evaluate, hymenoptera, leaderboard, make_plots, mnist, speed
from .runs import run_command

# Each command module has add_parser(subparsers), which sets func(args) -> exit code.
COMMANDS = [mnist, hymenoptera, leaderboard, evaluate, make_plots, speed, docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
