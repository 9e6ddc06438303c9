"""Which device a run trains on, and how a row names it: the CPU model or GPU and, given the
run's fast path, the precision it trained in."""

from __future__ import annotations

import functools
import os
import platform

import torch

from .fast import Fast


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from errors import UserError

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"invalid option: device must be auto, cpu, cuda, cuda:N or mps "
                        f"(got {name!r})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"invalid option: device {name!r} asked for, but CUDA is not available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"invalid option: device {name!r} asked for, but this machine has "
                        f"{torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"invalid option: device {name!r} asked for, but MPS is not available")
    return device


def device_name(device: torch.device, fast: Fast | None = None) -> str:
    """The device and, given a run's fast path, the precision it trained in: "auto" means
    bf16 on one CPU kind and fp32 on another (fast.native_bf16), so a row says which it got."""
    precision = "" if fast is None else (", bf16 autocast" if fast.amp else ", fp32")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device) + precision
    model = cpu_model()
    return (f"{model + ', ' if model else ''}{platform.machine()} cpu{kernels()}{precision}, "
            f"{torch.get_num_threads()} threads")


# Environment variables that hold torch's CPU kernels below what the CPU has. Held to AVX2, an
# AVX-512 machine computes through the same kernels as an AVX2-only CPU (the AMD kind without
# AVX-512), so its runs are a different device for a certificate and their rows must say so.
KERNEL_CAPS = {"ATEN_CPU_CAPABILITY": "ATen", "ONEDNN_MAX_CPU_ISA": "oneDNN",
               "DNNL_MAX_CPU_ISA": "oneDNN"}


def kernels() -> str:
    """', kernels ATen AVX2, oneDNN AVX2' where the environment holds the kernels down, else ''."""

    held = {library: torch.backends.cpu.get_cpu_capability() if var == "ATEN_CPU_CAPABILITY"
            else os.environ[var].upper()
            for var, library in KERNEL_CAPS.items() if os.environ.get(var)}
    return ", kernels " + ", ".join(f"{k} {v}" for k, v in held.items()) if held else ""


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; else what platform knows), or ''."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() if platform.processor() != platform.machine() else ""
