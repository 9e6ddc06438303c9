"""The training harness: a library (harness/), the tasks it trains (tasks/) and the commands
that drive it (commands/); `python -m benchmarks --help` lists them."""
