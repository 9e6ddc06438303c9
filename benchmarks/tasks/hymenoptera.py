"""The ants/bees transfer task: ResNet18, ImageNet-pretrained (or not), fine-tuned per Config.

The dataset has only two folders, train/ and val/. Benchmark runs report the val folder in the
row's test columns (final_test_acc, the leaderboard); the search, which must never see a test
set, selects on the same val folder as its validation split. There is no third split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from errors import UserError

from ..harness.config import RUN, Config, setting

if TYPE_CHECKING:  # torch is imported where it is used: `--help` reads the settings without it
    import torch
    from torch import nn

    from ..harness.data import Data

# Which ResNet18 layers train: all, from layerN on, or only the new head.
MODES = ("finetune", "layer2", "layer3", "layer4", "feature")


@dataclass(frozen=True)
class Settings(Config):
    """Config and the image task's own settings."""

    mode: str = setting("finetune", "layers trained: finetune (all), from layerN on, or "
                        "feature (the head only)", choices=MODES)
    weights: str = setting("imagenet", "imagenet | none | PATH to a local state-dict file",
                           check=bool, must="must be imagenet, none or a file path",
                           search=True, path=True)
    image_size: int = setting(224, "training crop side (evaluation resizes to 8/7 of it, then "
                              "crops)", check=lambda v: v >= 32,
                              must="must be at least 32 (ResNet18 downsamples 32x)",
                              search=True)
    workers: int = setting(2, "DataLoader worker processes decoding images", RUN,
                           check=lambda v: 0 <= v <= 256, must="must be in [0, 256] (processes)",
                           search=True)

NAME = "hymenoptera"
HELP = "transfer learning: ResNet18 on the ants/bees images"
# The PyTorch transfer-learning tutorial's SGD(lr 0.001, momentum 0.9), batch 4,
# StepLR(7 epochs, 0.1), 25 epochs.
DEFAULTS = {"model": "resnet18", "epochs": 25, "batch_size": 4, "lr": 0.001, "momentum": 0.9,
            "nesterov": False, "weight_decay": 0.0, "schedule": "step", "eval_batch_size": 32,
            "target": 94.0}
SEARCH_DEFAULTS: dict = {}  # its val folder is the validation split
CONFIG = Settings
# Nothing of MNIST's: the images get the tutorial's crops and flips instead of the digit
# augmentation, the val folder is the validation split, and the network is ResNet18, never
# re-initialised (which would wipe the pretrained weights the task starts from).
USES: frozenset = frozenset()
TEST_NAME = "val"  # the val folder, reported in the rows' test columns (no third split)
ZOO = False
PICTURES = ("confusion", "predictions")


def load_data(cfg: Settings, device: torch.device, with_test: bool = True) -> Data:
    """Benchmarks: the val folder in the test slot. Search (with_test=False): it is val."""
    if cfg.val_split:
        raise UserError("invalid option: val_split does not apply to the ants/bees task; its "
                        "val folder is the validation split (there is no third split)")
    from ..harness.data import Data
    from .images import load_image_splits

    train_split, val_split = load_image_splits(cfg, device)
    return Data(train_split, None, val_split) if with_test else Data(train_split, val_split, None)


def preflight(cfg: Settings) -> str:
    from .resnet import load_weights

    _, _, described = load_weights(cfg.weights)  # fails before any image is read
    return f"[bold]resnet18[/bold] {cfg.mode} ({cfg.image_size}px, weights: {described})"


def make_model(cfg: Settings, num_classes: int | None = None) -> nn.Module:
    """ResNet18 with a new num_classes head (ants, bees), weights per cfg.weights, frozen per
    cfg.mode."""
    from .resnet import build

    return build(cfg.mode, cfg.weights, num_classes or 2)


def model_from_arch(arch: str) -> nn.Module:
    from .resnet import from_arch

    return from_arch(arch)


def profile(model: nn.Module, cfg) -> dict:
    """torchinfo's total and trainable parameters and MACs for one image_size² RGB image."""
    from models.report import inspect

    stats = inspect(model, (1, 3, cfg.image_size, cfg.image_size), verbose=0)
    return {"params": stats.total_params, "trainable": stats.trainable_params,
            "macs": stats.total_mult_adds, "family": "resnet18"}
