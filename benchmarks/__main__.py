"""python -m benchmarks {mnist,leaderboard,...}: the training harness's command line."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from models import UserError

from . import evaluate, hymenoptera, leaderboard, make_plots, mnist, speed
from .train import DivergedError

# Each command module has add_parser(subparsers), which sets func(args) -> exit code.
COMMANDS = [mnist, hymenoptera, leaderboard, evaluate, make_plots, speed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False)
        return 2
    except DivergedError as e:
        Console(stderr=True).print(f"[red]error:[/red] training diverged: {e}; no row written",
                                   highlight=False)
        return 1
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted: the run in progress wrote no row")
        return 130


if __name__ == "__main__":
    sys.exit(main())
