"""BatchNorm2d for channels_last training on CPU, where torch's own kernel is slow for the zoo's
narrow layers.

torch's CPU kernel for NHWC batches walks C channels per pixel; with C = 8 or 12 that inner loop
is shorter than one AVX-512 vector, and with two threads it measured slower than with one. Here
the same memory is read as a (rows, k*C) matrix with rows of at least 128 values, so every
reduction and every elementwise pass runs over full vectors: per-column sums, folded by channel.
On the reference model (resnet_8k, batch 128, bf16, 2 threads) whole training steps measured
1.3-1.5x faster than with torch's kernel (`python -m benchmarks speed --ablate batchnorm`).

Same results as nn.BatchNorm2d up to rounding (tests/test_batchnorm.py checks forward, backward
and running statistics against it): the per-channel sums accumulate in fp32 (in torch's own
kernel, see _column_sums); the per-channel coefficients are applied in the activation's dtype,
whose rounding (bf16 under autocast) is no larger than that of the activations themselves.
Evaluation, other layouts, devices and dtypes, wide layers and momentum=None use torch's kernel.
"""

from __future__ import annotations

import torch
from torch import nn

# Wider layers fill a vector per pixel already; there torch's kernel measured faster.
MAX_CHANNELS = 16


def _rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """x (N, C, H, W, channels_last) as a (rows, k*C) view, and k: pixels per row."""
    n, c, h, w = x.shape
    m, k = n * h * w, 1
    while k * c < 128 and m % (2 * k) == 0:
        k *= 2
    return x.permute(0, 2, 3, 1).reshape(m // k, k * c), k


def _per_channel(column_sums: torch.Tensor, k: int) -> torch.Tensor:
    return column_sums.view(k, -1).sum(0)


def _wide(v: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """A per-channel vector repeated to span one row of k pixels."""
    return v.to(dtype).repeat(k)


def nhwc_as_nchw(flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """NHWC-ordered values (any shape with that many) as an (N, C, H, W) channels_last view."""
    n, c, h, w = shape
    return flat.view(n, h, w, c).permute(0, 3, 1, 2)


def _column_sums(dy: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor):
    """Per column of (rows, cols) views, in fp32: sum(dy) and sum(dy * (x - mean) * invstd).

    These are exactly the bias and weight gradients of torch's batch norm over a 2D batch, whose
    kernel accumulates bf16 in fp32 over contiguous rows: no fp32 copy of the batch (each copy
    cost a fresh 3 MB allocation per layer per step) and no bf16 rounding of the products.
    """
    _, sum_dy_xhat, sum_dy = torch.ops.aten.native_batch_norm_backward(
        dy, x, None, None, None, mean, invstd, True, 0.0, [False, True, True])
    return sum_dy, sum_dy_xhat


class _NHWCBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        xr, k = _rows(x)
        m = x.numel() // x.shape[1]
        zeros, ones = xr.new_zeros(xr.shape[1], dtype=torch.float32), xr.new_ones(
            xr.shape[1], dtype=torch.float32)
        s1, s2 = _column_sums(xr, xr, zeros, ones)  # dy = x, mean 0, invstd 1: sum x, sum x^2
        mean = _per_channel(s1, k) / m
        var = (_per_channel(s2, k) / m - mean * mean).clamp_(min=0)  # one pass, in fp32
        invstd = (var + eps).rsqrt()
        scale = weight.float() * invstd
        shift = bias.float() - mean * scale
        y = torch.addcmul(_wide(shift, k, x.dtype), xr, _wide(scale, k, x.dtype))
        ctx.save_for_backward(x, weight, mean, invstd)
        return nhwc_as_nchw(y, x.shape), mean, var * (m / max(m - 1, 1))

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        x, weight, mean, invstd = ctx.saved_tensors
        xr, k = _rows(x)
        dyr, _ = _rows(dy.contiguous(memory_format=torch.channels_last))
        m = x.numel() // x.shape[1]
        sum_dy, sum_dy_xhat = _column_sums(dyr, xr, mean.repeat(k), invstd.repeat(k))
        sum_dy, sum_dy_xhat = _per_channel(sum_dy, k), _per_channel(sum_dy_xhat, k)
        # dx = w*invstd * (dy - mean(dy) - xhat*mean(dy*xhat)) = a*dy + b*x + c, per channel;
        # sum_dy_xhat is the weight's gradient, sum_dy the bias's
        a = weight.float() * invstd
        b = -a * invstd * sum_dy_xhat / m
        c = -a * sum_dy / m - b * mean
        dt = x.dtype
        dx = torch.addcmul(_wide(c, k, dt), xr, _wide(b, k, dt)).addcmul_(dyr, _wide(a, k, dt))
        return (nhwc_as_nchw(dx, x.shape), sum_dy_xhat.to(weight.dtype),
                sum_dy.to(weight.dtype), None)


class ChannelsLastBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training step on CPU NHWC batches runs as _NHWCBatchNorm.
    fast_model puts it in the model's place of each nn.BatchNorm2d for training, over the same
    parameters and buffers (fast.fast_modules), and the nn.BatchNorm2d back afterwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.affine and self.track_running_stats
                and self.momentum is not None and x.device.type == "cpu" and x.dim() == 4
                and x.dtype in (torch.float32, torch.bfloat16) and not x.is_contiguous()
                and x.shape[1] <= MAX_CHANNELS
                and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x)
        y, mean, var = _NHWCBatchNorm.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():  # torch.compile traces mean/var in autocast's dtype: cast back
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(var.to(self.running_var.dtype), self.momentum)
            self.num_batches_tracked.add_(1)
        return y
