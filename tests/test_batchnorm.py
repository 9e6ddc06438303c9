"""benchmarks/harness/batchnorm.py against its oracle, torch's nn.BatchNorm2d: forward, backward
and running statistics, for the layer shapes of the zoo and odd ones."""

from __future__ import annotations

import pytest
import torch
from tolerance import rounded_tol, sum_tol
from torch import nn

from benchmarks.harness import batchnorm
from benchmarks.harness.batchnorm import ChannelsLastBatchNorm2d

NHWC = torch.channels_last
SHAPES = [(128, 8, 28, 28), (128, 12, 14, 14), (128, 16, 7, 7), (5, 3, 7, 3), (2, 2, 1, 3)]


def pair(c: int, seed: int = 0):
    torch.manual_seed(seed)
    ours, oracle = ChannelsLastBatchNorm2d(c), nn.BatchNorm2d(c)
    with torch.no_grad():
        oracle.weight.uniform_(0.5, 1.5)
        oracle.bias.uniform_(-1, 1)
    ours.load_state_dict(oracle.state_dict())
    return ours, oracle


def run(bn: nn.Module, x: torch.Tensor, dy: torch.Tensor):
    x = x.detach().clone().requires_grad_()
    y = bn(x)
    y.backward(dy)
    return y, x.grad


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_torch_batchnorm(shape, dtype):
    ours, oracle = pair(shape[1])
    # an offset mean, as after a ReLU: the case where one-pass variance could cancel
    x = (torch.randn(shape) * 2 + 3).to(dtype).contiguous(memory_format=NHWC)
    dy = torch.randn(shape).to(dtype).contiguous(memory_format=NHWC)
    for _ in range(2):  # two steps: running statistics move twice
        y, dx = run(ours, x, dy)
        y_ref, dx_ref = run(oracle, x, dy)
    assert type(y.grad_fn).__name__ == "_NHWCBatchNormBackward"  # not torch's kernel
    assert y.dtype == dtype and y.is_contiguous(memory_format=NHWC)
    m = shape[0] * shape[2] * shape[3]  # values per channel that each statistic sums
    # fp32: two summation orders of m terms; bf16: input and output each rounded to bf16
    # in both kernels, on top of that (the fp32 sums' error is far below bf16's unit).
    stat_tol = sum_tol(m)
    tol = stat_tol if dtype == torch.float32 else rounded_tol(dtype, 2) + stat_tol

    def close(a, b, tol=tol):
        scale = b.float().abs().max().clamp(min=1)
        assert ((a.float() - b.float()).abs().max() / scale).item() < tol

    close(y, y_ref)
    close(dx, dx_ref)
    # The per-channel sums accumulate exact products in fp32, in bf16 too: statistics and
    # parameter gradients stay as close as fp32's (rounding each product to bf16 gave 3e-3).
    for name in ("weight", "bias"):
        close(getattr(ours, name).grad, getattr(oracle, name).grad, stat_tol)
    for name in ("running_mean", "running_var"):
        close(getattr(ours, name), getattr(oracle, name), stat_tol)
    assert ours.num_batches_tracked.item() == oracle.num_batches_tracked.item() == 2


@pytest.mark.parametrize("case", ["eval", "nchw", "wide", "cumulative"])
def test_other_cases_use_torch_kernel(case):
    c = batchnorm.MAX_CHANNELS * 2 if case == "wide" else 8
    ours, _ = pair(c)
    x = torch.randn(4, c, 6, 6).contiguous(memory_format=torch.contiguous_format
                                           if case == "nchw" else NHWC).requires_grad_()
    if case == "eval":
        ours.eval()
    if case == "cumulative":
        ours.momentum = None
    y = ours(x)
    assert "_NHWCBatchNorm" not in type(y.grad_fn).__name__
