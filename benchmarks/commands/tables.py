"""The generated tables of README.md and docs/ (`python -m benchmarks docs` fills them): each a
function of the results folder and the table's argument, registered in TABLES. pandas is
imported where a table reads a file: the command's --help needs none of it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models import list_models
from models.registry import CLAIMS, FOUND_BY, SOURCES, arch_of

from .leaderboard import (
    TARGET,
    champions,
    describe,
    member_runs,
    on_protocol,
    recipe_key,
    trained_with,
    verdict,
    zoo_task,
)
from .markdown import devices, md, pct
from .speedtables import speed_profile_table, speed_table
from .studytables import reproduce_table, studies_table, trials_table

if TYPE_CHECKING:  # annotations only: --help must not import them
    import pandas as pd


def _proven(results: Path) -> pd.DataFrame:
    """Leaderboard rows of MNIST, 20 epochs, all 60,000 training images, 5 seeds or more."""
    import pandas as pd

    board = pd.read_csv(results / "leaderboard.csv")
    return board[board.task.map(zoo_task) & (board.epochs == 20)
                 & (board.train_images == 60_000) & (board.seeds >= 5)]


# The fresh-seed certificate's cells, shared by the champions and certificates tables.
CERTIFICATE_COLUMNS = [f"seeds 1-10 at {TARGET}", f"fresh seeds 11-20 at {TARGET}",
                       "fresh mean / min", "fresh seeds ran on"]


def certificate_cells(r) -> list[str]:
    """A leaderboard row's certificate cells, under CERTIFICATE_COLUMNS."""
    chosen = f"{r.chosen_at_target}/{r.chosen_seeds}"
    if not r.fresh_seeds:
        return [chosen, "not run", "-", "-"]
    return [chosen, f"{r.fresh_at_target}/{r.fresh_seeds}",
            f"{pct(r.fresh_mean_test_acc)} / {pct(r.fresh_min_test_acc)}",
            devices(r.fresh_devices)]


def champions_table(results: Path, _: str = "") -> str:
    import pandas as pd

    board = pd.read_csv(results / "leaderboard.csv")
    rows = []
    for role, r in champions(board).items():
        if r is None:
            if not role.endswith("pending"):
                rows.append([role, "none yet", *[""] * 7])
            continue
        rows.append([role, f"`{r.model}`", f"{int(r.params):,}", *certificate_cells(r),
                     f"{pct(r.mean_test_acc)} / {pct(r.min_test_acc)} ({int(r.runs)})",
                     FOUND_BY.get(r.model) or ("hand-made" if r.model in list_models()
                                               else describe(r))])
    return md(["champion", "zoo member", "params", *CERTIFICATE_COLUMNS,
               "all runs: mean / min (runs)", "found by (study:trial)"], rows, "llrrrrlrl")


def certificates_table(results: Path, _: str = "") -> str:
    """The fresh-seed certificate of every member promoted from the search, with its own recipe
    at 20 epochs on the full training set, smallest first."""
    import pandas as pd

    board = pd.read_csv(results / "leaderboard.csv")
    board = on_protocol(board)
    board = board[board.model.isin(list(FOUND_BY))]
    # What a certificate costs: every run of the member, each on one CPU core (or a GPU).
    rows = [[f"`{r.model}`", f"{int(r.params):,}", *certificate_cells(r), verdict(r),
             f"{int(r.runs)}", f"{r.runs * r.mean_seconds / 3600:.1f}"]
            for r in board.sort_values("params").itertuples()]
    return md(["member", "params", *CERTIFICATE_COLUMNS, "certificate", "runs", "run hours"],
              rows, "lrrrrllrr")


def leaderboard_table(results: Path, _: str = "") -> str:
    board = _proven(results).sort_values(["params", "mean_test_acc"], ascending=[True, False],
                                         kind="stable")  # a tie in size: best first
    # A model not in the zoo is named by its string and what it is (leaderboard.describe).
    rows = [[f"`{r.model}`" if r.model in list_models() else f"`{r.arch}` ({describe(r)})",
             f"{int(r.params):,}",
             r.seed_list, int(r.runs), pct(r.mean_test_acc), pct(r.min_test_acc),
             "yes" if r.min_test_acc >= TARGET else "no"] for r in board.itertuples()]
    return md(["model", "params", "seeds", "runs", "mean", "min", "all >= 99.4"], rows,
               "lrlrrrl")


