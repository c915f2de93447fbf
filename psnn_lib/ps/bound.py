"""An a-priori bound on |PS(x) - f(x)| for x in [l, r] (paper 1, Eqs. 3, 17-19).

It uses only the fit's settings and f, never the fitted outputs:

    |PS(x) - f(x)| <= |PS(x_j) - f(x_j)| + |f(x_j) - f(x)| <= d(K) + V,

where x_j is the grid point x snaps to, |x - x_j| <= delta / 2.

- Quantisation, d(K): with d(t) = 2^(s+K-t) (Theorem 2) and 2^(s+K) >= M
  (Eq. 18), the remainder f(x_j) - b - sum d z after step t lies in
  [0, d(t)]. So the error on the grid is at most the smallest spike
  weight: 2^s <= dy (Eq. 17) as printed, 2^(s+1) with the authors' first
  weight.
- Snapping, V: the largest change of f within half a cell of a grid point.
  With a known Lipschitz constant L of f on [l, r] (the activation table's,
  or ``fit_ps(..., lipschitz=L)``), V = L delta / 2. Without one,
  V = max_j max |f(x_j +- delta/2) - f(x_j)|. That is exact only if f is
  monotone on each half cell [x_j - delta/2, x_j] and [x_j, x_j + delta/2];
  a feature narrower than a cell (a bump between two grid points) breaks it,
  and the bound then fails (``tests/test_ps_bound.py`` shows both cases).

The quantisation term holds for the fit's spike rule (a weight fires when the
remainder exceeds it, or reaches it with ``strict=False``). The fit decides on
the membrane scale, f^-1(Delta y) > f^-1(d(t)), which resolves x only to a few
ulps: a remainder within L * 4 ulp(max(|l|, |r|)) of a weight can go either
way, so the quantisation term is d(K) plus that resolution (negligible unless
dy nears float64's resolution of f: 4e-15 for GELU on [-10, 10]). Without L the
resolution uses the steepest slope between samples. The bound is for
outputs in float64; a float32 neuron adds the rounding of its output, half
a float32 ulp of |f| (``psnn_lib.neurons.precision``).
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple, Optional

import torch


class ErrorBound(NamedTuple):
    """``value`` = ``quantisation`` (d(K) and the membrane scale's resolution) + ``snapping``,
    valid when ``condition`` holds."""

    value: float
    quantisation: float
    snapping: float
    condition: str


def check_lipschitz(lipschitz: Optional[float]) -> Optional[float]:
    """``lipschitz`` as a float (any real number type), or None; an error unless finite and >= 0."""
    if lipschitz is None:
        return None
    if isinstance(lipschitz, bool) or not isinstance(lipschitz, numbers.Real) or not math.isfinite(lipschitz) \
            or lipschitz < 0:
        raise ValueError(f"lipschitz must be a finite number >= 0, got {lipschitz!r}")
    return float(lipschitz)


def error_bound(fn: Callable[[torch.Tensor], torch.Tensor], grid: torch.Tensor, values: torch.Tensor,
                smallest_weight: float, lipschitz: Optional[float] = None) -> ErrorBound:
    """The bound for a fit on ``grid`` (uniform, float64) with f(grid) = ``values`` (float64) whose
    smallest spike weight is d(K); ``fn`` is evaluated only without a Lipschitz constant."""
    delta = float(grid[1] - grid[0]) if grid.numel() > 1 else 0.0
    lipschitz = check_lipschitz(lipschitz)
    if lipschitz is not None:
        slope = lipschitz
        snapping = lipschitz * delta / 2
        condition = f"f is {lipschitz:g}-Lipschitz on [l, r]"
    else:
        half = delta / 2
        with torch.no_grad():
            left = torch.as_tensor(fn(grid[1:] - half), dtype=torch.float64)
            right = torch.as_tensor(fn(grid[:-1] + half), dtype=torch.float64)
        change = torch.cat([(left - values[1:]).abs(), (right - values[:-1]).abs()])
        snapping = float(change.max()) if change.numel() else 0.0
        slope = float((values.diff().abs() / delta).max()) if delta > 0 else 0.0
        condition = "f is monotone on each half cell of the grid (no Lipschitz constant given)"
    resolution = slope * 4 * math.ulp(max(abs(float(grid[0])), abs(float(grid[-1]))))
    quantisation = smallest_weight + resolution
    return ErrorBound(quantisation + snapping, quantisation, snapping, condition)
