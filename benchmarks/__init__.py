"""The training harness: a library (harness/), the tasks it trains (tasks/) and the commands
that drive it (commands/); `python -m benchmarks --help` lists them. benchmarks.query(NAME)
returns the recorded runs of an architecture as a DataFrame."""

from .query import query

__all__ = ["query"]
