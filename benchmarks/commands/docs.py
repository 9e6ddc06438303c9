"""python -m benchmarks docs: the tables in README.md and docs/*.md, generated from result files.

A Markdown file marks each generated table with a pair of comments,

    <!-- table: NAME [ARG] -->
    ...                 (rewritten by this command)
    <!-- end table -->

and NAME is one of TABLES (commands/tables.py; ARG, where given, is passed on: a model for
`runs`, a CSV's name for `ablation`). Every figure in them comes from a committed file
(results/leaderboard.csv, runs.csv, ablation.csv, speed.json, the study databases), never from
a hand edit;
`--check` exits 1 when a file is out of date (tests/test_docs.py runs it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from errors import UserError

from .tables import TABLES

FILES = ("README.md", "docs/performance.md", "docs/champions.md")
BLOCK = re.compile(r"(<!-- table: ([\w-]+) ?([\w.-]*) -->\n)(.*?)(<!-- end table -->)", re.S)


def render(text: str, results: Path) -> str:
    def fill(m: re.Match) -> str:
        if m[2] not in TABLES:
            raise UserError(f"unknown generated table {m[2]!r}; known: {', '.join(TABLES)}")
        return m[1] + TABLES[m[2]](results, m[3]) + m[5]
    return BLOCK.sub(fill, text)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("docs", help="regenerate the tables in README.md and docs/ from results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", type=Path, default=None,
                   help="default: results/ or $NAS_RESULTS")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if a file's tables are out of date")
    p.add_argument("files", nargs="*", type=Path, help=f"default: {' '.join(FILES)}")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..harness import results as results_mod

    results = Path(args.results_dir or results_mod.RESULTS_DIR)
    stale = []
    for path in args.files or [Path(f) for f in FILES]:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        text = path.read_text()
        new = render(text, results)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    verb = "out of date" if args.check else "rewritten"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "all tables up to date")
    return 1 if stale and args.check else 0
