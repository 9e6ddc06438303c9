"""The zoo: parameterized GAP-CNN families and their named members.

A family is a function from a few widths to an architecture string (see models/arch.py), so
every member, override and search sample is named by the same canonical string. Members are
named `<family>_<size>`; the size is the parameter count rounded, checked by the tests.
"""

from __future__ import annotations

from .grammar import parse
from .registry import family, register


def _ops(*parts) -> str:
    return "-".join(p for p in parts if p)


def _head(fc: bool) -> str:
    return "gap-fc" if fc else "t10-gap"


@family
def plain(stem=(8, 16), trans=8, body=(12, 16, 16), fc=False, dropout=0.05) -> str:
    """The classic "S5/S6" MNIST layout: valid 3x3 convs, max-pool + 1x1 transition, GAP."""
    return _ops(*(f"v{w}" for w in stem), "p", f"t{trans}",
                *(f"v{w}" for w in body), _head(fc)) + f"|do{dropout:g}"


@family
def sepconv(stem=8, widths=(16, 24), trans=12, body=(24, 32), fc=True, dropout=0.05) -> str:
    """Depthwise-separable convs: far fewer weights per layer, so the maps can be wider."""
    return _ops(f"c{stem}", *(f"d{w}" for w in widths), "p", f"t{trans}",
                *(f"d{w}" for w in body), "p", _head(fc)) + f"|do{dropout:g}"


@family
def resnet(stem=8, widths=(8, 12, 16), fc=True, dropout=0.05) -> str:
    """Tiny residual net: a residual block per stage, max-pool between stages."""
    stages = []
    for i, w in enumerate(widths):
        stages += (["p"] if i else []) + [f"r{w}"]
    return _ops(f"c{stem}", *stages, _head(fc)) + f"|do{dropout:g}"


@family
def dilated(stem=8, widths=(12, 16, 16, 20), fc=True, dropout=0.05) -> str:
    """No max-pool: dilated convs grow the receptive field, strided convs shrink the map."""
    ops = [f"c{stem}"]
    for i, w in enumerate(widths):
        ops.append(f"s{w}" if i % 2 else f"x{w}")
    return _ops(*ops, _head(fc)) + f"|do{dropout:g}"


@family
def squeeze(stem=(8, 16), trans=8, body=(12, 16, 16), reduction=4, fc=False, dropout=0.05):
    """The plain layout with a squeeze-excite gate after each stage."""
    return _ops(*(f"v{w}" for w in stem), f"e{reduction}", "p", f"t{trans}",
                *(f"v{w}" for w in body), f"e{reduction}", _head(fc)) + f"|do{dropout:g}"


@family
def ghost(stem=8, widths=(16, 24), body=(24, 32), fc=True, dropout=0.05) -> str:
    """GhostNet modules: half of each layer's maps come from a cheap depthwise conv."""
    return _ops(f"c{stem}", *(f"g{w}" for w in widths), "p",
                *(f"g{w}" for w in body), "p", _head(fc)) + f"|do{dropout:g}"


@family
def staged(widths=(4, 8, 8), depths=(3, 3, 3), head="fc", dropout=0.01) -> str:
    """Stages of padded 3x3 convs at one width each, a max-pool and a dropout op between
    stages (none after the last), GAP, a linear head: the published 3,762-parameter layout
    (models/peers.toml) as a family. The convs have no bias (BatchNorm follows each)."""
    if len(widths) != len(depths):
        raise ValueError(f"staged: {len(widths)} widths for {len(depths)} stages")
    ops = []
    for i, (w, d) in enumerate(zip(widths, depths)):
        ops += [f"c{w}"] * d
        if i < len(widths) - 1:
            ops += ["p"] + ([f"do{dropout:g}"] if dropout else [])
    return _ops(*ops, "gap", head) + "|do0"


@family
def handmade(arch: str = "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05") -> str:
    """A network designed by hand elsewhere, given directly as its architecture string: the
    published peers (models/peers.toml), layer for layer."""
    return str(parse(arch))


# Named members. Sizes in the names are parameter counts, rounded; tests check them.
@register
def plain_4k():
    return dict(family="plain", stem=(8, 8), trans=8, body=(8, 12, 12), dropout=0.0)


@register
def plain_7k():
    return dict(family="plain")


@register
def plain_11k():
    return dict(family="plain", stem=(10, 16), trans=12, body=(16, 20, 24))


@register
def plain_16k():
    return dict(family="plain", stem=(12, 20), trans=12, body=(20, 24, 28))


@register
def plain_19k():
    return dict(family="plain", stem=(12, 20), trans=16, body=(20, 28, 32))


@register
def sepconv_3k():
    return dict(family="sepconv")


@register
def sepconv_9k():
    return dict(family="sepconv", stem=12, widths=(24, 40), trans=24, body=(48, 64))


@register
def resnet_5k():
    return dict(family="resnet", widths=(8, 8, 12))


@register
def resnet_8k():
    return dict(family="resnet")


@register
def resnet_17k():
    return dict(family="resnet", stem=12, widths=(12, 16, 24))


@register
def dilated_8k():
    return dict(family="dilated")


@register
def dilated_16k():
    return dict(family="dilated", stem=12, widths=(16, 20, 24, 28))


@register
def squeeze_7k():
    return dict(family="squeeze")


@register
def squeeze_12k():
    return dict(family="squeeze", stem=(10, 16), trans=12, body=(16, 20, 24))


@register
def ghost_5k():
    return dict(family="ghost", widths=(12, 16), body=(16, 24))


@register
def ghost_9k():
    return dict(family="ghost")


@register
def ghost_13k():
    return dict(family="ghost", stem=12, widths=(16, 24), body=(32, 40))
