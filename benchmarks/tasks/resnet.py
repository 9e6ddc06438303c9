"""ResNet18 for the ants/bees task: torchvision's network, its pretrained weights (ImageNet,
a local file, or none), and which layers train."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from errors import UserError

# The first child each mode trains; every child before it is frozen.
TRAINED_FROM = {"finetune": "conv1", "layer2": "layer2", "layer3": "layer3",
                "layer4": "layer4", "feature": "fc"}


# torchvision is imported where it is used: its import brings torch._dynamo with it (seconds),
# which a run that reads a checkpoint of its own never needs.
def resnet18(num_classes: int = 1000) -> nn.Module:
    from torchvision.models import resnet18 as torchvision_resnet18

    return torchvision_resnet18(num_classes=num_classes)


def imagenet():
    """torchvision's ImageNet weights for ResNet18 (their URL, file name and loader)."""
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


class WeightsError(UserError):
    """Pretrained weights that are missing, unreadable or not a ResNet18 state dict."""




def imagenet_cache_file() -> Path:
    """Where torchvision keeps (and looks for) the ImageNet ResNet18 file: torch hub's cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(imagenet().url).name


def _imagenet_state() -> tuple[dict, str]:
    path = imagenet_cache_file()
    how = "from the cache" if path.is_file() else "downloaded"
    try:  # torchvision loads a cached file without the network, else downloads it
        state = imagenet().get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (URLError, OSError) as e:
        raise WeightsError(
            f"ImageNet weights for ResNet18 are not available: {path} is not cached and the "
            f"download failed ({getattr(e, 'reason', e)}). Two ways to provide them:\n"
            f"  1. run once with internet, so torchvision caches {path.name} in {path.parent} "
            "(set TORCH_HOME to move that folder), or\n"
            f"  2. pass --weights PATH to a local ResNet18 state-dict file (.pth or "
            ".safetensors), such as a copy of that file.\n"
            "  (--weights none trains from random initialisation.)") from None
    except Exception as e:  # torch.load of a damaged cache file raises many kinds
        raise WeightsError(f"{path}: the cached ImageNet weights are unreadable ({e}); "
                           "delete the file to download it again") from None
    return state, f"imagenet (torchvision {imagenet()}, {how}: {path})"


def _file_state(path: Path) -> tuple[dict, str]:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (--weights takes imagenet, none "
                           "or the path of a ResNet18 state-dict file)")
    try:  # weights_only / safetensors: loading never runs code from the file
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and safetensors errors have no common base
        raise WeightsError(f"{path}: not a readable state-dict file ({type(e).__name__}: "
                           f"{e})") from None
    for key in ("state_dict", "model"):  # training scripts often wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise WeightsError(f"{path}: not a state dict (a mapping of names to tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel's prefix
    return state, f"file {path}"


def load_weights(spec: str) -> tuple[dict | None, str, str]:
    """(state dict or None, tag for the arch string, what the run says it used)."""
    if spec == "none":
        return None, "none", "none (random initialisation)"
    if spec == "imagenet":
        state, described = _imagenet_state()
        return state, "imagenet", described
    path = Path(spec).expanduser()
    state, described = _file_state(path)
    with open(path, "rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return state, f"file.{sha[:8]}", f"{described} (sha256 {sha[:12]})"


def _apply(model: nn.Module, state: dict, described: str) -> None:
    """Load every backbone tensor; the head too when its shape fits (else it stays new)."""
    head = model.fc.weight.shape
    if state.get("fc.weight") is None or state["fc.weight"].shape != head:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise WeightsError(f"{described}: does not fit ResNet18: "
                           f"{str(e).splitlines()[-1].strip()}") from None
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise WeightsError(f"{described}: not a ResNet18 state dict (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")


def freeze(model: nn.Module, mode: str) -> None:
    """Train the children from TRAINED_FROM[mode] on; freeze the rest (no grads, so SGD skips
    them). As in the tutorial, frozen BatchNorm layers still update their running stats."""
    names = [name for name, _ in model.named_children()]
    start = names.index(TRAINED_FROM[mode])
    for i, (_, child) in enumerate(model.named_children()):
        child.requires_grad_(i >= start)


def arch_string(mode: str, tag: str, num_classes: int = 2) -> str:
    return f"resnet18-{mode}-{tag}" + (f"-{num_classes}classes" if num_classes != 2 else "")


def build(mode: str, weights: str, num_classes: int) -> nn.Module:
    """ResNet18 with a new num_classes head, weights per `weights`, frozen per `mode`."""
    state, tag, described = load_weights(weights)
    model = resnet18(num_classes=num_classes)  # random init; the new head keeps it
    if state is not None:
        _apply(model, state, described)
    freeze(model, mode)
    model.arch = arch_string(mode, tag, num_classes)
    model.weights_used = described
    return model


def from_arch(arch: str) -> nn.Module:
    """The untrained network an arch string names (checkpoints bring their own weights)."""
    m = re.fullmatch(r"resnet18-(\w+)-([\w.]+?)(?:-(\d+)classes)?", arch)
    if not m or m.group(1) not in TRAINED_FROM:
        raise UserError(f"not a ResNet18 architecture string: {arch!r}")
    model = resnet18(num_classes=int(m.group(3) or 2))
    freeze(model, m.group(1))
    model.arch = arch
    return model
