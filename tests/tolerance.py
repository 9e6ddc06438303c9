"""Float tolerances derived from the dtype and the operation, never from what a machine printed.

Kernels differ between CPUs (AVX2, AVX-512, AMX) in blocking and summation order, so a test may
only ask for what rounding allows: `unit(dtype)` is the relative spacing of floats near 1, and a
sum of n terms in any order is off by at most about sqrt(n) units when errors are random (n units
in the worst case, which blocked kernels with fp32 accumulators do not reach).
"""

from __future__ import annotations

import math

import torch


def unit(dtype: torch.dtype) -> float:
    """The unit roundoff's bound: 2^-23 for fp32, 2^-7 for bf16 (torch.finfo's eps)."""
    return torch.finfo(dtype).eps


def sum_tol(n: int, dtype: torch.dtype = torch.float32, k: float = 8.0) -> float:
    """Relative error allowed between two orders of summing n terms accumulated in `dtype`:
    k units per sqrt(n) terms (k covers the few extra roundings around the sum)."""
    return k * unit(dtype) * math.sqrt(max(n, 1))


def rounded_tol(dtype: torch.dtype, roundings: int = 2) -> float:
    """Relative error between two results that each went through `roundings` roundings to
    `dtype` (say an input product and an output): each one moves a value by at most one unit."""
    return 2 * roundings * unit(dtype)
