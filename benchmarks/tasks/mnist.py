"""MNIST with the model zoo: the suite's own task (the budget, the search, the champions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from errors import UserError

from ..harness.config import AUGMENT, HOLDOUT, ZOO, Config

if TYPE_CHECKING:  # torch is imported where it is used: `--help` reads the settings without it
    import torch
    from torch import nn

    from ..harness.data import Data

NAME = "mnist"
HELP = "train zoo models on MNIST, one result row per seed"
DEFAULTS: dict = {}  # Config's own defaults are MNIST's
SEARCH_DEFAULTS = {"val_split": 10_000}  # 10,000 of the 60,000 training images to select on
CONFIG = Config
USES = frozenset({AUGMENT, ZOO, HOLDOUT})
TEST_NAME = "test"
ZOO = True
PICTURES = ("confusion", "misclassified")


def load_data(cfg, device: torch.device, with_test: bool = True) -> Data:
    from ..tasks.mnist_files import load_mnist

    return load_mnist(cfg, device, with_test=with_test)


def preflight(cfg) -> str:
    from models import create_model

    create_model(cfg.model)  # unknown or over-budget models fail before any data is loaded
    return f"[bold]{cfg.model}[/bold]"


def make_model(cfg, num_classes: int | None = None) -> nn.Module:
    from models import create_model

    return create_model(cfg.model)


def model_from_arch(arch: str) -> nn.Module:
    from models import ArchError, build

    try:
        return build(arch)
    except ArchError as e:
        raise UserError(f"invalid architecture: {e}") from None


def profile(model: nn.Module, cfg) -> dict:
    """torchinfo's counts for one 28x28 image, on a CPU copy, before training."""
    from models import family_of
    from models.report import profile as zoo_profile

    stats = zoo_profile(model)
    return {"params": stats["params"], "trainable": stats["params"], "macs": stats["macs"],
            "family": family_of(cfg.model)}
