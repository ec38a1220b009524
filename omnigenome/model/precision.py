"""The number format of inference: bf16 autocast where the hardware computes it natively, fp32 elsewhere.

Parameters stay fp32; under autocast the matrix products run in bf16 and the numerically delicate parts stay
fp32 (LayerNorm, softmax and the loss are on torch's fp32 list, and this project's heads cast their logits to
fp32 before any softmax or loss). See docs/performance.md for the measured speed and error.
"""
from __future__ import annotations

import contextlib

import torch

from omnigenome.utils import cpu_bf16_units

DTYPES = ("auto", "fp32", "bf16")


def use_bf16(device: str | torch.device, dtype: str = "auto") -> bool:
    """Whether inference on `device` runs in bf16: dtype "bf16" always, "fp32" never, "auto" where the device has
    native bf16 matrix support (a CUDA GPU that supports bf16; a CPU with AMX, AVX512-BF16 or Arm BF16)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype == "bf16"
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_bf16_units() is not None


def autocast(device: str | torch.device, dtype: str = "auto"):
    """A context in which the model's forward runs in the number format `use_bf16` chooses."""
    device = torch.device(device)
    if not use_bf16(device, dtype):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
