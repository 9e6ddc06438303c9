"""Zoo members kept as data beside the code: models/champions.toml (the search's winners) and
models/peers.toml (published hand-designed models), read with tomllib, registered at import.

Each top-level table is a member, named by its key: `family` and that family's parameters
(TOML arrays become the tuples the families take), and optionally a `recipe` sub-table (Config
overrides), or `recipe_from`, the name of a member registered before it whose recipe it trains
with (one recipe, not two copies that could drift apart), `found_by` ('<study>:<trial>'),
`source` ('<repository> <file>') and `claim`. Comments in the files say why each member is
there. `table` writes a member in this form (what `python -m search promote` prints).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

from .registry import FAMILIES, MODELS, RECIPES, add, family_params, recipe_of

HERE = Path(__file__).resolve().parent
FILES = (HERE / "champions.toml", HERE / "peers.toml")  # a peer may train with a champion's recipe


def read(path: Path) -> dict[str, dict]:
    """The members of one file, name -> spec, as written: arrays as tuples, `recipe_from` kept."""
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: {e}") from None
    return {name: {k: _tuples(v) if k != "recipe" else v for k, v in entry.items()}
            for name, entry in data.items()}


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def load(path: Path) -> list[str]:
    """Register the members of one file, in its order; the names registered."""
    members = read(path)
    for name, spec in members.items():
        where = f"{path.name}: {name}"
        if name in MODELS:
            raise ValueError(f"{where} is registered already")
        if spec.get("family") not in FAMILIES:
            raise ValueError(f"{where}: unknown family {spec.get('family')!r}")
        known = {"family", "recipe", "recipe_from", "found_by", "source", "claim"}
        unknown = set(spec) - known - set(family_params(spec["family"]))
        if unknown:
            raise ValueError(f"{where}: {spec['family']} takes no {sorted(unknown)}")
        if "recipe_from" in spec:
            other = spec.pop("recipe_from")
            if other not in RECIPES or "recipe" in spec:
                raise ValueError(f"{where}: recipe_from {other!r} must name a member with a "
                                 "recipe registered before it, in place of a recipe table")
            spec["recipe"] = recipe_of(other)
        add(name, spec)
    return list(members)


def table(name: str, spec: dict, comment: str = "") -> str:
    """Member `name` as a TOML table that `read` gives back as `spec` (tuples and all): the
    comment's lines first, then its keys in order, its recipe as a sub-table last."""
    head = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines = head + [f"[{_key(name)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in spec.items() if k != "recipe"]
    if "recipe" in spec:
        lines += ["", f"[{_key(name)}.recipe]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in spec["recipe"].items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML escapes DEL


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # repr round-trips; TOML spells inf and nan the same way
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML value for {value!r} ({type(value).__name__})")


for _path in FILES:
    load(_path)
