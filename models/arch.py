"""Canonical architecture strings and the one network builder every family compiles to.

An architecture is a '-'-separated list of ops, then '|do{p}' for the dropout after each block:

    v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05

    c{N}  3x3 conv, padding 1        v{N}  3x3 conv, no padding (shrinks the map by 2)
    t{N}  1x1 conv (transition)      s{N}  3x3 conv, stride 2
    x{N}  3x3 conv, dilation 2       d{N}  depthwise-separable 3x3 conv (dw 3x3 + pw 1x1)
    r{N}  residual block (two 3x3)   g{N}  ghost module (3x3 conv to N/2, cheap dw 3x3 to N/2)
    e{R}  squeeze-excite, reduction R p     2x2 max-pool
    gap   global average pooling     fc    linear C->10 after gap (else the last conv gives 10)

Every conv op is conv -> BatchNorm -> ReLU -> Dropout, except a last conv with 10 channels
right before `gap` and no `fc`: that one is the classifier and stays a bare conv with bias.
Like NAS-Bench-201's cell strings, the string is the model's name everywhere (leaderboard key,
de-duplication key); `str(parse(s)) == s` for every canonical `s`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

INPUT_SIZE = 28  # MNIST images are 28x28, one channel
NUM_CLASSES = 10
CONV_OPS = "cvtsxdrg"  # ops that take a width
_TOKEN = re.compile(r"^(?:([cvtsxdrge])(\d+)|(p|gap|fc))$")


class ArchError(ValueError):
    """An architecture string that does not describe a valid network."""


@dataclass(frozen=True)
class Arch:
    ops: tuple[str, ...]
    dropout: float

    def __str__(self) -> str:
        return f"{'-'.join(self.ops)}|do{self.dropout:g}"


def parse(text: str) -> Arch:
    """Parse and validate an architecture string; raises ArchError naming what is wrong."""
    text = text.strip().lower().replace(" ", "")
    body, sep, suffix = text.partition("|")
    if not sep or not suffix.startswith("do"):
        raise ArchError(f"{text!r}: expected '<ops>|do<dropout>', e.g. 'v8-v16-t10-gap|do0.05'")
    try:
        dropout = float(suffix[2:])
    except ValueError:
        raise ArchError(f"{text!r}: dropout {suffix[2:]!r} is not a number") from None
    if not 0.0 <= dropout < 1.0:
        raise ArchError(f"{text!r}: dropout must be in [0, 1), got {dropout}")
    ops = []
    for token in body.split("-"):
        m = _TOKEN.match(token)
        if not m:
            raise ArchError(f"{text!r}: unknown op {token!r} (see models/arch.py for the ops)")
        ops.append(m[3] or f"{m[1]}{int(m[2])}")
    arch = Arch(tuple(ops), dropout)
    _check(arch, text)
    return arch


def _check(arch: Arch, text: str) -> None:
    """Shape-check the op list without building it (fast enough for the search's sampler)."""
    ops = arch.ops
    if ops.count("gap") != 1 or ops[-1] not in ("gap", "fc") or ("fc" in ops and ops[-1] != "fc"):
        raise ArchError(f"{text!r}: must end with 'gap' or 'gap-fc', with one 'gap'")
    if ops[-1] == "fc" and ops[-2] != "gap":
        raise ArchError(f"{text!r}: 'fc' must directly follow 'gap'")
    size, channels = INPUT_SIZE, 1
    body = ops[: ops.index("gap")]
    if not body or "fc" in body:
        raise ArchError(f"{text!r}: ops must come before 'gap', and 'fc' only after it")
    if ops[-1] == "gap" and body[-1][0] not in CONV_OPS:
        raise ArchError(f"{text!r}: without 'fc' a conv must come right before 'gap'")
    for op in body:
        kind, n = op[0], int(op[1:]) if op[1:].isdigit() else 0
        if op == "p":
            size //= 2
        elif kind == "v":
            size -= 2
        elif kind == "s":
            size = math.ceil(size / 2)
        if kind in CONV_OPS:
            if n < 1:
                raise ArchError(f"{text!r}: {op} needs at least one channel")
            if kind == "g" and n % 2:
                raise ArchError(f"{text!r}: ghost op {op} needs an even width")
            channels = n
        if kind == "e" and n < 1:
            raise ArchError(f"{text!r}: {op} needs a reduction of at least 1")
        if size < 1:
            raise ArchError(f"{text!r}: the feature map shrinks to nothing at {op}")
    if channels == 1:
        raise ArchError(f"{text!r}: no conv op before 'gap'")
    if ops[-1] == "gap" and channels != NUM_CLASSES:
        raise ArchError(f"{text!r}: without 'fc' the last conv must have {NUM_CLASSES} channels")


def _cbr(cin: int, cout: int, k: int = 3, **conv) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, bias=False, **conv), nn.BatchNorm2d(cout), nn.ReLU()]


class Residual(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(*_cbr(cin, cout, padding=1),
                                  nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class Ghost(nn.Module):
    """GhostNet's idea: half the maps from a real conv, the other half from a cheap dw conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        half = cout // 2
        self.primary = nn.Sequential(*_cbr(cin, half, padding=1))
        self.cheap = nn.Sequential(*_cbr(half, half, padding=1, groups=half))

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 2)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1),
                                  nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


def _block(op: str, cin: int, classifier: bool) -> nn.Module:
    kind, n = op[0], int(op[1:])
    if classifier:  # the last conv before gap produces the 10 logits directly
        k, pad = (1, 0) if kind == "t" else (3, 0 if kind == "v" else 1)
        return nn.Conv2d(cin, n, k, padding=pad)
    layers = {
        "c": lambda: _cbr(cin, n, padding=1),
        "v": lambda: _cbr(cin, n),
        "t": lambda: _cbr(cin, n, 1),
        "s": lambda: _cbr(cin, n, stride=2, padding=1),
        "x": lambda: _cbr(cin, n, padding=2, dilation=2),
        "d": lambda: _cbr(cin, cin, padding=1, groups=cin) + _cbr(cin, n, 1),
        "r": lambda: [Residual(cin, n)],
        "g": lambda: [Ghost(cin, n)],
    }[kind]()
    return nn.Sequential(*layers)


class Net(nn.Sequential):
    """A network compiled from an Arch; `net.arch` is its canonical string."""

    def __init__(self, arch: Arch):
        layers: list[nn.Module] = []
        channels = 1
        body = arch.ops[: arch.ops.index("gap")]
        for i, op in enumerate(body):
            if op == "p":
                layers.append(nn.MaxPool2d(2))
            elif op[0] == "e":
                layers.append(SqueezeExcite(channels, int(op[1:])))
            else:
                classifier = i == len(body) - 1 and arch.ops[-1] == "gap"
                layers.append(_block(op, channels, classifier))
                channels = int(op[1:])
                if arch.dropout and not classifier:
                    layers.append(nn.Dropout(arch.dropout))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if arch.ops[-1] == "fc":
            layers.append(nn.Linear(channels, NUM_CLASSES))
        super().__init__(*layers)
        self.arch = str(arch)


def build(arch: str | Arch) -> Net:
    """Build the network an architecture string describes."""
    return Net(parse(arch) if isinstance(arch, str) else arch)
