"""python -m benchmarks {mnist,hymenoptera,leaderboard,evaluate,export,plots,speed,docs,clean}: the
harness's command line. One subcommand per registered task trains it; the rest read what runs
wrote."""

from __future__ import annotations

import argparse
import functools
import sys

from .commands import clean, docs, evaluate, export, leaderboard, plots, speed, train
from .harness.cli import parse_args, run_command

# Each command module has add_parser(subparsers), which sets func(args) -> exit code.
COMMANDS = [train, leaderboard, evaluate, export, plots, speed, docs, clean]


def main(argv: list[str] | None = None) -> int:
    # allow_abbrev=False everywhere: `--epoch 1` is refused, never taken for --epochs.
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=functools.partial(argparse.ArgumentParser,
                                                               allow_abbrev=False))
    for module in COMMANDS:
        module.add_parser(sub)
    args = parse_args(parser, sub, argv)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
