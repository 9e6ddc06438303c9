"""Registry of model families and named zoo members (timm's `register` / `create_model`)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

from errors import UserError

from .grammar import ArchError, parse

# The product's parameter budget. Change it here (or set models.registry.BUDGET at run time);
# create_model (models/create.py) refuses anything above it before a single step is trained.
BUDGET = 20_000


class UnknownModelError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class OverBudgetError(UserError, ValueError):
    pass


class InvalidArchError(ArchError, UserError):
    """An architecture string a user gave that does not parse: an ArchError (what the search
    catches) that the CLIs report as a user error (exit 2, no traceback)."""


FAMILIES: dict[str, Callable[..., str]] = {}  # family name -> function(**params) -> arch string
MODELS: dict[str, tuple[str, dict]] = {}  # member name -> (family, params)
# Members promoted from a search keep what the search found with them: the training choices
# they were confirmed with (Config overrides, applied under the user's own flags) and where the
# search found them ("<study>:<trial>" in results/search.db).
RECIPES: dict[str, dict] = {}
FOUND_BY: dict[str, str] = {}
# Hand-designed peers (models/peers.toml) keep where they were published: "<repository> <file>",
# and what their authors claimed (one run, on the test split), as they wrote it.
SOURCES: dict[str, str] = {}
CLAIMS: dict[str, str] = {}


def family(fn: Callable[..., str]) -> Callable[..., str]:
    """Register a family: a function from its parameters to an architecture string."""
    FAMILIES[fn.__name__] = fn
    return fn


def register(fn: Callable[[], dict]) -> Callable[[], dict]:
    """Register a named member: a function returning its spec (see add), named after it."""
    add(fn.__name__, fn())
    return fn


def add(name: str, spec: dict) -> None:
    """Register member `name` from its spec: {'family': ..., **params}, and for search winners
    also 'recipe' (Config overrides) and 'found_by' ('<study>:<trial>'), for published peers
    'recipe', 'source' ('<repository> <file>') and 'claim' (the published accuracy)."""
    spec = dict(spec)
    fam = spec.pop("family")
    if fam not in FAMILIES:
        raise ValueError(f"{name}: unknown family {fam!r}")
    if "recipe" in spec:
        RECIPES[name] = spec.pop("recipe")
    if "found_by" in spec:
        FOUND_BY[name] = spec.pop("found_by")
    if "source" in spec:
        SOURCES[name] = spec.pop("source")
    if "claim" in spec:
        CLAIMS[name] = spec.pop("claim")
    MODELS[name] = (fam, spec)


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




def arch_of(name: str, **overrides) -> str:
    """The canonical architecture string of a zoo member (or of a string, passed through)."""
    if "|" in name:  # already an architecture string
        if overrides:
            raise UserError("overrides apply to named models, not to architecture strings")
        return _parsed(name)
    if name not in MODELS and "-" in name:  # zoo names have none; architecture strings do
        raise InvalidArchError(
            f"{name!r} looks like an architecture string without its dropout suffix: end it "
            f"with '|do<p>' (the dropout after each block), e.g. '{name}|do0'")
    if name not in MODELS:
        close = difflib.get_close_matches(name, list_models(), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}; {hint}known models: {', '.join(list_models())} "
            "(or pass an architecture string such as 'v8-v16-p-t8-v16-t10-gap|do0.05')")
    fam, params = MODELS[name]
    unknown = set(overrides) - set(family_params(fam))
    if unknown:
        raise UserError(f"{name} ({fam} family) has no parameter(s) {sorted(unknown)}; "
                        f"it takes {sorted(family_params(fam))}")
    try:
        return FAMILIES[fam](**{**params, **overrides})
    except ValueError as e:  # ArchError: overrides that make no network
        raise InvalidArchError(f"{name} with {overrides}: {e}") from None


def _parsed(text: str) -> str:
    """The canonical form of an architecture string; InvalidArchError (a UserError) if none."""
    try:
        return str(parse(text))
    except ArchError as e:
        raise InvalidArchError(str(e)) from None
    except ValueError as e:  # int() of a width with thousands of digits
        short = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidArchError(f"{short!r}: {e}") from None




def family_of(name_or_arch: str) -> str:
    return MODELS[name_or_arch][0] if name_or_arch in MODELS else "custom"
