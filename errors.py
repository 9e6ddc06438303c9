"""The one error every layer raises for bad input, below all of them: the zoo, the harness, the
tasks and the command lines import it from here, and the command lines catch it (exit 2, the
message, no traceback). A module of its own, free of torch, so that `--help` stays instant."""


class UserError(Exception):
    """Bad input from a user: the CLIs print the message and exit non-zero, no traceback."""
