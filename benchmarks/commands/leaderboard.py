"""results/leaderboard.csv, derived from results/runs.csv with pandas (timm's results/ idea)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from errors import UserError
from models import arch_of, list_models, recipe_of
from models.registry import FOUND_BY

from ..harness.config import RECIPE, Config, defaults, names
from ..tasks import TASKS, get_task, recipe_fields

if TYPE_CHECKING:  # annotations only: --help must not import them
    import pandas as pd

KEYS = ["task", "arch", "epochs", "train_images", "recipe"]


def _recipe_defaults(task: str) -> dict:
    """The recipe fields of `task` (Config's concern=RECIPE fields it uses; a task this version
    has not: Config's own) at their defaults. The other fields are a row's other keys (model ->
    arch, epochs, training images), the seed a row of seeds varies, and what runs or shows it."""
    if task in TASKS:
        module = get_task(task)
        return {k: v for k, v in defaults(module.CONFIG).items() if k in recipe_fields(module)}
    return {k: v for k, v in defaults(Config).items() if k in names(Config, concern=RECIPE)}


def recipe_key(config: str | dict) -> str:
    """A run's recipe as canonical JSON: its recipe fields, a field older than the row at its
    default (the value the run trained with)."""
    config = json.loads(config) if isinstance(config, str) else config
    fields = _recipe_defaults(config.get("task", "mnist"))
    return json.dumps({k: config.get(k, d) for k, d in fields.items()}, sort_keys=True)


def trained_with(name: str, key: str, epochs: int) -> bool:
    """Whether a run of this recipe key and epoch count trained with a zoo member's recipe (a
    hand-made member has none: any; a peer's names its epochs: those)."""

    recipe, key = dict(recipe_of(name)), json.loads(key)
    own_epochs = recipe.pop("epochs", epochs)
    return own_epochs == epochs and all(key.get(k) == v for k, v in recipe.items())


def member_runs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """A zoo member's runs of 20 epochs on the full training set with its own recipe: its
    architecture, whatever name each row carries."""
    import pandas as pd

    runs = runs[(runs.epochs == 20) & (runs.train_images == 60_000)
                & (runs.arch == arch_of(name))]
    own = pd.Series([trained_with(name, recipe_key(c), e)
                     for c, e in zip(runs.config, runs.epochs)],
                    index=runs.index, dtype=bool)  # a list of no booleans would select no columns
    return runs[own]


def recipe_owner(key: str, epochs: int) -> str | None:
    """The zoo member (with a recipe of its own) whose recipe a run trained with, if any."""

    return next((m for m in list_models() if recipe_of(m) and trained_with(m, key, epochs)),
                None)


def describe(row) -> str:
    """What a leaderboard row that is no zoo member is: the study:trial a search confirmed, a
    member's architecture with another member's recipe, or the command that ran it."""

    if trial_of(row.found_by):
        return row.found_by
    layout = {arch_of(m): m for m in list_models()}.get(row.arch)
    if layout is not None:
        owner = recipe_owner(row.recipe, row.epochs)
        return f"{layout}'s layout, " + (f"{owner}'s recipe" if owner else "another recipe")
    return str(row.source)


# The fresh-seed certificate. Seeds 1-10 choose a champion (the search's confirmations and the
# hand-picked comparisons all ran on them, so they flatter the winner); trained once more on
# seeds 11-20, which took no part in any choice, it stands only if FRESH_NEEDED of them reach
# the target. A seed reaches it when every run of that seed did (runs on two CPU kinds or
# precisions must both).
TARGET = 99.4
CHOSEN_SEEDS, FRESH_SEEDS, FRESH_NEEDED = range(1, 11), range(11, 21), 9


def joined(values) -> str:
    """The distinct values, sorted, as one cell: 'a; b'."""
    return "; ".join(sorted(set(map(str, values))))


def certificate(runs: pd.DataFrame, target: float = TARGET) -> pd.DataFrame:
    """Per leaderboard key: how many of seeds 1-10 ran and reached `target`, the same for the
    fresh seeds 11-20, the fresh seeds' mean and minimum (over their runs) and the devices
    they ran on."""
    import pandas as pd

    worst = runs.groupby([*KEYS, "seed"], dropna=False).final_test_acc.min().reset_index()
    parts = {}
    for name, seeds in (("chosen", CHOSEN_SEEDS), ("fresh", FRESH_SEEDS)):
        mine = worst[worst.seed.isin(seeds)]
        parts[f"{name}_seeds"] = mine.groupby(KEYS, dropna=False).seed.size()
        parts[f"{name}_at_target"] = (mine.assign(ok=mine.final_test_acc >= target)
                                      .groupby(KEYS, dropna=False).ok.sum())
    fresh = runs[runs.seed.isin(FRESH_SEEDS)].groupby(KEYS, dropna=False)
    parts["fresh_mean_test_acc"] = fresh.final_test_acc.mean()
    parts["fresh_min_test_acc"] = fresh.final_test_acc.min()
    # Where the fresh seeds ran: a certificate holds only on the CPU kinds and precisions named.
    parts["fresh_devices"] = fresh.device_name.agg(joined)
    cert = pd.DataFrame(parts)
    counts = [c for c in cert if c.endswith(("_seeds", "_at_target"))]
    cert[counts] = cert[counts].fillna(0).astype(int)
    return cert


def certified(row) -> bool:
    """Every one of seeds 1-10 and at least FRESH_NEEDED of the ten fresh seeds reached it."""
    return (row.chosen_seeds == len(CHOSEN_SEEDS) == row.chosen_at_target
            and row.fresh_seeds == len(FRESH_SEEDS) and row.fresh_at_target >= FRESH_NEEDED)


def verdict(row) -> str:
    """'stands', 'fails' (a chosen seed missed, or more fresh seeds than FRESH_NEEDED allows),
    or 'pending' while seeds that could still decide it have not run."""
    if certified(row):
        return "stands"
    fresh_missed = row.fresh_seeds - row.fresh_at_target
    if row.chosen_at_target < row.chosen_seeds or fresh_missed > len(FRESH_SEEDS) - FRESH_NEEDED:
        return "fails"
    return "pending"


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task, architecture, epochs and training-set size; best mean accuracy first."""
    from ..harness.results import found_by as confirmed

    runs = runs.dropna(subset=["final_test_acc"]).reset_index(drop=True)  # runs of two files
    runs = runs.sort_values("timestamp").assign(recipe=runs.config.map(recipe_key))
    by_seed = runs.sort_values(["seed", "timestamp"], kind="stable")
    accs = by_seed.groupby(KEYS, dropna=False).final_test_acc.agg(
        lambda s: " ".join(f"{a:.2f}" for a in s)).rename("test_accs")  # seed order
    board = runs.groupby(KEYS, dropna=False).agg(
        model=("model", "last"), family=("family", "last"), params=("params", "first"),
        macs=("macs", "first"), seeds=("seed", "nunique"), runs=("seed", "size"),
        mean_test_acc=("final_test_acc", "mean"), std_test_acc=("final_test_acc", "std"),
        min_test_acc=("final_test_acc", "min"), max_test_acc=("final_test_acc", "max"),
        mean_max_test_acc=("max_test_acc", "mean"),
        mean_seconds=("seconds", "mean"),
        devices=("device_name", joined),
        seed_list=("seed", lambda s: " ".join(map(str, sorted(set(s))))),
        source=("source", "last"),
        found_by=("source", lambda s: next(filter(None, map(confirmed, reversed(list(s)))),
                                           None)),  # the latest run `search confirm` made
    ).join(accs).join(certificate(runs)).reset_index()
    for col in ["mean_test_acc", "std_test_acc", "min_test_acc", "max_test_acc",
                "mean_max_test_acc", "fresh_mean_test_acc", "fresh_min_test_acc"]:
        board[col] = board[col].round(4)
    board["mean_seconds"] = board["mean_seconds"].round(1)
    # Search-confirmed rows carry the bare architecture string; show the zoo name it has now.
    # A member's name goes only to runs of its own recipe: trained otherwise, a member's
    # architecture is its string (a run of `--model peer_x --recipe nas_plain_5k` included).
    members = {arch_of(m): m for m in list_models()}
    board["model"] = [model if m is None else m if trained_with(m, r, e) else a
                      for a, r, e, model, m in zip(board.arch, board.recipe, board.epochs,
                                                   board.model, map(members.get, board.arch))]
    # A promoted member's runs of its own recipe were found by its study's trial too.
    board["found_by"] = [FOUND_BY.get(model) or f
                         for model, f in zip(board.model, board.found_by)]
    board = board.sort_values(["task", "mean_test_acc", "params"], ascending=[True, False, True])
    return board.reset_index(drop=True)




def trial_of(value) -> str | None:
    """A leaderboard row's found_by (the study:trial of the search that found its network),
    None where it has none (an empty CSV cell reads as NaN)."""
    return value if isinstance(value, str) and value else None


def zoo_task(task: str) -> bool:
    """Whether a task's models are the zoo's (the budget, the champions): Task.ZOO."""
    return task in TASKS and get_task(task).ZOO


# The question the champions answer, 99.4% in 20 epochs, is MNIST's. Another task that trains
# the zoo has its rows on the leaderboard, but is never a champion of this question.
CHAMPION_TASK = "mnist"


def on_protocol(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows that answer the question: CHAMPION_TASK, 20 epochs, all 60,000
    training images."""
    return board[(board.task == CHAMPION_TASK) & (board.epochs == 20)
                 & (board.train_images == 60_000)]


def champions(board: pd.DataFrame, seeds: int = 5) -> dict:
    """What users come for, from CHAMPION_TASK's rows of 20 epochs on the full training
    set: the smallest architecture with the fresh-seed certificate (every one of seeds 1-10 at
    the target, and FRESH_NEEDED of seeds 11-20), and the most accurate by mean over at least
    `seeds` seeds. A smaller one whose seeds 1-10 all passed but whose fresh seeds have not all
    run yet is named as pending. A role with no qualifying row is None."""
    import pandas as pd

    proven = on_protocol(board)
    stands = pd.Series([certified(r) for r in proven.itertuples()], index=proven.index,
                       dtype=bool)  # a Series: a list of no booleans would select no columns
    passing = proven[stands].sort_values("params")
    smallest = passing.iloc[0] if len(passing) else None
    chosen = proven[(proven.chosen_seeds == len(CHOSEN_SEEDS))
                    & (proven.chosen_at_target == len(CHOSEN_SEEDS))
                    & (proven.fresh_seeds < len(FRESH_SEEDS))]
    if smallest is not None:
        chosen = chosen[chosen.params < smallest.params]
    chosen = chosen.sort_values("params")
    best = proven[proven.seeds >= seeds].sort_values(["mean_test_acc", "params"],
                                                     ascending=[False, True])
    return {"smallest": smallest,
            "smallest, fresh seeds pending": chosen.iloc[0] if len(chosen) else None,
            "most accurate": best.iloc[0] if len(best) else None}


def certificate_text(r) -> str:
    """'seeds 1-10: 10/10 at 99.4, fresh seeds 11-20: 9/10 (mean 99.45, min 99.36)'."""
    fresh = "not run" if not r.fresh_seeds else (
        f"{r.fresh_at_target}/{r.fresh_seeds} (mean {r.fresh_mean_test_acc:.2f}, "
        f"min {r.fresh_min_test_acc:.2f})")
    return (f"seeds 1-10: {r.chosen_at_target}/{r.chosen_seeds} at {TARGET}, "
            f"fresh seeds 11-20: {fresh}")


def regenerate(results_dir: Path | None = None) -> pd.DataFrame:
    from ..harness.results import RESULTS_DIR, read_runs

    runs_path = Path(results_dir or RESULTS_DIR) / "runs.csv"
    if not runs_path.is_file():  # the hint writes where this command reads
        flag = f" --results {shlex.quote(str(runs_path))}" if results_dir else ""
        raise UserError(f"no runs yet: {runs_path} does not exist "
                        f"(python -m benchmarks mnist --model NAME{flag} writes it)")
    # A damaged file is an error naming its first bad line, not a board that silently skips
    # rows: every run in the file counts, or the user hears which line to repair.
    board = leaderboard(read_runs(runs_path))
    board.to_csv(runs_path.parent / "leaderboard.csv", index=False)
    return board


def print_board(board: pd.DataFrame, console: Console | None = None) -> None:
    import pandas as pd

    from models.report import unwrapped

    table = Table(title="Leaderboard (final test accuracy %, mean over seeds)")
    cols = [("task", "task"), ("model", "model"), ("params", "params"), ("epochs", "epochs"),
            ("seeds", "seeds"), ("mean", "mean_test_acc"), ("std", "std_test_acc"),
            ("min", "min_test_acc"), ("device", "devices")]
    for title, _ in cols:
        table.add_column(title, justify="left" if title in ("task", "model", "device")
                         else "right", overflow="fold")
    table.add_column("architecture", overflow="fold")
    table.add_column("found by, or recipe", overflow="fold")  # tells one string's rows apart
    for _, r in board.iterrows():
        cells = []
        for _, key in cols:
            v = r[key]
            cells.append("-" if pd.isna(v) else f"{v:.2f}" if isinstance(v, float)
                         and key.endswith("acc") else f"{int(v):,}" if key == "params"
                         else str(v))
        what = trial_of(r.found_by) or (describe(r) if r.model == r.arch else
                                        "its own recipe" if recipe_of(r.model) else "defaults")
        table.add_row(*cells, str(r["arch"]), what)
    console = unwrapped(console)
    console.print(table)
    for role, r in champions(board).items():
        if r is None and role.endswith("pending"):
            continue
        console.print(f"{role}: " + (f"none yet (smallest: seeds 1-10 all >= {TARGET}% and "
                                     f"{FRESH_NEEDED} of the fresh seeds 11-20, 20 epochs)"
                                     if r is None else
                                     f"{r['model']} ({int(r['params']):,} params), mean "
                                     f"{r['mean_test_acc']:.2f}%, min {r['min_test_acc']:.2f}% "
                                     f"over {int(r['seeds'])} seeds; {certificate_text(r)}; "
                                     f"{r['devices']}"),
                      highlight=False, soft_wrap=True)


def add_parser(sub) -> None:
    p = sub.add_parser("leaderboard", help="regenerate results/leaderboard.csv from runs.csv")
    p.add_argument("--results-dir", default=None, help="default: results/ or $NAS_RESULTS")
    p.set_defaults(func=lambda args: print_board(regenerate(args.results_dir)) or 0)
