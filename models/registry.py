"""Registry of model families and named zoo members (timm's `register` / `create_model`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from .arch import Net, build

# The product's parameter budget. Change it here (or set models.registry.BUDGET at run time);
# create_model refuses anything above it before a single step is trained.
BUDGET = 20_000


class UserError(Exception):
    """Bad input from a user: the CLIs print the message and exit non-zero, no traceback."""


class UnknownModelError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class OverBudgetError(UserError, ValueError):
    pass


FAMILIES: dict[str, Callable[..., str]] = {}  # family name -> function(**params) -> arch string
MODELS: dict[str, tuple[str, dict]] = {}  # member name -> (family, params)
# Members promoted from a search keep what the search found with them: the training choices
# they were confirmed with (Config overrides, applied under the user's own flags) and where the
# search found them ("<study>:<trial>" in results/search.db).
RECIPES: dict[str, dict] = {}
FOUND_BY: dict[str, str] = {}
# Hand-designed peers (models/peers.py) keep where they were published: "<repository> <file>".
SOURCES: dict[str, str] = {}


def family(fn: Callable[..., str]) -> Callable[..., str]:
    """Register a family: a function from its parameters to an architecture string."""
    FAMILIES[fn.__name__] = fn
    return fn


def register(fn: Callable[[], dict]) -> Callable[[], dict]:
    """Register a named member: a function returning {'family': ..., **params}, and for search
    winners also 'recipe' (Config overrides) and 'found_by' ('<study>:<trial>'), for published
    peers 'recipe' and 'source' ('<repository> <file>')."""
    spec = dict(fn())
    fam = spec.pop("family")
    if fam not in FAMILIES:
        raise ValueError(f"{fn.__name__}: unknown family {fam!r}")
    if "recipe" in spec:
        RECIPES[fn.__name__] = spec.pop("recipe")
    if "found_by" in spec:
        FOUND_BY[fn.__name__] = spec.pop("found_by")
    if "source" in spec:
        SOURCES[fn.__name__] = spec.pop("source")
    MODELS[fn.__name__] = (fam, spec)
    return fn


def recipe_of(name: str) -> dict:
    """The training choices a promoted member was confirmed with ({} for other models)."""
    return dict(RECIPES.get(name, {}))


def list_models() -> list[str]:
    return sorted(MODELS)


def list_families() -> list[str]:
    return sorted(FAMILIES)


def family_params(name: str) -> dict:
    """The defaults of a family's parameters (what a member may override)."""
    sig = inspect.signature(FAMILIES[name])
    return {k: p.default for k, p in sig.parameters.items()}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def arch_of(name: str, **overrides) -> str:
    """The canonical architecture string of a zoo member (or of a string, passed through)."""
    if "|" in name:  # already an architecture string
        if overrides:
            raise UserError("overrides apply to named models, not to architecture strings")
        return str(build(name).arch)
    if name not in MODELS:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())} "
            "(or pass an architecture string such as 'v8-v16-p-t8-v16-t10-gap|do0.05')")
    fam, params = MODELS[name]
    unknown = set(overrides) - set(family_params(fam))
    if unknown:
        raise UserError(f"{name} ({fam} family) has no parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(family_params(fam))}")
    return FAMILIES[fam](**{**params, **overrides})


def family_of(name_or_arch: str) -> str:
    return MODELS[name_or_arch][0] if name_or_arch in MODELS else "custom"


def create_model(name: str, budget: int | None = None, **overrides) -> Net:
    """Build a zoo member (with family-parameter overrides) or an architecture string.

    Raises OverBudgetError when the model has more parameters than the budget.
    """
    model = build(arch_of(name, **overrides))
    limit = BUDGET if budget is None else budget
    n = count_params(model)
    if n > limit:
        raise OverBudgetError(
            f"{name} ({model.arch}) has {n:,} parameters, over the budget of {limit:,}")
    return model
