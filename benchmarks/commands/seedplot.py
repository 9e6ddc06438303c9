"""The fresh-seed certificate as a picture (results/plots/mnist-certificates.png): every run of
each member promoted from the search, with its own recipe, one row per member, the chosen
seeds 1-10 apart from the fresh seeds 11-20, the 99.4% line, and the verdict beside the row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.registry import FOUND_BY

from .leaderboard import (
    CHAMPION_TASK,
    CHOSEN_SEEDS,
    FRESH_SEEDS,
    TARGET,
    member_runs,
    on_protocol,
    verdict,
)

if TYPE_CHECKING:
    import pandas as pd

VERDICT_COLOURS = {"stands": "tab:green", "fails": "tab:red", "pending": "grey"}


def plot_certificates(runs: pd.DataFrame, board: pd.DataFrame, out: Path) -> list[Path]:
    """Draw the picture from the runs and their leaderboard; nothing when no promoted member
    ran."""
    from matplotlib.figure import Figure

    from .drawing import save

    runs = runs[runs.task == CHAMPION_TASK].dropna(subset=["final_test_acc"])
    mine = {name: member_runs(runs, name) for name in FOUND_BY}
    mine = {name: r for name, r in sorted(mine.items(), key=lambda kv: kv[1].params.min())
            if len(r)}
    if not mine:
        return []
    board = on_protocol(board).set_index("model")
    fig = Figure(figsize=(9, 0.8 + 0.6 * len(mine)))
    ax = fig.subplots()
    for y, (name, r) in enumerate(mine.items()):
        for seeds, dy, style in ((CHOSEN_SEEDS, 0.12, dict(marker="o", color="tab:blue")),
                                 (FRESH_SEEDS, -0.12, dict(marker="D", color="tab:orange"))):
            accs = r[r.seed.isin(seeds)].final_test_acc
            ax.plot(accs, [y + dy] * len(accs), ls="none", ms=5, alpha=0.7, **style)
        row = board.loc[name]
        said = verdict(row)
        ax.annotate(f"{said}: {row.chosen_at_target}/{row.chosen_seeds}, "
                    f"fresh {row.fresh_at_target}/{row.fresh_seeds}", (1.01, y),
                    xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    color=VERDICT_COLOURS[said])
    ax.axvline(TARGET, color="grey", lw=0.8, ls=":")
    ax.set_yticks(range(len(mine)),
                  [f"{n} ({int(r.params.iloc[0]):,})" for n, r in mine.items()], fontsize=8)
    ax.set_ylim(-0.6, len(mine) - 0.4)
    ax.set_xlabel("final test accuracy (%), epoch 20, every run")
    ax.plot([], [], "o", color="tab:blue", label="seeds 1-10 (the choice saw them)")
    ax.plot([], [], "D", color="tab:orange", label="fresh seeds 11-20")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.25 / len(mine) - 0.12),
              ncol=2, frameon=False)
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"The fresh-seed certificate: every seed 1-10 and 9 of 11-20 at {TARGET}% "
                 "(own recipe, all runs on every device)", fontsize=10)
    return [save(fig, out / "mnist-certificates.png")]
