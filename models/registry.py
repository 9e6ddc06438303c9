"""Registry of model families and named zoo members (timm's `register` / `create_model`)."""

from __future__ import annotations

import difflib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from errors import UserError

from .arch import ArchError, Net, build, parse

# The product's parameter budget. Change it here (or set models.registry.BUDGET at run time);
# create_model refuses anything above it before a single step is trained.
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


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


def _count_unbuilt(arch: str) -> int | None:
    """Parameters of `arch` counted on the meta device: shapes only, nothing allocated, no
    random numbers drawn. None when its widths are too large for torch to describe at all."""
    try:
        with torch.device("meta"):
            return count_params(build(arch))
    except (RuntimeError, TypeError, OverflowError) as e:
        if "overflow" in str(e).lower():
            return None
        raise


def family_of(name_or_arch: str) -> str:
    return MODELS[name_or_arch][0] if name_or_arch in MODELS else "custom"


def create_model(name: str, budget: int | None = None, pretrained: bool = False,
                 **overrides) -> Net:
    """Build a zoo member (with family-parameter overrides) or an architecture string; with
    `pretrained`, a zoo member with its saved weights, in eval mode (see pretrained_weights).

    Raises OverBudgetError when the model has more parameters than the budget.
    """
    if pretrained:
        if overrides:
            raise UserError(f"pretrained weights fit {name} as registered; drop the overrides "
                            f"{sorted(overrides)}")
        weights = pretrained_weights(name)
    arch = arch_of(name, **overrides)
    limit = BUDGET if budget is None else budget
    # Counted before anything is allocated, so an absurd width is refused, not attempted.
    n = _count_unbuilt(arch)
    if n is None or n > limit:
        counted = "too many parameters to count" if n is None else f"{n:,} parameters"
        shown = name if name == arch else f"{name} ({arch})"
        raise OverBudgetError(f"{shown} has {counted}, over the budget of {limit:,}")
    model = build(arch)
    if pretrained:
        _load(model, weights, arch)
    return model


# ----------------------------------------------------------------------------------------------
# Saved weights: the final checkpoints runs leave under <results>/checkpoints (the harness
# writes them; each .safetensors has a JSON sidecar holding the run's row). Read here with
# safetensors alone, so the zoo needs nothing from the harness above it.

def results_dir() -> Path:
    """$NAS_RESULTS (the harness's results folder too), else the repository's results/."""
    return Path(os.environ.get("NAS_RESULTS") or Path(__file__).resolve().parents[1] / "results")


def _full_runs() -> dict[str, Path]:
    """Zoo member -> the weights of its latest final checkpoint of a full run (every training
    and test image, the member's architecture as registered today); tiny trial runs and runs
    of an architecture the member no longer has are never taken for its weights."""
    found: dict[str, tuple[str, Path]] = {}
    for sidecar in sorted((results_dir() / "checkpoints").glob("*-final.json")):
        try:
            side = json.loads(sidecar.read_text())
            cfg = side.get("config") or {}
            cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # an unreadable sidecar names no weights
        name, weights = side.get("model"), sidecar.with_suffix(".safetensors")
        full = not any(cfg.get(k) for k in ("train_subset", "test_subset", "val_split"))
        if (name in MODELS and full and weights.is_file() and side.get("arch") == arch_of(name)
                and (name not in found or str(side.get("timestamp")) > found[name][0])):
            found[name] = (str(side.get("timestamp")), weights)
    return {name: weights for name, (_, weights) in found.items()}


def list_pretrained() -> list[str]:
    """The zoo members create_model(name, pretrained=True) can load."""
    return sorted(_full_runs())


def pretrained_weights(name: str) -> Path:
    """The .safetensors file create_model(name, pretrained=True) loads; a UserError naming the
    members that have weights when `name` has none."""
    arch_of(name)  # an unknown name is refused as such first
    runs = _full_runs()
    if name not in runs:
        have = ", ".join(sorted(runs)) or "none"
        raise UserError(f"{name} has no saved weights (a full run's final checkpoint under "
                        f"{results_dir() / 'checkpoints'}); members with weights: {have}")
    return runs[name]


def _load(model: Net, weights: Path, arch: str) -> None:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(weights), framework="pt") as f:
            saved_as = (f.metadata() or {}).get("arch", arch)
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise UserError(f"{weights}: cannot read the weights ({e})") from None
    if saved_as != arch:
        raise UserError(f"{weights}: saved for {saved_as}, not {arch}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{weights}: the weights do not fit {arch} ({e})") from None
    model.eval()
