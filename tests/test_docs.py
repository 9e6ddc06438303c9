"""The tables in README.md and docs/ are generated from the committed result files."""

from __future__ import annotations

from benchmarks.__main__ import main

STALE = "intro\n\n<!-- table: leaderboard -->\n| made up by hand |\n<!-- end table -->\nafter\n"


def test_committed_docs_are_up_to_date(capsys):
    """`python -m benchmarks docs` after changing results/: this fails until it is run."""
    assert main(["docs", "--check"]) == 0, capsys.readouterr().out


def test_check_finds_a_hand_edited_table_and_docs_rewrites_it(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(STALE)
    assert main(["docs", "--check", str(doc)]) == 1 and doc.read_text() == STALE
    assert main(["docs", str(doc)]) == 0
    text = doc.read_text()
    assert "made up" not in text and "| `nas_plain_10k` | 9,522 |" in text
    assert text.startswith("intro\n") and text.endswith("<!-- end table -->\nafter\n")
    assert main(["docs", "--check", str(doc)]) == 0


def test_unknown_table_is_a_user_error(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- table: nope -->\n<!-- end table -->\n")
    assert main(["docs", str(doc)]) == 2
    assert "unknown generated table 'nope'" in capsys.readouterr().err