# The recipe every peer architecture is also trained with, to tell its architecture from its
# recipe: the smallest champion's, at the protocol's 20 epochs.
PEER_RECIPE = "nas_plain_5k"


def peers_table(results: Path, _: str = "") -> str:
    from models import count_params, create_model, recipe_of

    from ..harness import results as results_mod

    runs = results_mod.read_runs(results / "runs.csv")
    runs = runs[runs.train_images == 60_000]
    rows = []
    counts = {name: count_params(create_model(name)) for name in SOURCES}  # built once each
    for name in sorted(SOURCES, key=counts.get):
        mine = runs[runs.arch == arch_of(name)]
        keys = [recipe_key(c) for c in mine.config]
        # .loc: a list of no booleans (a peer never run) must select no rows, not no columns.
        own = [trained_with(name, k, e) for k, e in zip(keys, mine.epochs)]
        accs = list(mine.loc[own].sort_values("seed").final_test_acc)
        ours = mine.loc[[e == 20 and trained_with(PEER_RECIPE, k, e)
                         for k, e in zip(keys, mine.epochs)]].final_test_acc
        rows.append([f"`{name}`", f"{counts[name]:,}", SOURCES[name],
                     CLAIMS.get(name, "-"), recipe_of(name).get("epochs", 20), len(accs),
                     pct(sum(accs) / len(accs)) if accs else "-",
                     pct(min(accs)) if accs else "-",
                     f"{sum(a >= TARGET for a in accs)} of {len(accs)}",
                     f"{pct(ours.mean())}, {(ours >= TARGET).sum()} of {len(ours)}"
                     if len(ours) else "-"])
    return md(["peer", "params", "source (GitHub repository, file)", "claimed (one run, test)",
                "epochs", "seeds", "measured mean", "min", "seeds >= 99.4",
                f"{PEER_RECIPE}'s recipe, 20 epochs: mean, >= 99.4"], rows, "lrllrrrrrr")


def runs_table(results: Path, model: str) -> str:
    """Every 20-epoch full-set run of one model (a zoo member: its architecture trained with its
    own recipe, whatever name the row carries), grouped by the code and precision that ran it."""
    from ..harness import results as results_mod

    runs = results_mod.read_runs(results / "runs.csv")
    if model in list_models():
        runs = member_runs(runs, model)
    else:
        runs = runs[(runs.epochs == 20) & (runs.train_images == 60_000) & (runs.model == model)]
    if runs.empty:
        return f"(no 20-epoch runs of {model} yet)\n"
    runs = runs.assign(path=[_precision(d, json.loads(c))
                             for d, c in zip(runs.device_name, runs.config)])
    rows = []
    for (commit, path), g in runs.groupby(["git_commit", "path"], sort=False):
        g = g.sort_values("seed")
        accs = [f"{s}: {a:.2f}" for s, a in zip(g.seed, g.final_test_acc)]
        rows.append([f"`{commit}`", path, " ".join(accs), pct(g.final_test_acc.mean()),
                     f"{sum(g.final_test_acc >= TARGET)} of {len(g)}",
                     f"{g.seconds.min():.0f}-{g.seconds.max():.0f}"])
    return md(["commit", "device and precision", "seed: test acc (epoch 20)", "mean",
                ">= 99.4", "seconds"], rows, "lllrrr")


def _precision(device_name: str, config: dict) -> str:
    """'Intel Xeon, bf16 autocast' from a row's device_name; rows from before the precision
    was recorded there: what their Config asked for."""
    if "bf16" in str(device_name) or "fp32" in str(device_name):
        return devices(device_name)
    return (f"{config.get('amp', 'auto')} amp, channels_last "
            f"{config.get('channels_last', 'auto')}")


