"""Images as uint8 tensors that live on the training device, normalized and augmented there in
whole batches (a task's loader, e.g. tasks/mnist_files.py, fills them).

It's faster to keep 47 MB of uint8 on the device and normalize/augment whole batches there
than to run a per-sample PIL pipeline through a DataLoader (airbench's lesson).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from errors import UserError

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics
# Training images augmented at once on CPU (whole batches): at batch 32 on one core 256-1024
# measured ~1.8x faster per batch than one batch at a time (per-op costs), 2,048 and more
# slower again (the working set, 1.6 KB of grid and 3 KB of floats per image, leaves the cache).
CHUNK_IMAGES = 256

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
