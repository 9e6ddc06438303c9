"""MNIST's four IDX files: found (a data root, $MNIST_ROOT, else ./data), checked against their
md5s, and loaded once into uint8 tensors on the training device (harness/data.py's Split)."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import torch

from errors import UserError

from ..harness.data import Data, DataError, Split

VAL_SEED = 0  # the validation split is the same for every run and every seed
# The canonical LeCun files (md5), as torchvision's MNIST reads them from <root>/MNIST/raw.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def mnist_root(data_root: str = "") -> tuple[Path, bool]:
    """The data root and whether torchvision may download into it (only the ./data default)."""
    if data_root:
        return Path(data_root), False
    if os.environ.get("MNIST_ROOT"):
        return Path(os.environ["MNIST_ROOT"]), False
    return Path("data"), True


def md5(path: Path) -> str:
    st = path.stat()  # a file is hashed once per process unless it changes
    return _md5(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _md5(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_mnist(root: Path) -> None:
    """Check the four IDX files exist with the canonical checksums; name the first bad one."""
    raw = root / "MNIST" / "raw"
    for name, expected in MNIST_MD5.items():
        path = raw / name
        if not path.is_file():
            raise DataError(
                f"MNIST file missing: {path}\n  expected the uncompressed IDX file {name} "
                f"(md5 {expected}) under {raw}/; set --data-root or MNIST_ROOT to the folder "
                "that holds MNIST/raw, or leave both unset to download into ./data")
        try:
            got = md5(path)
        except OSError as e:  # a permission or a device error: name the file, not a traceback
            raise DataError(f"MNIST file unreadable: {path} ({e.strerror or e})") from None
        if got != expected:
            raise DataError(f"MNIST file corrupt: {path}\n  md5 is {got}, expected {expected}; "
                            "replace it with the canonical file")


def _load(root: Path, download: bool, train: bool) -> Split:
    from torchvision.datasets import MNIST  # imported here: the zoo needs no torchvision

    ds = MNIST(str(root), train=train, download=download)
    return Split(ds.data.unsqueeze(1).contiguous(), ds.targets.long())


def load_mnist(cfg, device: torch.device, with_test: bool = True) -> Data:
    """Load MNIST per cfg (data_root, val_split, subsets) onto `device`, checksums verified."""
    root, download = mnist_root(cfg.data_root)
    if download:  # fetch once for users online; offline, say how to point at local files
        raw = root / "MNIST" / "raw"
        made = next((p for p in [*reversed(raw.parents), raw] if not p.exists()), None)
        try:
            _load(root, True, True), _load(root, True, False)
        except (RuntimeError, OSError) as err:
            if made is not None:  # torchvision made them: a refused run leaves no ./data
                shutil.rmtree(made, ignore_errors=True)
            why = str(err).partition("\n")[0] or type(err).__name__  # its first line, if any
            raise DataError(
                f"MNIST is not in {root.resolve()}/MNIST/raw and could not be downloaded "
                f"({why})\n  offline: set --data-root DIR or MNIST_ROOT=DIR to a folder "
                "holding MNIST/raw with the four IDX files") from err
    verify_mnist(root)
    train = _load(root, False, True)
    val = None
    if cfg.val_split:
        if cfg.val_split >= len(train):
            raise UserError(f"invalid option: val_split {cfg.val_split} leaves no training images")
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(VAL_SEED))
        val = Split(train.x[perm[-cfg.val_split:]], train.y[perm[-cfg.val_split:]])
        train = Split(train.x[perm[: -cfg.val_split]], train.y[perm[: -cfg.val_split]])
    if cfg.train_subset:
        train = Split(train.x[: cfg.train_subset], train.y[: cfg.train_subset])
    test = _load(root, False, False) if with_test else None
    if test is not None and cfg.test_subset:
        test = Split(test.x[: cfg.test_subset], test.y[: cfg.test_subset])
    if val is not None and cfg.test_subset:  # smoke runs shrink every evaluation split
        val = Split(val.x[: cfg.test_subset], val.y[: cfg.test_subset])
    move = lambda s: s and Split(s.x.to(device), s.y.to(device))  # noqa: E731
    return Data(move(train), move(val), move(test))
