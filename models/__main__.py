"""python -m models [--csv [PATH]] | summary NAME : parameter-count reports of the zoo."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__,
                                     allow_abbrev=False)
    parser.add_argument("--csv", nargs="?", const="-", metavar="PATH",
                        help="write the zoo table as CSV (to PATH, or stdout)")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("summary", help="torchinfo's per-layer table for one model",
                       allow_abbrev=False)
    s.add_argument("name", help="zoo member name or architecture string")
    args, extra = parser.parse_known_args(argv)
    if extra:  # refused with the usage of the subcommand they were given to
        (s if args.command == "summary" else parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    from .report import print_summary, print_zoo, write_csv, zoo_rows  # torch: not for --help

    try:
        if args.command == "summary":
            print_summary(args.name)
        elif args.csv:
            rows = zoo_rows()
            if args.csv == "-":
                write_csv(rows)
            else:
                try:
                    with open(args.csv, "w", newline="") as f:
                        write_csv(rows, f)
                except OSError as e:
                    raise UserError(f"cannot write {args.csv}: {e.strerror or e}") from None
                print(f"wrote {args.csv} ({len(rows)} models)")
        else:
            print_zoo(zoo_rows())
    except UserError as e:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {e}", highlight=False)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
