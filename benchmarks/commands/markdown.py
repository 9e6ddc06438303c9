"""Markdown for the generated tables (commands/tables.py and its neighbours)."""

from __future__ import annotations


def md(header: list[str], rows: list[list], align: str = "") -> str:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    # An architecture string's '|' would end a Markdown cell: escape it.
    lines = [header, rule, *[[str(c).replace("|", "\\|") for c in r] for r in rows]]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def pct(v) -> str:
    import pandas as pd

    return "-" if pd.isna(v) else f"{v:.2f}"
