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


def devices(cell: str) -> str:
    """A cell of device names ('a; b', as rows write them) as a table shows them: without the
    architecture, the thread count (one in every certificate run), the trademark signs and the
    word Processor, e.g. 'Intel Xeon, fp32'."""
    import re

    def short(name: str) -> str:
        parts = [p.strip() for p in name.split(",")]
        kept = [p for p in parts if not p.endswith((" threads", " thread"))
                and p not in ("x86_64 cpu", "aarch64 cpu", "arm64 cpu")]
        return re.sub(r"\((R|TM)\)| Processor", "", ", ".join(kept)) or "cpu"

    return "; ".join(short(name) for name in str(cell).split("; "))
