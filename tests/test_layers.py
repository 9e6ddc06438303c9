"""The tree is the architecture: imports only go down, lazily or not.

errors <- models <- benchmarks.harness <- benchmarks.tasks <- benchmarks.commands, search <- the
benchmarks package's own entry points (benchmarks/__main__.py, benchmarks/query.py). Every
import statement of every module is read, those inside functions too, so a lazy import that
climbs is caught as surely as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Longest prefix first: a module's layer is that of the first prefix it falls under. The two
# sibling top layers (commands, search) may not import each other.
LAYERS = [("errors", 0), ("models", 1), ("benchmarks.harness", 2), ("benchmarks.tasks", 3),
          ("benchmarks.commands", 4), ("search", 4), ("benchmarks", 5)]


def layer(module: str) -> tuple[int, str] | None:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank, prefix
    return None  # the standard library or a dependency


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in the file, relative ones resolved."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno))
    return out


def product_files() -> list[Path]:
    return [ROOT / "errors.py"] + [p for top in ("models", "benchmarks", "search")
                                   for p in sorted((ROOT / top).rglob("*.py"))]


def climbs(path: Path) -> list[str]:
    mine = layer(module_name(path))
    found = []
    for name, line in imported(path):
        theirs = layer(name)
        if mine and theirs and (theirs[0] > mine[0]
                                or theirs[0] == mine[0] and theirs[1] != mine[1]):
            found.append(f"{module_name(path)} ({mine[1]}) imports {name} ({theirs[1]}), "
                         f"line {line}")
    return found


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_down(path):
    assert not climbs(path)


def test_the_walk_sees_a_climb(tmp_path, monkeypatch):
    """The check itself: a harness module importing a task, even inside a function, climbs."""
    fake = ROOT / "benchmarks" / "harness" / "fake.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: (
        "def f():\n    from ..tasks import get_task\n" if self == fake else ""))
    assert climbs(fake) == ["benchmarks.harness.fake (benchmarks.harness) imports "
                            "benchmarks.tasks (benchmarks.tasks), line 2"]
