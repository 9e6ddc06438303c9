"""What every command line shares, free of torch (so `--help` stays instant): how a command
ends (run_command: user errors, divergence, Ctrl-C and SIGTERM as exit codes), the --jobs
option, and --seeds given twice."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import signal
import threading
from collections.abc import Callable

from rich.console import Console

from errors import DivergedError, UserError

SEED_LIMIT = 2**31 - 1  # what numpy (the samplers) and torch (training) both take


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, docker stop), handled as Ctrl-C is: the run in flight is
    abandoned whole, and what it had written is removed."""


def interrupt(signum, frame):
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread while this is open."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def run_command(func: Callable[[], int],
                interrupted: str = "interrupted: the run in progress wrote no row") -> int:
    """Run a CLI command: user errors and diverged runs become a message and an exit code;
    Ctrl-C and SIGTERM end it alike (exit 130 and 143, the shells' 128 + signal)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with terminate_as_interrupt():
            return func()
    except UserError as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    except DivergedError as e:
        err.print(f"[red]error:[/red] training diverged: {e}; no row written")
        return 1
    except KeyboardInterrupt as e:
        err.print(f"[yellow]{interrupted}[/yellow]")
        return 143 if isinstance(e, Terminated) else 130


def parse_args(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction,
               argv: list[str] | None) -> argparse.Namespace:
    """parser.parse_args(argv), except that an argument nothing takes is refused by the
    subcommand it was given to, with that subcommand's usage (argparse leaves it to the top
    parser, whose usage lists only the subcommands), and a misspelled flag is given the closest
    one that subcommand has."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        chosen = sub.choices.get(getattr(args, sub.dest, None), parser)
        flag = extra[0].split("=")[0]
        close = difflib.get_close_matches(flag, chosen._option_string_actions, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if flag.startswith("-") and close else ""
        chosen.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def distinct_seeds(seeds: list[int], say: Callable[[str], None]) -> list[int]:
    """--seeds in order, each once: a seed given twice would train the same run twice and
    append two identical rows. Said once, naming the seeds that were dropped."""
    unique = list(dict.fromkeys(seeds))
    if len(unique) < len(seeds):
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        say(f"seed(s) {' '.join(map(str, twice))} given more than once: each trains once")
    return unique


def add_jobs_arg(p, what: str, note: str = "") -> None:
    """The --jobs option, alike for every command that trains several runs."""
    p.add_argument("--jobs", default="1", metavar="N",
                   help=f"train N {what} side by side in threads, each on one CPU core; 'auto': "
                        f"one per usable core on CPU, 1 on a GPU (default 1{note})")


def parse_jobs(value: str) -> int | None:
    """--jobs as a positive number, or None for 'auto'."""
    try:
        jobs = None if value == "auto" else int(value)
    except ValueError:
        jobs = 0
    if jobs is not None and jobs < 1:
        raise UserError(f"invalid option: --jobs must be a positive number or auto (got {value})")
    return jobs


def check_positive(name: str, value, most: float = math.inf) -> None:
    """Refuse an option that is given and not a positive number up to `most`: NaN and the
    infinities too (NaN passes every comparison's `not`, and --timeout inf never stops)."""
    if value is None:
        return
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"invalid option: --{name} must be a positive number (got {value})")
    if value > most:
        raise UserError(f"invalid option: --{name} must be at most {most:,} (got {value:,})")


def check_seeds(option: str, seeds) -> None:
    for seed in [seeds] if isinstance(seeds, int) else seeds or []:
        if not 0 <= seed <= SEED_LIMIT:
            raise UserError(f"invalid option: {option} must be in [0, {SEED_LIMIT:,}] "
                            f"(got {seed})")
