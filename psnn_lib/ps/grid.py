"""The sampling grid of a PS fit, and the one routine that snaps inputs to it.

A fit samples f on ``G`` uniform points of [l, r] (Algorithm 1, line 3); a
neuron's reset row h_i(t) and its output are those of the grid point its
input snaps to (the nearest one, as in the authors' code).
"""
from __future__ import annotations

import math
import threading
from typing import NamedTuple

import torch

MAX_GRID_POINTS = 2 ** 17
"""Most points of one grid. A neuron's fast-path table (a float32 output and
a spike count packed in 8 bytes per point, :class:`~psnn_lib.neurons.ps.PSNeuron`)
then takes at most 1 MiB; a wider interval gets a coarser step (``fit_ps`` warns)."""


PAPER_STEP = 1e-3
"""The grid step delta of Algorithm 1 (line 3) for inputs on the scale of the paper's activations."""
MIN_CELLS = 1000
"""Cells that :func:`site_step` gives an interval narrower than ``PAPER_STEP * MIN_CELLS`` = 1."""


def site_step(l: float, r: float) -> float:
    """The grid step of a converted site on [l, r]: the paper's 1e-3, or on an interval narrower
    than 1 the step of ``MIN_CELLS`` cells, so that a narrow site is resolved relative to its width
    as a unit-wide one is by the paper's step (its snapping term, L delta / 2, stays the same share
    of its output range, L (r - l)). Sites at least 1 wide keep the paper's step."""
    check_finite(l=l, r=r)
    if not r > l:
        raise ValueError(f"empty interval: need l < r, got [{l}, {r}]")
    return min(PAPER_STEP, (r - l) / MIN_CELLS)


def check_finite(**values: float) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")


def grid_points(l: float, r: float, step: float) -> int:
    """Points of the grid of [l, r] with spacing <= ``step``: both ends, so at
    least 2, and at most :data:`MAX_GRID_POINTS` (then the spacing exceeds ``step``)."""
    check_finite(l=l, r=r, step=step)
    check_finite(width=r - l)
    if l >= r:
        raise ValueError(f"empty interval: need l < r, got [{l}, {r}]")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    cells = (r - l) / step
    return MAX_GRID_POINTS if cells > MAX_GRID_POINTS - 1 else max(2, math.ceil(cells - 1e-9) + 1)


def make_grid(l: float, r: float, step: float) -> torch.Tensor:
    """Uniform float64 grid of [l, r] holding both ends (:func:`grid_points` points)."""
    return torch.linspace(l, r, grid_points(l, r, step), dtype=torch.float64)


class Snapped(NamedTuple):
    """Where inputs snap: padded table index and NaN mask."""

    index: torch.Tensor  # int32, flat
    nan: torch.Tensor  # bool, flat: True where the input is NaN


class _Scratch(threading.local):
    """Per-thread buffers that :func:`snap` reuses, grown to the largest input seen; apart for
    inference mode (a buffer made in it cannot be written outside it)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[torch.dtype, torch.device, bool], torch.Tensor] = {}

    def get(self, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (dtype, device, torch.is_inference_mode_enabled())
        if key not in self.buffers or self.buffers[key].numel() < n:
            self.buffers[key] = torch.empty(n, dtype=dtype, device=device)
        return self.buffers[key][:n]


_SCRATCH = _Scratch()


def release_scratch() -> None:
    """Free the buffers :func:`snap` keeps for reuse (12 bytes per input of the largest layer)."""
    _SCRATCH.buffers.clear()


def snap_affine(l: float, delta: float) -> tuple[float, float]:
    """(inv, c) of the snap position x * inv + c (:func:`snap`, and the compiled fast path's)."""
    inv = 1.0 / delta
    return inv, 1.5 - l * inv


def snap(x: torch.Tensor, l: float, delta: float, points: int, reuse: bool = False) -> Snapped:
    """Padded table index of each input: index = trunc(clamp(x * (1/delta) + (3/2 - l/delta), 0, points + 1)),
    in float64, the product and the sum each rounded (never a fused multiply-add), so that every
    CPU and instruction set snaps every input to the same point.

    Grid point j (0-based) has index j + 1; index 0 holds inputs below
    l - delta/2 and ``points + 1`` those above r + delta/2 (both saturate to
    the end values), so the inputs at the two end indices are the clipped ones. The
    index is computed in float64 whatever the dtype of ``x`` (every float
    converts to float64 exactly), so one input value snaps to the same grid
    point in every dtype. NaN inputs get index 1 (the caller masks them with
    ``nan``). No value is read back to the host: nothing waits for the device.
    With ``reuse``, the index lives in a per-thread buffer that the next
    ``snap(..., reuse=True)`` overwrites: no allocation, which is most of the
    cost of a large layer.
    """
    n = x.numel()
    if reuse:
        pos = _SCRATCH.get(n, torch.float64, x.device).copy_(x.detach().reshape(-1))
        index = _SCRATCH.get(n, torch.int32, x.device)
    else:
        pos = x.detach().reshape(-1).to(torch.float64, copy=True)
        index = torch.empty(n, dtype=torch.int32, device=x.device)
    inv, c = snap_affine(l, delta)
    # x * inv and + c as two operations, each rounded: a fused multiply-add (what add(alpha=)
    # becomes under AVX2) rounds once, and another CPU build would snap near-ties elsewhere
    pos.mul_(inv).add_(c)
    nan = torch.isnan(pos)
    pos.nan_to_num_(nan=1.5).clamp_(0, points + 1)  # +-inf become the largest finite values first
    return Snapped(index.copy_(pos), nan)
