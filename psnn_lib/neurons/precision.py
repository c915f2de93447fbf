"""The one precision rule of every neuron of the library (PS, FS, IF).

A neuron computes in float64 whatever its input's dtype: snapping to the PS
grid, membranes, thresholds and accumulated outputs. Every float converts to
float64 exactly, so one input value gives the same spikes in every dtype.
Its output is that result rounded to float32 and then to the input's dtype
(float64 inputs keep the float64 result): rounded once for float32 inputs,
the float32 result rounded for float16 and bfloat16 ones.
"""
from __future__ import annotations

import torch


def to_output(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round a float64 result to the output of an input of ``dtype``."""
    return value if dtype == torch.float64 else value.to(torch.float32).to(dtype)


def tensor_bytes(tensors) -> int:
    """Bytes held by distinct tensors (views of one storage counted once)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())
