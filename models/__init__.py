"""The model zoo: GAP-based CNN families under a parameter budget."""

from . import families  # noqa: F401, I001  (registers the families first)
from . import champions  # noqa: F401  (search winners, registered after the families)
from . import peers  # noqa: F401  (published hand-designed models, re-measured here)
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
