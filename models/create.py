"""create_model: a zoo member (or an architecture string) built as a torch network, refused
over the budget before anything is allocated, and with its saved weights where asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from errors import UserError

from . import registry
from .arch import Net, build
from .registry import MODELS, OverBudgetError, arch_of


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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
    limit = registry.BUDGET if budget is None else budget
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
