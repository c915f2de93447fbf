"""Vectorised inverse f^-1 on the rising branch of a sampled function.

Theorem 3 and Eq. 14 of paper 1 set the reset voltage to
h = f^-1(f(x) - sum z d). For a non-monotonic f (GELU, SiLU, Mish, Hardswish)
f^-1 is multivalued; the authors call a root-finder per point. Here the
inverse is taken on one monotone branch of the *sampled* curve: from the
global minimum to the global maximum, the running maximum of the samples is
non-decreasing, and f^-1(q) is the first crossing of level q, found for all
queries at once by binary search (``torch.searchsorted``) and refined by
linear interpolation. The result is strictly increasing in q, which is what
makes a single threshold per time step (Eq. 20) exact.
"""
from __future__ import annotations

import torch


class BranchInverse:
    """f^-1 on the branch of samples ``(u, y)`` from argmin(y) to argmax(y).

    ``u`` must be uniformly spaced and increasing; ``y`` is shifted so that
    ``min(y) == 0``. Queries must lie in ``[0, max(y)]``.
    """

    def __init__(self, u: torch.Tensor, y: torch.Tensor) -> None:
        i0 = int(torch.argmin(y))
        i1 = i0 + int(torch.argmax(y[i0:]))
        self.u0 = float(u[i0])
        self.du = float(u[1] - u[0]) if u.numel() > 1 else 0.0
        self.env = torch.cummax(y[i0 : i1 + 1], dim=0).values.contiguous()

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        last = self.env.numel() - 1
        if last == 0:
            return torch.full_like(q, self.u0)
        # first k with env[k] >= q, so env[k-1] < q <= env[k] (a rising segment)
        k = torch.searchsorted(self.env, q, side="left").clamp_(1, last)
        e0 = self.env[k - 1]
        frac = (q - e0).div_(self.env[k] - e0).nan_to_num_(0.0).clamp_(0.0, 1.0)
        return (k - 1).to(q.dtype).add_(frac).mul_(self.du).add_(self.u0)
