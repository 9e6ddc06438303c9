"""The model zoo: GAP-based CNN families under a parameter budget.

Names, families, members and architecture strings load without torch (so a command's --help
stays instant); the networks themselves (`build`, `Net`, `create_model`, `count_params`) come
from models/arch.py and models/create.py, imported on first use.
"""

from . import families  # noqa: F401, I001  (registers the families first)
from . import members  # noqa: F401  (champions.toml, peers.toml: members kept as data)
from .grammar import Arch, ArchError, parse
from .registry import (
    BUDGET,
    OverBudgetError,
    UnknownModelError,
    arch_of,
    family_of,
    list_families,
    list_models,
    recipe_of,
    register,
)

_BUILT = {"Net": "arch", "build": "arch", "count_params": "create", "create_model": "create"}


def __getattr__(name: str):
    """The names that need torch, imported when first asked for (PEP 562)."""
    if name in _BUILT:
        import importlib

        return getattr(importlib.import_module(f".{_BUILT[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Arch", "ArchError", "BUDGET", "Net", "OverBudgetError", "UnknownModelError",
           "arch_of", "build", "count_params", "create_model", "family_of",
           "list_families", "list_models", "parse", "recipe_of", "register"]
