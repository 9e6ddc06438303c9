"""Image folders (the ants/bees set) through ImageFolder and a DataLoader, behind the four
members train() and evaluate() use: len(), num_classes, train_batches(), eval_batches().

Unlike MNIST these are a few hundred full-size JPEGs, so they're decoded per epoch by worker
processes with the PyTorch transfer-learning tutorial's transforms, then moved to the device.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

from ..harness.data import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the statistics the pretrained weights expect
IMAGENET_STD = (0.229, 0.224, 0.225)
PIL_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def image_root(data_root: str = "") -> Path:
    """--data-root, else $HYMENOPTERA_ROOT, else ./data/hymenoptera_data."""
    return Path(data_root or os.environ.get("HYMENOPTERA_ROOT") or "data/hymenoptera_data")


def load_image(path: str) -> Image.Image:
    """ImageFolder's loader, but a file PIL cannot read becomes a DataError naming it."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except PIL_ERRORS as e:
        raise DataError(f"unreadable image file {path}: {e}") from None


def check_images(paths: list[str]) -> None:
    """Decode every file once, up front, so a bad one is named here and not deep in a worker."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img.draft("RGB", (64, 64))  # JPEG: decode at reduced scale; still reads it all
                img.load()
        except PIL_ERRORS as e:
            bad.append(f"{path} ({e})")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10
                                         else "")
        raise DataError(f"{len(bad)} unreadable image file(s); remove or replace them:\n  "
                        f"{shown}")


def train_transform(size: int) -> transforms.Compose:
    return transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(size: int) -> transforms.Compose:
    """Resize to 8/7 of the crop, then center-crop: the tutorial's 256 then 224."""
    return transforms.Compose([
        transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size),
        transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def balanced_subset(samples: list[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    """The first n files, taken round-robin over classes (so a tiny subset has every class)."""
    rank: dict[int, int] = {}
    keyed = []
    for path, label in samples:
        rank[label] = rank.get(label, 0) + 1
        keyed.append(((rank[label], label), (path, label)))
    return [s for _, s in sorted(keyed)[:n]]


def _clean(e: DataError) -> DataError:
    """A DataError re-raised from a worker carries its traceback; keep the line naming the file."""
    lines = [ln for ln in str(e).splitlines() if "unreadable image file" in ln]
    return DataError(lines[-1].split("DataError: ", 1)[-1]) if lines else e


class ImageSplit:
    """One folder of class subfolders, decoded by a DataLoader, yielding device batches."""

    def __init__(self, folder: ImageFolder, device: torch.device, size: int, workers: int):
        self.folder, self.device, self.size, self.workers = folder, device, size, workers
        self.classes = folder.classes  # names, for reports
        self.num_classes = len(folder.classes)

    def __len__(self) -> int:
        return len(self.folder.samples)

    def _batches(self, transform, batch_size: int, shuffle: bool, seed: int = 0):
        dataset = copy.copy(self.folder)  # shares the file list; only the transform differs
        dataset.transform = transform
        cuda = self.device.type == "cuda"
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                            num_workers=self.workers, pin_memory=cuda,
                            generator=torch.Generator().manual_seed(seed))
        batches, error = iter(loader), None
        try:
            for x, y in batches:
                yield x.to(self.device, non_blocking=cuda), y.to(self.device, non_blocking=cuda)
        except DataError as e:
            error = _clean(e)
        # Raised outside the except block, the error holds no traceback into the loader, so
        # its workers shut down here rather than whenever the error is freed.
        del batches
        if error is not None:
            raise error

    def train_batches(self, cfg, gen: torch.Generator):
        """One epoch, shuffled and augmented; the order follows `gen`, so runs repeat."""
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
        yield from self._batches(train_transform(self.size), cfg.batch_size, True, seed)

    def eval_batches(self, batch_size: int):
        yield from self._batches(eval_transform(self.size), batch_size, False)


def load_folder(root: Path, name: str, subset: int = 0) -> ImageFolder:
    """ImageFolder over root/name, optionally cut to a balanced subset, every file checked."""
    path = root / name
    if not path.is_dir():
        raise DataError(f"image folder missing: {path}\n  expected {root}/train/<class>/ and "
                        f"{root}/val/<class>/ (the ants/bees layout); set --data-root or "
                        "HYMENOPTERA_ROOT to the folder that holds train/ and val/")
    try:
        folder = ImageFolder(str(path), loader=load_image)
    except FileNotFoundError as e:  # no class folders, or a class folder with no images
        raise DataError(f"no usable images under {path}: {e}") from None
    if subset:
        folder.samples = balanced_subset(folder.samples, subset)
        folder.imgs = folder.samples
        folder.targets = [label for _, label in folder.samples]
    check_images([p for p, _ in folder.samples])
    return folder


def check_classes(folder: ImageFolder) -> None:
    """Refuse a split a classifier cannot learn or be measured on: fewer than two classes (every
    image right by construction), or a class without images (after --train/--test-subset)."""
    counts = {name: 0 for name in folder.classes}
    for _, label in folder.samples:
        counts[folder.classes[label]] += 1
    if len(counts) < 2:
        raise DataError(f"{folder.root}: {len(counts)} class folder(s) ({', '.join(counts)}); a "
                        "classifier needs at least two, one folder of images per class")
    empty = [name for name, n in counts.items() if not n]
    if empty:
        raise DataError(f"{folder.root}: class(es) without images: {', '.join(empty)}"
                        " (a subset too small for every class, or an empty folder)")


def load_image_splits(cfg, device: torch.device) -> tuple[ImageSplit, ImageSplit]:
    """The train and val folders under the data root (subsets per cfg), as device splits."""
    root = image_root(cfg.data_root)
    train = load_folder(root, "train", cfg.train_subset)
    val = load_folder(root, "val", cfg.test_subset)
    if train.classes != val.classes:
        raise DataError(f"train and val class folders differ under {root}: "
                        f"{train.classes} vs {val.classes}")
    for folder in (train, val):
        check_classes(folder)
    make = lambda f: ImageSplit(f, device, cfg.image_size, cfg.workers)  # noqa: E731
    return make(train), make(val)
