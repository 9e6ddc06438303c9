"""benchmarks.query: the per-seed runs of one architecture from the runs CSV, as a DataFrame.

    >>> import benchmarks
    >>> runs = benchmarks.query("nas_plain_5k", epochs=20, train_images=60000)
    >>> runs[["seed", "final_test_acc", "found_by"]]
"""

from __future__ import annotations

import json
from pathlib import Path

from errors import UserError
from models import arch_of, list_models
from models.registry import FOUND_BY, MODELS

COLUMNS = ["seed", "final_test_acc", "epochs", "train_images", "device_name", "recipe",
           "found_by", "config", "model", "arch", "task", "params", "source", "timestamp"]


def query(model_or_arch: str, results: Path | str | None = None, **filters):
    """Every run of a zoo member's architecture (or of an architecture string) in the runs
    CSV, one row per run, seeds in order: the columns of COLUMNS, `recipe` (the run's
    recipe fields that its task uses) and `config` (its whole Config) as dicts.

    results: the runs CSV, or a folder holding runs.csv (default: results/runs.csv, or
    $NAS_RESULTS/runs.csv). filters: column=value (epochs=20, device_name=...) or a recipe
    field=value (batch_size=32); only equal rows are kept. A damaged CSV is refused naming its
    first bad line (harness.results.read_checked), as the leaderboard refuses it.
    """
    import io

    import pandas as pd

    from .commands.leaderboard import recipe_key, trained_with
    from .harness.results import found_by, read_checked, runs_path

    path = Path(results) if results is not None else runs_path()
    if path.is_dir():
        path = path / "runs.csv"
    runs = pd.read_csv(io.BytesIO(read_checked(path)))
    arch = _arch(model_or_arch, set(runs.arch.dropna()))
    runs = runs[runs.arch == arch].sort_values(["seed", "timestamp"], kind="stable")

    def recipe(row) -> dict:
        return json.loads(recipe_key(row.config))

    def searched(row) -> str | None:
        """The search that found this run's network: a promoted member's study:trial when the
        run trained with that member's recipe, else the trial a `search confirm` run tested."""
        key = recipe_key(row.config)
        member = next((m for m in list_models() if m in FOUND_BY and arch_of(m) == arch
                       and trained_with(m, key, row.epochs)), None)
        return FOUND_BY[member] if member else found_by(row.source)

    rows = list(runs.itertuples(index=False))
    column = lambda values: pd.Series(values, index=runs.index, dtype=object)  # noqa: E731 (None stays None)
    out = runs.assign(recipe=column([recipe(r) for r in rows]),
                      found_by=column([searched(r) for r in rows]),
                      config=column([json.loads(r.config) for r in rows]))[COLUMNS]
    for key, value in filters.items():
        if key in out.columns:
            out = out[out[key] == value]
        elif any(key in r for r in out.recipe) or not len(out):
            out = out[[r.get(key) == value for r in out.recipe]]
        else:
            raise UserError(f"query: no column or recipe field {key!r}; columns: "
                            f"{', '.join(COLUMNS)}, or a recipe field "
                            f"({', '.join(sorted(out.recipe.iloc[0]))})")
    return out.reset_index(drop=True)


def _arch(name: str, recorded: set[str]) -> str:
    """The canonical architecture string a member name or a string names; a string that is no
    zoo architecture (the ants/bees task's) is taken as written when runs hold it."""

    if name in MODELS or name not in recorded:
        return arch_of(name)
    return name
