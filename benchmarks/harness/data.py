"""MNIST, loaded once into uint8 tensors that live on the training device.

It's faster to keep 47 MB of uint8 on the device and normalize/augment whole batches there
than to run a per-sample PIL pipeline through a DataLoader (airbench's lesson).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from errors import UserError

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics
VAL_SEED = 0  # the validation split is the same for every run and every seed
# Training images augmented at once on CPU (whole batches): at batch 32 on one core 256-1024
# measured ~1.8x faster per batch than one batch at a time (per-op costs), 2,048 and more
# slower again (the working set, 1.6 KB of grid and 3 KB of floats per image, leaves the cache).
CHUNK_IMAGES = 256

# The canonical LeCun files (md5), as torchvision's MNIST reads them from <root>/MNIST/raw.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


class DataError(UserError):
    """Missing or corrupt data files."""


@dataclass
class Split:
    """Images resident on the device. train() and evaluate() see any split only through
    len(), num_classes, train_batches() and eval_batches(); other tasks (ants/bees) supply
    their own split classes with the same four members."""

    x: torch.Tensor  # uint8, (N, 1, 28, 28), on the training device
    y: torch.Tensor  # int64, (N,)
    num_classes: int = 10

    def __len__(self) -> int:
        return len(self.y)

    def train_batches(self, cfg, gen: torch.Generator):
        """One epoch of shuffled, augmented, normalized batches: (x float, y).

        On CPU, CHUNK_IMAGES at a time (whole batches) go through augment() at once, each
        batch drawing its own numbers as if alone: exactly the batches of augmenting one at a
        time, in fewer and larger ops (tests/test_speed.py checks the equality)."""
        perm = torch.randperm(len(self), device=self.y.device, generator=gen)
        if self.x.is_cuda:
            yield from self.epoch_batches(cfg, gen, perm)
            return
        bs = cfg.batch_size
        chunk = max(1, CHUNK_IMAGES // bs) * bs
        for i in range(0, len(self), chunk):
            idx = perm[i:i + chunk]
            x = normalize(augment(self.x.index_select(0, idx), cfg.rotate, cfg.translate, gen,
                                  **augment_options(cfg), batch=bs))
            y = self.y[idx]
            for j in range(0, len(idx), bs):
                yield x[j:j + bs], y[j:j + bs]

    def epoch_batches(self, cfg, gen: torch.Generator, perm: torch.Tensor):
        """The epoch augmented in one pass, then sliced into batches: on a GPU, a tiny model's
        step is bound by kernel launches, and augmenting each batch launches ~20 of them
        (graphs.py takes the model's step down to a few). The same distribution as batch by
        batch, not the same draws; on CPU, batch by batch keeps the working set in cache."""
        x = normalize(augment(self.x[perm], cfg.rotate, cfg.translate, gen,
                              **augment_options(cfg)))
        y = self.y[perm]
        for i in range(0, len(self), cfg.batch_size):
            yield x[i:i + cfg.batch_size], y[i:i + cfg.batch_size]

    def eval_batches(self, batch_size: int):
        for i in range(0, len(self), batch_size):
            yield normalize(self.x[i:i + batch_size]), self.y[i:i + batch_size]


@dataclass
class Data:
    train: Split
    val: Split | None
    test: Split | None  # None when the caller must not see it (the search)


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


def normalize(x_uint8_or_float: torch.Tensor) -> torch.Tensor:
    x = x_uint8_or_float
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    return (x - MEAN) / STD


def augment_options(cfg) -> dict:
    """augment()'s keyword options from a Config."""
    return dict(scale=cfg.scale, shear=cfg.shear, erase=cfg.erase, p=cfg.augment_p,
                brightness=cfg.brightness, contrast=cfg.contrast)


def augment(x: torch.Tensor, rotate: float, translate: float, gen: torch.Generator,
            scale: float = 0.0, shear: float = 0.0, erase: float = 0.0, p: float = 1.0,
            brightness: float = 0.0, contrast: float = 0.0,
            batch: int | None = None) -> torch.Tensor:
    """A whole uint8 batch augmented at once, as floats in [0, 1]: one random affine map per
    image (rotation up to `rotate` degrees, shift up to `translate` of the side, zoom by up to
    1 +- `scale`, horizontal shear up to `shear` degrees), then a brightness/contrast jitter
    (x * (1 +- `contrast`) +- `brightness`, clipped to [0, 1], as albumentations'
    RandomBrightnessContrast), each kept for an image with probability `p`, drawn apart; then,
    with probability `erase` per image, a blank square (cutout) of 10-40% of the side, centred
    anywhere. Every draw is from `gen`, the run's own; an option at 0 (`p` at 1) draws
    nothing, so runs without it are unchanged.

    `batch`: x holds consecutive batches of this size (the last may be smaller), and each
    draws its numbers in the order it would alone, so the result is that of augmenting them
    one by one, in one pass over the whole."""
    x = x.float().div_(255)
    n = x.shape[0]
    sizes = [min(batch, n - i) for i in range(0, n, batch)] if batch else [n]
    affine = bool(rotate or translate or scale or shear)
    jitter = bool(brightness or contrast)
    draws = [_draws(b, affine, bool(scale or shear), jitter, p, erase, gen, x.device)
             for b in sizes]
    drawn = {k: torch.cat([d[k] for d in draws]) for k in draws[0] if draws[0][k] is not None}
    if affine:
        x = _maybe(x, _affine(x, rotate, translate, scale, shear, drawn), drawn.get("keep_affine"))
    if jitter:
        a, b = drawn["jitter"].view(n, 2, 1, 1, 1).unbind(1)
        x = _maybe(x, (x * (1 + a * contrast) + b * brightness).clamp_(0, 1),
                   drawn.get("keep_jitter"))
    if erase:
        x = x.masked_fill(cutout_mask(x.shape, erase, gen, x.device, drawn["cut"]), 0.0)
    return x


def _draws(n: int, affine: bool, more: bool, jitter: bool, p: float, erase: float,
           gen: torch.Generator, device) -> dict:
    """One batch's random numbers, in augment's order (None where not drawn): rotation and
    shift, zoom and shear, whether the map is kept, the jitter, whether it is kept, cutout."""
    def uniform(*shape, on: bool = True):
        return torch.rand(*shape, device=device, generator=gen) if on else None
    rand = uniform(n, 3, on=affine)
    zoom_shear = uniform(n, 2, on=affine and more)
    keep_affine = uniform(n, on=affine and p < 1)
    jit = uniform(n, 2, on=jitter)
    keep_jitter = uniform(n, on=jitter and p < 1)
    return {"rand": None if rand is None else rand * 2 - 1,
            "zoom_shear": None if zoom_shear is None else zoom_shear * 2 - 1,
            "keep_affine": None if keep_affine is None else keep_affine < p,
            "jitter": None if jit is None else jit * 2 - 1,
            "keep_jitter": None if keep_jitter is None else keep_jitter < p,
            "cut": uniform(n, 4, on=bool(erase))}


def _maybe(x: torch.Tensor, changed: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """`changed` for the images drawn to be kept (all of them when nothing was drawn)."""
    return changed if keep is None else torch.where(keep.view(-1, 1, 1, 1), changed, x)


def _affine(x: torch.Tensor, rotate: float, translate: float, scale: float, shear: float,
            drawn: dict) -> torch.Tensor:
    """One affine map per image from its drawn numbers (see augment)."""
    rand = drawn["rand"]
    angle = rand[:, 0] * (rotate * math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    shift = rand[:, 1:] * (2 * translate)  # grid coordinates span [-1, 1], i.e. 2 per side
    # Rows of the map from output to input coordinates: rotation, then shear and zoom.
    row0, row1 = [cos, -sin], [sin, cos]
    if scale or shear:
        more = drawn["zoom_shear"]
        zoom = 1 + more[:, 0] * scale  # over 1 magnifies: input coordinates shrink
        k = torch.tan(more[:, 1] * (shear * math.pi / 180))
        # rotation @ [[1, k], [0, 1]] / zoom
        row0 = [cos / zoom, (cos * k - sin) / zoom]
        row1 = [sin / zoom, (sin * k + cos) / zoom]
    theta = torch.stack([torch.stack([*row0, shift[:, 0]], 1),
                         torch.stack([*row1, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def cutout_mask(shape, p: float, gen: torch.Generator, device: torch.device,
                drawn: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1, H, W) bool: per image, with probability p, a square of side 10-40% of the image
    side, centred uniformly (it may reach past the border, as in cutout); nothing otherwise.
    `drawn`: the (N, 4) uniform numbers, when already drawn (else drawn here from gen)."""
    n, _, h, w = shape
    if drawn is None:
        drawn = torch.rand(n, 4, device=device, generator=gen)
    apply, cy, cx, side = drawn.unbind(1)
    half = (0.1 + 0.3 * side) * min(h, w) / 2 * (apply < p)  # half a side, 0 when not erased
    ys = torch.arange(h, device=device) + 0.5 - (cy * h)[:, None]  # pixel centres vs centre
    xs = torch.arange(w, device=device) + 0.5 - (cx * w)[:, None]
    inside_y = ys.abs() < half[:, None]
    inside_x = xs.abs() < half[:, None]
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]
