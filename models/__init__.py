"""The model zoo: GAP-based CNN families under a parameter budget."""

from . import families  # noqa: F401, I001  (registers the families first)
from . import members  # noqa: F401  (champions.toml, peers.toml: members kept as data)
from .arch import Arch, ArchError, Net, build, parse
from .registry import (
    BUDGET,
    OverBudgetError,
    UnknownModelError,
    arch_of,
    count_params,
    create_model,
    family_of,
    list_families,
    list_models,
    recipe_of,
    register,
)

__all__ = ["Arch", "ArchError", "BUDGET", "Net", "OverBudgetError", "UnknownModelError",
           "arch_of", "build", "count_params", "create_model", "family_of",
           "list_families", "list_models", "parse", "recipe_of", "register"]
