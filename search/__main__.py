"""python -m search {run,confirm,promote,export}: the architecture search's command line.

  run      search (or resume) a study: sample, reject over-budget models, train on the
           validation split, prune; many workers may share one storage
  confirm  re-train a study's best trials on the full training set, test them, append rows
           to results/runs.csv
  promote  print a trial as a named zoo member (a table for models/champions.toml)
  export   write a study's trials (and a Pareto study's front, CSV and PNG) under results/
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from benchmarks.harness.cli import (
    add_jobs_arg,
    check_positive,
    check_seeds,
    distinct_seeds,
    parse_args,
    parse_jobs,
    run_command,
)
from benchmarks.harness.config import add_config_args
from benchmarks.tasks import TASKS, config_fields, get_task, used
from errors import UserError

from .study import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_TRIALS,
    OBJECTIVES,
    PRUNERS,
    SAMPLERS,
    check_study_name,
)


def _search_args(p: argparse.ArgumentParser, leave: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A flag for each field a search takes from its command line (metadata search=True; the
    space samples the other recipe fields), of every task, but those in `leave`."""
    added: list[str] = []
    for name in TASKS:
        task = get_task(name)
        flags = tuple(n for n in used(task, search=True) if n not in (*added, *leave))
        add_config_args(p, flags, task.CONFIG)
        added += flags
    return tuple(added)


