"""Every reader of a runs CSV (the leaderboard, plots --summary, the docs tables, the results
API) reads the file whole or refuses it naming the file and line, exit 2: a damaged value is
never a traceback, and never a non-finite number in a table.

The damaged files are copies of the committed results/runs.csv; nothing here trains.
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.__main__ import main
from benchmarks.commands import leaderboard, plots, tables
from benchmarks.harness.results import KINDS, ResultsError, read_runs
from errors import UserError

REPO = Path(__file__).resolve().parents[1]
GOOD = (REPO / "results" / "runs.csv").read_bytes()
BOM = b"\xef\xbb\xbf"


def _records(data: bytes = GOOD) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _encode(records: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(records)
    return buf.getvalue().encode("utf-8")


def _with(column: str, value: str, rows=None) -> tuple[bytes, int]:
    """The committed runs with `column` set to `value` in `rows` (default: the first model's
    rows), and the line of the first row changed."""
    records = _records()
    i = records[0].index(column)
    model = records[0].index("model")
    rows = rows or [n for n, r in enumerate(records) if n and r[model] == records[1][model]]
    for n in rows:
        records[n][i] = value
    return _encode(records), rows[0] + 1  # no field of the committed file spans lines


def _err(capsys) -> str:
    err = capsys.readouterr().err.replace("\n", "")  # rich may wrap long lines
    assert "Traceback" not in err
    return err


def _docs_tables(results: Path) -> str:
    """Every docs table drawn from a runs CSV (here results/runs.csv, as ablation NAME too)."""
    return "".join([tables.peers_table(results), tables.runs_table(results, "resnet_8k"),
                    tables.ablation_table(results, "runs")])


# ---- the defects, one by one ----------------------------------------------------------------

@pytest.mark.parametrize("column, value", [
    ("final_test_acc", "1e999"), ("final_test_acc", "nan"), ("max_test_acc", "101"),
    ("final_test_acc", "-0.5"), ("params", "-3"), ("seed", "1.5"), ("epochs", "twenty"),
    ("seconds", "inf"), ("images_per_second", "-1"), ("test_images", "1e3"),
    ("test_acc_per_epoch", "[99.1, NaN]"), ("test_acc_per_epoch", "[99.1, 1e999]"),
    ("val_acc_per_epoch", "[99.1, 120]"), ("train_loss_per_epoch", '["x"]'),
    ("train_loss_per_epoch", "{}"), ("test_acc_per_epoch", "[99.1,"),
    ("config", "{not json"), ("config", "[1, 2]"), ("config", '{"lr": NaN}'),
    ("config", '{"lr": 1e999}'), ("config", ""), ("task", ""),
])
def test_a_damaged_value_is_refused_by_every_reader(column, value, tmp_path, capsys):
    data, line = _with(column, value)
    path = tmp_path / "runs.csv"
    path.write_bytes(data)
    named = f"{path}, line {line}: {column}"
    with pytest.raises(ResultsError, match=named.replace("\\", "\\\\")):
        read_runs(path)
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 2
    assert named in _err(capsys)
    assert not (tmp_path / "leaderboard.csv").exists()
    assert main(["plots", "--summary", "--results-dir", str(tmp_path)]) == 2
    assert named in _err(capsys)
    assert not (tmp_path / "plots").exists()
    for table in (tables.peers_table, tables.runs_table, tables.ablation_table):
        with pytest.raises(ResultsError, match=named.replace("\\", "\\\\")):
            table(tmp_path, "runs")


def test_every_column_has_a_kind():
    """The one table that says what each column holds covers the header the writer writes."""
    from benchmarks.harness.results import COLUMNS
    assert list(KINDS) == COLUMNS
    readme = (REPO / "results" / "README.md").read_text()
    assert all(f"`{c}`" in readme for c in COLUMNS)


def test_every_leaderboard_column_is_documented():
    board = pd.read_csv(REPO / "results" / "leaderboard.csv", nrows=1)
    readme = (REPO / "results" / "README.md").read_text().partition("## leaderboard.csv")[2]
    assert [c for c in board.columns if f"`{c}`" not in readme] == []


def test_a_bom_is_tolerated(tmp_path):
    (tmp_path / "runs.csv").write_bytes(BOM + GOOD)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "runs.csv").write_bytes(GOOD)
    with_bom = leaderboard.regenerate(tmp_path)
    pd.testing.assert_frame_equal(with_bom, leaderboard.regenerate(tmp_path / "plain"))
    assert _docs_tables(tmp_path) == _docs_tables(tmp_path / "plain")


def test_the_committed_runs_read_as_they_always_did():
    """Typed reading changes no value the leaderboard or the docs were made from."""
    runs = read_runs(REPO / "results" / "runs.csv")
    old = pd.read_csv(REPO / "results" / "runs.csv")
    assert list(runs.columns) == list(old.columns) and len(runs) == len(old)
    for c in ["params", "epochs", "seed", "final_test_acc", "seconds", "test_images"]:
        pd.testing.assert_series_equal(runs[c].astype(float), old[c].astype(float))
    assert all(isinstance(v, str) for v in runs.git_commit)


def test_plots_summary_of_an_empty_file_or_onto_a_file(tmp_path, capsys):
    (tmp_path / "runs.csv").touch()
    assert main(["plots", "--summary", "--results-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'runs.csv'} is empty (0 bytes)" in _err(capsys)
    (tmp_path / "runs.csv").write_bytes(GOOD)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    assert main(["plots", "--summary", "--results-dir", str(tmp_path), "--out",
                 str(blocker)]) == 2
    assert f"--out {blocker} is not a folder" in _err(capsys)
    assert blocker.read_text() == "a file, not a folder\n"


def test_the_command_line_exits_2_naming_the_line(tmp_path):
    """The whole command, as a user runs it: one line on stderr, exit 2."""
    data, line = _with("final_test_acc", "1e999")
    (tmp_path / "runs.csv").write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "benchmarks", "leaderboard", "--results-dir",
                           str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'runs.csv'}, line {line}: final_test_acc" in done.stderr.replace("\n", "")


# ---- property: damage at random ---------------------------------------------------------------

BASE = _records()[:12]  # the header and 11 runs: every kind of column, a few models
VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1e999", "-1", "101", "1.5", "abc", "",
                     "1e400", "0x10", "1_000", " 5 ", "[1, 2", "[NaN]", "[101]", "[-1]",
                     "[true]", '["1"]', "[[1]]", "[]", "null", '"x"', "{}", "[1, 2]",
                     '{"lr": NaN}', '{"val_split": "x"}', '{"a": {"b": Infinity}}', "1",
                     "0", "99.5", "2e19", "9" * 30, '"quoted"']),
    st.floats().map(repr), st.integers(-(2**70), 2**70).map(str), st.text(max_size=6))
# Any text is a text column's value; these just keep the non-finite check below unambiguous.
TEXTS = VALUES.filter(lambda v: "nan" not in v.lower() and "inf" not in v.lower())


@st.composite
def damaged(draw) -> bytes:
    records = [list(r) for r in BASE]
    for _ in range(draw(st.integers(0, 3))):  # values: any column of any row
        row = draw(st.integers(1, len(records) - 1))
        column = draw(st.integers(0, len(records[0]) - 1))
        text = KINDS[records[0][column]] == "text"
        records[row][column] = draw(TEXTS if text else VALUES)
    data = _encode(records)
    for how in draw(st.lists(st.sampled_from(["bom", "latin-1", "cut", "quote", "blank"]),
                             max_size=2)):
        at = draw(st.integers(0, len(data)))
        if how == "bom":
            data = BOM + data
        elif how == "latin-1":
            data = data[:at] + "é".encode("latin-1") + data[at:]
        elif how == "cut":  # a row, or a quoted field, cut short
            data = data[:at]
        elif how == "quote":
            data = data[:at] + b'"' + data[at:]
        else:
            data = data[:at] + b"\r\n" + data[at:]
    return data


def _finite(frame: pd.DataFrame) -> None:
    numbers = frame.select_dtypes("number")
    assert not numbers.isin([math.inf, -math.inf]).any().any()


def _refused(e: UserError, path: Path) -> None:
    assert f"{path}, line " in str(e) or f"{path} is empty (0 bytes)" in str(e), e


def test_a_header_and_no_runs_reads_as_no_runs_everywhere(tmp_path):
    """What a damage can leave (a cut right after the header line): every reader answers
    with empty tables, not a traceback."""
    from benchmarks.harness.results import COLUMNS

    (tmp_path / "runs.csv").write_bytes((",".join(COLUMNS) + "\r\n").encode())
    assert leaderboard.regenerate(tmp_path).empty
    assert plots.regenerate(tmp_path, summary=True) == []
    assert "no runs in runs.csv yet" in _docs_tables(tmp_path)
    assert "none yet" in tables.champions_table(tmp_path)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_property_damaged_runs_are_read_or_refused_with_a_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        path = results / "runs.csv"
        path.write_bytes(data)
        try:
            _finite(read_runs(path))
        except ResultsError as e:
            _refused(e, path)
            for reader in (lambda: leaderboard.regenerate(results),
                           lambda: plots.regenerate(results, summary=True),
                           lambda: _docs_tables(results)):
                with pytest.raises(UserError) as refused:
                    reader()
                _refused(refused.value, path)
            return
        try:
            board = leaderboard.regenerate(results)
        except UserError as e:  # a file with a header and no runs
            assert "no runs" in str(e), e
            return
        _finite(board)
        plots.regenerate(results, summary=True)
        text = _docs_tables(results) + tables.champions_table(results) + \
            tables.leaderboard_table(results)
        assert "inf" not in text.lower().replace("info", "") and "nan" not in text.lower()
