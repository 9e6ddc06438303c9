"""Canonical architecture strings: the grammar every family writes and models/arch.py builds.

An architecture is a '-'-separated list of ops, then '|do{p}' for the dropout after each block:

    v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05

    c{N}  3x3 conv, padding 1        v{N}  3x3 conv, no padding (shrinks the map by 2)
    t{N}  1x1 conv (transition)      s{N}  3x3 conv, stride 2
    x{N}  3x3 conv, dilation 2       d{N}  depthwise-separable 3x3 conv (dw 3x3 + pw 1x1)
    r{N}  residual block (two 3x3)   g{N}  ghost module (3x3 conv to N/2, cheap dw 3x3 to N/2)
    e{R}  squeeze-excite, reduction R p     2x2 max-pool
    gap   global average pooling     fc    linear C->10 after gap (else the last conv gives 10)
    do{P} dropout P right here, for networks that drop only after chosen blocks; only with
          '|do0' (per-block dropout off), never two in a row, 0.0001 <= P < 1

Every conv op is conv -> BatchNorm -> ReLU -> Dropout, except the classifier: without `fc`,
the last op before `gap` is a one-conv op (c v t s x) with 10 channels, built as one bare conv
with a bias whose 10 maps are the logits: `c10` a padded 3x3, `v10` an unpadded 3x3, `t10` a
1x1, `s10` a stride-2 3x3, `x10` a dilated 3x3. A multi-conv op (d r g) cannot be a bare conv,
so it is refused there. Each string builds one network and no other string builds it
(tests/test_models.py draws strings to check): so the string may not spell the same network
twice, e.g. dropout ops after every block are written '|do{P}', not as ops. Two exceptions,
kept because committed studies hold both spellings: a squeeze-excite gate keeps at least two
hidden channels, so `e4` and `e8` on 8 channels build the same gate; and `t10-gap` computes
the function of `gap-fc` (a 1x1 conv commutes with averaging), with other parameter shapes.

Flags after the width of a one-conv op (c v t s x), in this order, each only where it changes
something (so every model has one string), as hand-designed peers (models/peers.toml) need:

    a     activation first: conv -> ReLU -> BatchNorm; on a last 10-channel conv before `gap`
          it makes that conv a full block (its BatchNorm gives the logits), not a bare classifier
    b     the conv has a bias (a conv followed by BatchNorm has none by default)
    n     no bias: only on the bare classifier conv (`t10n`) or on `fc` (`fcn`, i.e. a bias-free
          1x1 conv after gap)

    e.g.  c8b-c10b-p-c12b-p-c16b-c16b-t10-gap|do0    v10ab-v20ab-p-t10a-v20ab-t10a-gap|do0
Like NAS-Bench-201's cell strings, the string is the model's name everywhere (leaderboard key,
de-duplication key); `str(parse(s)) == s` for every canonical `s`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

INPUT_SIZE = 28  # MNIST images are 28x28, one channel
NUM_CLASSES = 10
CONV_OPS = "cvtsxdrg"  # ops that take a width
_TOKEN = re.compile(r"^(?:([cvtsxdrge])(\d+)(a?)(b?)(n?)|(p|gap|fcn|fc)|do(\d*\.?\d+))$")
FLAG_OPS = "cvtsx"  # one-conv ops, the only ones that take flags (a, b, n)
FC_OPS = ("fc", "fcn")


def split_op(op: str) -> tuple[str, int, str]:
    """'c8b' -> ('c', 8, 'b'); 'p' -> ('p', 0, ''); 'fcn' -> ('fcn', 0, ''); a dropout op
    'do0.1' -> ('do', 0, '')."""
    m = re.match(r"^([cvtsxdrge])(\d+)([abn]*)$", op)
    if m:
        return m[1], int(m[2]), m[3]
    return ("do", 0, "") if op.startswith("do") else (op, 0, "")


def dropout_of(op: str) -> float:
    """The probability of a dropout op ('do0.1' -> 0.1)."""
    return float(op[2:])


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
        if m[7] is not None:
            ops.append(f"do{float(m[7]):g}")
        else:
            ops.append(m[6] or f"{m[1]}{int(m[2])}{m[3]}{m[4]}{m[5]}")
    arch = Arch(tuple(ops), dropout)
    _check(arch, text)
    return arch


def _check(arch: Arch, text: str) -> None:
    """Shape-check the op list without building it (fast enough for the search's sampler)."""
    ops = arch.ops
    n_fc = sum(op in FC_OPS for op in ops)
    if ops.count("gap") != 1 or ops[-1] not in ("gap", *FC_OPS) or n_fc > (ops[-1] != "gap"):
        raise ArchError(f"{text!r}: must end with 'gap' or 'gap-fc', with one 'gap'")
    if ops[-1] in FC_OPS and ops[-2] != "gap":
        raise ArchError(f"{text!r}: 'fc' must directly follow 'gap'")
    size, channels = INPUT_SIZE, 1
    body = ops[: ops.index("gap")]
    if not body or n_fc > (ops[-1] != "gap") or any(op in FC_OPS for op in body):
        raise ArchError(f"{text!r}: ops must come before 'gap', and 'fc' only after it")
    if ops[-1] == "gap" and split_op(body[-1])[0] not in CONV_OPS:
        raise ArchError(f"{text!r}: without 'fc' a conv must come right before 'gap'")
    _check_dropout_ops(arch, body, text)
    for i, op in enumerate(body):
        kind, n, flags = split_op(op)
        classifier = is_classifier(arch, i)
        if classifier and kind not in FLAG_OPS:
            raise ArchError(f"{text!r}: {op}: the classifier before 'gap' is one bare conv, "
                            f"one of {', '.join(FLAG_OPS)} (or 'gap-fc', or flag 'a')")
        if flags and kind not in FLAG_OPS:
            raise ArchError(f"{text!r}: {op}: only one-conv ops ({FLAG_OPS}) take flags")
        if "n" in flags and not classifier:
            raise ArchError(f"{text!r}: {op}: 'n' (no bias) is only for the classifier conv")
        if "b" in flags and classifier:
            raise ArchError(f"{text!r}: {op}: the classifier conv has a bias already")
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


def is_classifier(arch: Arch, i: int) -> bool:
    """Whether op `i` is the bare classifier conv: the last before `gap`, no `fc`, no flag a."""
    body = arch.ops[: arch.ops.index("gap")]
    return i == len(body) - 1 and arch.ops[-1] == "gap" and "a" not in split_op(body[i])[2]


def _check_dropout_ops(arch: Arch, body: tuple[str, ...], text: str) -> None:
    """Dropout ops: each a real dropout, only one way to write any network with them."""
    drops = [i for i, op in enumerate(body) if op.startswith("do")]
    if not drops:
        return
    if arch.dropout:
        raise ArchError(f"{text!r}: dropout ops need '|do0' (per-block dropout off)")
    for i in drops:
        if not 1e-4 <= dropout_of(body[i]) < 1.0:  # smaller ones print with an exponent
            raise ArchError(f"{text!r}: {body[i]}: a dropout op needs 0.0001 <= p < 1")
        if i == 0 or body[i - 1].startswith("do"):
            raise ArchError(f"{text!r}: {body[i]}: a dropout op must follow another op, "
                            "never a dropout op")
    blocks = [i for i, op in enumerate(body)
              if split_op(op)[0] in CONV_OPS and not is_classifier(arch, i)]
    if [i - 1 for i in drops] == blocks and len({body[i] for i in drops}) == 1:
        raise ArchError(f"{text!r}: dropout after every block is written "
                        f"'|{body[drops[0]]}', not as ops")