def _storage_args(p: argparse.ArgumentParser, study_required: bool) -> None:
    p.add_argument("--study", required=study_required, default=None, metavar="NAME",
                   help="study name" + ("" if study_required else
                                        " (default: <task>-<objective>, e.g. mnist-accuracy)"))
    p.add_argument("--storage", default=None, metavar="URL",
                   help="Optuna storage URL, e.g. postgresql+psycopg://user:pw@host/db "
                        "(default: sqlite:///results/search.db)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run or resume a search study",
                       description="Run (or resume: the same command continues the study) an "
                                   "Optuna search. Start the same command on several machines "
                                   "with one --storage URL to share the study.")
    _storage_args(p, study_required=False)
    p.add_argument("--task", default="mnist", help="task to search (default: mnist)")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default="accuracy",
                   help="accuracy: maximize validation accuracy (pruned); pareto: also "
                        "minimize parameters (default: accuracy)")
    p.add_argument("--n-trials", type=int, default=None, metavar="N",
                   help="stop after this worker trained N trials (over-budget samples, which "
                        "are rejected untrained, do not count)")
    p.add_argument("--max-trials", type=int, default=None, metavar="N",
                   help="stop once the study holds N trained trials, all workers together "
                        f"(default {DEFAULT_MAX_TRIALS} when no other limit is given)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="stop starting trials after S seconds")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="seed of the sampler and of every trial's training (default: random "
                        "sampler, training seed 1); give each worker its own seed")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default: tpe")
    p.add_argument("--pruner", choices=PRUNERS, default="hyperband",
                   help="hyperband (default), sh (successive halving), median or none; "
                        "pareto studies are not pruned")
    p.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT, metavar="S",
                   help="seconds between a running trial's heartbeats; a trial silent for "
                        f"twice this is failed and retried (default {DEFAULT_HEARTBEAT})")
    p.add_argument("--no-live", action="store_true",
                   help="plain log lines instead of the live view (automatic when not a tty)")
    p.add_argument("--budget", type=int, default=None, metavar="P",
                   help="reject (untrained) every sampled model over P parameters, to search "
                        "for the best small model (default: the zoo's budget, which "
                        "`python -m models` shows)")
    p.add_argument("--enqueue-zoo", nargs="*", default=None, metavar="NAME",
                   help="first queue zoo members (every one within the budget, or the NAMEs "
                        "given) once per study, so the search starts from the hand-made models")
    p.add_argument("--warm-start", action="append", default=[], metavar="STUDY",
                   help="first copy the trained trials of STUDY (same storage and settings, "
                        "a budget no larger) into this one, once, so the sampler starts from "
                        "what it learned")
    add_jobs_arg(p, "trials", "; `make search` uses auto; Optuna's n_jobs. With N > 1, "
                 "trials still training count towards --n-trials")
    p.add_argument("--val-split", type=int, default=None, metavar="N",
                   help="images held out of the training set to select on (default: 10000 "
                        "for mnist); the test set is never loaded")
    p.add_argument("--test-subset", type=int, default=None, metavar="N",
                   help="evaluate on only the first N validation images (smoke runs)")
    _search_args(p, leave=("val_split", "test_subset"))
    p.set_defaults(func=run_search)

    p = sub.add_parser("confirm", help="re-train the best trials and measure test accuracy",
                       description="Re-train a study's top trials (the Pareto front for pareto "
                                   "studies) on the full training set, once per seed; append "
                                   "a row per run to results/runs.csv.")
    _storage_args(p, study_required=True)
    p.add_argument("--top", type=int, default=3, metavar="K", help="default: 3")
    p.add_argument("--trials", type=int, nargs="+", default=None, metavar="N",
                   help="confirm these trial numbers instead of the top K (e.g. the smallest "
                        "model that reached the target on validation)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1], metavar="S", help="default: 1")
    p.add_argument("--results", type=Path, default=None,
                   help="runs CSV to append to (default: results/runs.csv or $NAS_RESULTS)")
    add_jobs_arg(p, "runs")
    _search_args(p, leave=("val_split",))  # confirm trains on every training image
    p.set_defaults(func=run_confirm)

    p = sub.add_parser("promote", help="print a trial as a named zoo member (a TOML table)",
                       description="Print the TOML table that makes a trial a named zoo "
                                   "member (architecture, training recipe, where it was found); "
                                   "add it to models/champions.toml.")
    _storage_args(p, study_required=True)
    p.add_argument("--trial", type=int, required=True, metavar="N")
    p.add_argument("--name", default=None,
                   help="member name (default: nas_<family>_<size>k)")
    p.set_defaults(func=run_promote)

    p = sub.add_parser("export", help="write a study's trials (and Pareto front) to files",
                       description="Write study.trials_dataframe() to <out>/<study>-trials.csv; "
                                   "for pareto studies also <study>-pareto.csv and .png.")
    _storage_args(p, study_required=True)
    p.add_argument("--out", type=Path, default=None,
                   help="folder (default: results/, or $NAS_RESULTS)")
    p.set_defaults(func=run_export)


# Each command imports what it runs (torch, the zoo, Optuna's storage) when it runs: the parsers
# above must build without them, so that --help is instant.
def run_search(args: argparse.Namespace) -> int:
    from .run import run

    return run(args)


def run_confirm(args: argparse.Namespace) -> int:
    from .publish import confirm

    check_study_name(args.study)
    check_positive("top", args.top)
    check_seeds("--seeds", args.seeds)
    seeds = distinct_seeds(args.seeds, lambda line: print(line, file=sys.stderr))
    jobs = parse_jobs(args.jobs)
    every = set().union(*map(config_fields, TASKS))
    overrides = {k: v for k, v in vars(args).items() if k in every and v is not None}
    for name in TASKS:  # check the options before any training
        get_task(name).CONFIG(**{k: v for k, v in overrides.items() if k in config_fields(name)})
    study = _read_study(args)
    confirm(study, args.top, seeds, overrides, numbers=args.trials, jobs=jobs,
            results=args.results)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from .publish import promote

    check_study_name(args.study)
    if args.name is not None and not (args.name.isidentifier() and args.name.isascii()):
        raise UserError(f"invalid option: --name {args.name!r} must be a Python name (it "
                        "becomes the member's name in the zoo), e.g. nas_plain_9k")
    study = _read_study(args, file=sys.stderr)  # stdout is the member's source, to paste
    print(promote(study, args.trial, args.name), end="")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from benchmarks.harness import results

    from .publish import export
    from .storage import storage_flag

    check_study_name(args.study)  # it names the files: never a path out of --out
    study = _read_study(args)
    out = args.out or Path(results.RESULTS_DIR)
    try:
        written = export(study, out, storage_flag(args.storage))
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        if isinstance(e, UserError) or not isinstance(e, OSError) and "null" not in str(e):
            raise
        raise UserError(f"cannot write the export under {out}: "
                        f"{getattr(e, 'strerror', None) or e}") from None
    for path in written:
        print(f"wrote {path}")
    return 0


def _read_study(args: argparse.Namespace, file=None):
    """The study confirm, promote and export read, named with its storage on their first line:
    with several databases about, a study of the same name in another is easy to read by
    mistake."""
    from .storage import default_storage, open_storage, safe_url
    from .study import load_study

    study = load_study(open_storage(args.storage, create=False), args.study)
    n = len(study.get_trials(deepcopy=False))
    print(f"reading study {study.study_name} in {safe_url(args.storage or default_storage())} "
          f"({n} trial{'' if n == 1 else 's'})", file=file, flush=True)
    return study


def main(argv: list[str] | None = None) -> int:
    # allow_abbrev=False everywhere: `--epoch 1` is refused, never taken for --epochs.
    parser = argparse.ArgumentParser(prog="python -m search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=functools.partial(argparse.ArgumentParser,
                                                               allow_abbrev=False))
    add_parsers(sub)
    args = parse_args(parser, sub, argv)
    return run_command(lambda: args.func(args), interrupted="interrupted")

if __name__ == "__main__":
    sys.exit(main())
