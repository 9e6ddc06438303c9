"""The runs CSV's columns, what each may hold, and the parser every reader and the writer use.

A runs CSV is read whole or refused: a damaged line (a bad header, a row with the wrong number
of fields, an unbalanced quote, a last line without its newline, a value its column cannot
hold) is a ResultsError naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pandas as pd

from errors import UserError

# What each column holds (results/README.md says what it means), checked on every read and
# before every append: the writer's header is this table's order. A kind ending in '?' may be
# empty (the run measured no such thing, e.g. no validation split).
#   text: any text, not empty; count: an integer in [0, 2**63); percent: a finite number in
#   [0, 100]; amount: a finite number >= 0; percents, amounts: a JSON list of such numbers;
#   object: a JSON object (with finite numbers only).
KINDS = {
    "task": "text", "model": "text", "arch": "text", "family": "text", "params": "count",
    "macs": "count", "epochs": "count", "seed": "count", "device": "text",
    "device_name": "text", "train_images": "count?", "test_images": "count?",
    "final_test_acc": "percent?", "max_test_acc": "percent?", "first_epoch_at_target": "count?",
    "test_acc_per_epoch": "percents", "final_val_acc": "percent?", "max_val_acc": "percent?",
    "val_acc_per_epoch": "percents", "test_top3_acc": "percent?",
    "train_loss_per_epoch": "amounts", "seconds": "amount", "images_per_second": "amount",
    "source": "text", "torch_version": "text", "git_commit": "text", "timestamp": "text",
    "config": "object",
}
COLUMNS = list(KINDS)


class ResultsError(UserError):
    """A runs CSV that cannot take a row, or a row that could not be written."""


def damaged(path: Path, line: int, why: str) -> ResultsError:
    return ResultsError(f"{path}, line {line}: {why}. The file is damaged: nothing is appended "
                        "to it and no reader (leaderboard, plots, docs) reads it until that line "
                        "is repaired or removed (results/README.md lists the columns)")


def check_header(header: list[str], path: Path) -> None:
    """The header must name every column, each once. Extra columns are kept (rows leave them
    empty); a header lacking columns is refused, since the writer would drop those values."""
    missing = [c for c in COLUMNS if c not in header]
    if missing or "" in header or len(set(header)) != len(header):
        why = (f"lacks the column(s) {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
               if missing else "has an empty or repeated column name")
        raise damaged(path, 1, f"not a runs header: it {why}")


def parse(data: bytes, path: Path) -> tuple[list[str] | None, list[list]]:
    """The header and rows of a runs CSV's contents, each value checked and typed by its
    column's kind (KINDS), or a ResultsError naming the first damaged line."""
    if not data:
        return None, []
    if not data.endswith(b"\n"):  # a row cut short; the next row would glue onto it
        raise damaged(path, data.count(b"\n") + 1, "the last line has no newline (a row cut "
                                                    "short?)")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # a BOM, as some editors save
    except UnicodeDecodeError as e:
        raise damaged(path, data.count(b"\n", 0, e.start) + 1, "not UTF-8 text") from None
    # strict: an unbalanced quote is an error, not a field that swallows the lines after it.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start, rows = 1, []  # the line the current record starts on (a field may span lines)
    try:
        header = next(reader)
        check_header(header, path)
        kinds = [KINDS.get(c, "text?") for c in header]  # an extra column: any text
        start = reader.line_num + 1
        for record in reader:
            if record:  # blank lines are skipped, as pandas does
                if len(record) != len(header):
                    raise damaged(path, start, f"{len(record)} fields, the header has "
                                               f"{len(header)}")
                rows.append(_values(record, header, kinds, path, start))
            start = reader.line_num + 1
    except csv.Error as e:
        raise damaged(path, start, f"not CSV ({e}; an unbalanced quote?)") from None
    return header, rows


def _values(record: list[str], header: list[str], kinds: list[str], path: Path,
            line: int) -> list:
    values = []
    for name, kind, text in zip(header, kinds, record):
        try:
            values.append(value_of(kind, text))
        except ValueError as e:
            shown = repr(text[:40]) + ("..." if len(text) > 40 else "")
            raise damaged(path, line, f"{name} is {shown}: {e}") from None
    return values


NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
RANGES = {"count": (0, 2**63 - 1), "percent": (0, 100), "amount": (0, math.inf)}
ITEMS = {"percents": "percent", "amounts": "amount"}  # a JSON list's kind -> its items' kind
NUMBERS = [c for c, kind in KINDS.items() if kind.rstrip("?") in RANGES]  # one number each


def value_of(kind: str, text: str):
    """The value of a field of `kind` (KINDS): a number, the text itself (JSON stays text), or
    None for an empty optional field; a ValueError saying what it should be."""
    if kind.endswith("?") and text == "":
        return None
    kind = kind.rstrip("?")
    if text == "":
        raise ValueError("empty, and it may not be")
    if kind == "text":
        return text
    if kind in RANGES:
        return _number(kind, text)
    value = _json(text)
    if kind == "object" and not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if kind in ITEMS:
        if not isinstance(value, list):
            raise ValueError("not a JSON list")
        for item in value:
            _number(ITEMS[kind], item)
    return text


def _number(kind: str, value):
    """`value` (text, or an item of a JSON list) as a number of `kind`, in its range."""
    low, high = RANGES[kind]
    what = {"count": "a whole number", "percent": "a percentage",
            "amount": "a number"}[kind] + (f" in [{low}, {high}]" if kind == "percent"
                                           else " >= 0")
    if isinstance(value, str):
        if not NUMBER.fullmatch(value) or kind == "count" and not value.isdigit():
            raise ValueError(f"not {what}")
        value = int(value) if kind == "count" else float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"holds {json.dumps(value)[:20]}, not {what}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"not {what}")
    return value


def _json(text: str):
    """JSON with finite numbers only: Python's json reads NaN, Infinity, and 1e999 as inf."""
    def constant(name: str):
        raise ValueError(f"{name} is not a finite number")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ValueError(f"{number} is not a finite number")
        return value
    try:
        return json.loads(text, parse_constant=constant, parse_float=finite)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at character {e.pos})") from None
    except (ValueError, RecursionError) as e:  # RecursionError: [[[[...]]]] nested deep
        raise ValueError(f"not JSON with finite numbers ({e})") from None


def frame(header: list[str], rows: list[list]) -> pd.DataFrame:
    """Parsed rows as a table: counts int64 (float64 with NaN where one is empty), numbers
    float64, text and JSON as str (None where empty), in the header's order."""
    columns = {}
    for i, name in enumerate(header):
        values = [row[i] for row in rows]
        kind = KINDS.get(name, "text").rstrip("?")
        dtype = (("int64" if None not in values else "float64") if kind == "count"
                 else "float64" if kind in RANGES else object)
        columns[name] = pd.Series(values, dtype=dtype, name=name)
    return pd.DataFrame(columns, columns=header)
