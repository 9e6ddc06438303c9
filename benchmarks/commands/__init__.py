"""One module per `python -m benchmarks` subcommand; each has add_parser(subparsers)."""
