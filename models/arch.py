"""The one network builder every family compiles to: `build(arch)` turns an architecture
string (models/grammar.py) into a torch network, layer for layer."""

from __future__ import annotations

import torch
from torch import nn

from .grammar import FC_OPS, NUM_CLASSES, Arch, dropout_of, is_classifier, parse, split_op


def _cbr(cin: int, cout: int, k: int = 3, bias: bool = False, act_first: bool = False,
         **conv) -> list[nn.Module]:
    bn_relu = [nn.BatchNorm2d(cout), nn.ReLU()]
    return [nn.Conv2d(cin, cout, k, bias=bias, **conv), *(bn_relu[::-1] if act_first else bn_relu)]


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
    kind, n, flags = split_op(op)
    if classifier:  # the last conv before gap produces the 10 logits directly
        conv = {"c": dict(kernel_size=3, padding=1), "v": dict(kernel_size=3),
                "t": dict(kernel_size=1), "s": dict(kernel_size=3, stride=2, padding=1),
                "x": dict(kernel_size=3, padding=2, dilation=2)}[kind]
        return nn.Conv2d(cin, n, bias="n" not in flags, **conv)
    opt = {"bias": "b" in flags, "act_first": "a" in flags}
    layers = {
        "c": lambda: _cbr(cin, n, padding=1, **opt),
        "v": lambda: _cbr(cin, n, **opt),
        "t": lambda: _cbr(cin, n, 1, **opt),
        "s": lambda: _cbr(cin, n, stride=2, padding=1, **opt),
        "x": lambda: _cbr(cin, n, padding=2, dilation=2, **opt),
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
            elif op.startswith("do"):
                layers.append(nn.Dropout(dropout_of(op)))
            elif op[0] == "e":
                layers.append(SqueezeExcite(channels, int(op[1:])))
            else:
                classifier = is_classifier(arch, i)
                layers.append(_block(op, channels, classifier))
                channels = split_op(op)[1]
                if arch.dropout and not classifier:
                    layers.append(nn.Dropout(arch.dropout))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if arch.ops[-1] in FC_OPS:
            layers.append(nn.Linear(channels, NUM_CLASSES, bias=arch.ops[-1] == "fc"))
        super().__init__(*layers)
        self.arch = str(arch)


def build(arch: str | Arch) -> Net:
    """Build the network an architecture string describes."""
    return Net(parse(arch) if isinstance(arch, str) else arch)
