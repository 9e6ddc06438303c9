"""The errors the command lines report without a traceback, below every layer: the zoo, the
harness, the tasks and the command lines import them from here, and the command lines catch
them (benchmarks/harness/cli.py). A module of its own, free of torch, so `--help` stays instant."""


class UserError(Exception):
    """Bad input from a user: the CLIs print the message and exit non-zero, no traceback."""


class DivergedError(RuntimeError):
    """Training produced a NaN, infinite or runaway loss; the run stops and no row is written."""
