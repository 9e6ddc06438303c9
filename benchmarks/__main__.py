"""python -m benchmarks {mnist,hymenoptera,leaderboard,evaluate,plots,speed,docs,clean}: the
harness's command line. One subcommand per registered task trains it; the rest read what runs
wrote."""

from __future__ import annotations

import argparse
import sys

from .commands import clean, docs, evaluate, leaderboard, plots, speed, train
from .harness.runs import run_command

# Each command module has add_parser(subparsers), which sets func(args) -> exit code.
COMMANDS = [train, leaderboard, evaluate, plots, speed, docs, clean]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