def _reference(values: list):
    """The most common of `values`; on a tie, the middle of the tied ones in order (numbers by
    value, the lower middle of an even count), e.g. 0.05 for 0.025, 0.05 and 0.1 once each."""
    counts = Counter(json.dumps(v) for v in values)
    tied = [json.loads(v) for v, n in counts.items() if n == max(counts.values())]

    def number(v) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)
    tied.sort(key=lambda v: (not number(v), v if number(v) else 0, json.dumps(v)))
    return tied[(len(tied) - 1) // 2]


def ablation_table(results: Path, name: str) -> str:
    """One-factor-at-a-time runs (results/NAME.csv, e.g. experiments/recipe-6k.sh's): each
    variant is the set of Config fields that differ from the most common settings; it is
    compared, seed by seed, with its parent, the variant with the most of its changes and no
    other. Validation accuracy only: this is how a recipe is chosen, and the test split must
    not choose."""
    from ..harness import results as results_mod

    runs = results_mod.read_runs(results / f"{name or 'ablation'}.csv")
    if runs.empty:  # a header and no runs yet
        return f"(no runs in {name or 'ablation'}.csv yet)\n"
    cfg = runs.config.map(json.loads)
    # The reference: each field's most common value over the runs, so it does not depend on
    # which run finished first; on a tie, the middle one (a sweep 0.025, 0.05, 0.1 is centred).
    ref = {k: _reference([c.get(k) for c in cfg]) for k in cfg.iloc[0] if k != "seed"}
    runs["changes"] = [tuple(sorted((k, v) for k, v in c.items() if k != "seed"
                                    and ref.get(k) != v)) for c in cfg]
    # Parents before children, then by name (JOBS > 1 finishes them out of order).
    groups = sorted(runs.groupby("changes", sort=False), key=lambda g: (len(g[0]), g[0]))
    accs = {ch: g.groupby("seed").final_val_acc.last() for ch, g in groups}  # a rerun: its last
    rows = []
    for changes, acc in accs.items():
        # A variant that changes several fields at once (a schedule, a set of augmentations)
        # is compared with the nearest run variant whose changes it all makes: the reference,
        # unless a variant with some of them was run too.
        parent = max((p for p in accs if set(p) < set(changes)), key=len, default=None)
        diff, wins = "-", "-"
        if parent is not None:
            paired = (acc - accs[parent]).dropna()
            diff = f"{paired.mean():+.3f}" if len(paired) else "-"
            wins = f"{int((paired > 0).sum())} of {len(paired)}"
        label = ", ".join(f"{k} {v}" for k, v in changes) or "reference: " + ", ".join(
            f"{k} {ref[k]}" for k in sorted({k for ch in accs for k, _ in ch}))
        rows.append([label, ", ".join(f"{k} {v}" for k, v in parent) or "reference"
                     if parent is not None else "-", len(acc),
                     " ".join(f"{s}: {pct(a)}" for s, a in acc.sort_index().items()),
                     pct(acc.mean()), diff, wins])
    # The footer names the model only where every run shares it (a variant may change it).
    model = (f"`{runs.arch.iloc[0]}`" if runs.arch.nunique() == 1
             else f"Reference model `{ref['model']}`")
    images = int(runs.train_images.iloc[0])
    return md(["variant", "compared with", "seeds", "seed: val acc (final epoch)", "mean",
                "paired change", "seeds better"], rows, "llrlrrl") + (
        f"\n{model}, {int(runs.epochs.iloc[0])} epochs, trained on {images:,} images, "
        f"validation on {int(cfg.iloc[0]['val_split']):,}; {runs.device_name.iloc[0]}.\n")


TABLES: dict[str, Callable[[Path, str], str]] = {
    "champions": champions_table, "certificates": certificates_table,
    "leaderboard": leaderboard_table, "peers": peers_table,
    "speed": speed_table, "speed-profile": speed_profile_table, "studies": studies_table,
    "runs": runs_table, "ablation": ablation_table, "trials": trials_table,
    "reproduce": reproduce_table}
