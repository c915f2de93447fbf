"""The sampling grid of a PS fit, and the one routine that snaps inputs to it.

A fit samples f on ``G`` uniform points of [l, r] (Algorithm 1, line 3); a
neuron's reset row h_i(t) and its output are those of the grid point its
input snaps to (the nearest one, as in the authors' code).
"""
from __future__ import annotations

import math
from typing import Optional

import torch


def check_finite(**values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")


def make_grid(l: float, r: float, step: float) -> torch.Tensor:
    """Uniform float64 grid of [l, r] holding both ends, spacing <= ``step``."""
    check_finite(l=l, r=r, step=step)
    if l >= r:
        raise ValueError(f"empty interval: need l < r, got [{l}, {r}]")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    if (r - l) / step > 5e8:
        raise ValueError(f"grid of [{l}, {r}] with step {step} is too large (> 5e8 points)")
    return torch.linspace(l, r, int(math.ceil((r - l) / step - 1e-9)) + 1, dtype=torch.float64)


def snap(x: torch.Tensor, l: float, delta: float, points: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Padded table index of each input (int32, flat) and the NaN mask (None without NaN).

    Grid point j (0-based) has index j + 1; index 0 holds inputs below
    l - delta/2 and ``points + 1`` those above r + delta/2 (both saturate to
    the end values), so a histogram of the indices counts clipped inputs for
    free. Computed in the input's precision:
    index = trunc(clamp((x - l) / delta + 3/2, 0, points + 1)).
    """
    inv = 1.0 / delta
    shift = torch.tensor(1.5 - l * inv, dtype=x.dtype, device=x.device)
    pos = torch.add(shift, x.reshape(-1), alpha=inv)
    nan = None
    if pos.numel():
        lo, hi = torch.aminmax(pos)  # one pass; NaN propagates
        if torch.isnan(lo) or torch.isnan(hi):
            nan = torch.isnan(pos)
            pos.masked_fill_(nan, 1.5)
    return pos.clamp_(0, points + 1).to(torch.int32), nan
