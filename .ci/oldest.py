"""Print pip constraints that pin every runtime dependency to the lowest version pyproject.toml
allows, for `make test-oldest`: the promise `torch>=2.4` is only kept if something runs on 2.4.

Every runtime dependency must be written `name>=version` (extras allowed): a new one written
otherwise stops this script, so the oldest-versions test never silently skips a dependency.
The optional extras users install (onnx) are runtime dependencies too; the development tools
of the `dev` extra (pytest, ruff, ...) are left to the resolver: they are not promised to users.
"""

import re
import sys
import tomllib
from pathlib import Path

# Not a dependency of ours, but torch 2.4 and pandas 2.0 were built against NumPy 1: with
# NumPy 2 they fail to import, so the oldest set only works with NumPy 1 beside it.
EXTRA = ["numpy<2"]
LOWER = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([0-9][0-9.]*)$")


def main() -> int:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    lines = []
    for dep in project["dependencies"] + [d for name, deps in extras.items() if name != "dev"
                                          for d in deps]:
        m = LOWER.match(dep.replace(" ", ""))
        if m is None:
            sys.exit(f"oldest.py: cannot read a lowest version from {dep!r} (write name>=X)")
        lines.append(f"{m[1]}=={m[3]}")
    print("\n".join(lines + EXTRA))
    return 0


if __name__ == "__main__":
    sys.exit(main())
