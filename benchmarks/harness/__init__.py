"""The harness library: Config, the one train() loop, data, the fast path, checkpoints, the
results log and runs side by side. Tasks, commands and the search all train through it."""
