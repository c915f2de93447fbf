"""Leaky ReLU with trainable clipping thresholds (paper 2, Sect. 4.1, Eq. 24).

The trainable clipping layer of TCL (Ho and Chang 2021) follows the
activation and learns where to clip it; paper 2 gives it a positive and a
negative threshold, theta_P > 0 > theta_N, both trained with the L2 term of
Eq. 24. :class:`ClippedLeakyReLU` is activation and clipping layer in one
module:

    y = min(max(LeakyReLU_alpha(x), theta_N), theta_P)

written as ``theta_P - relu(theta_P - relu_part) ...`` so that both
thresholds get gradients. The converter reads it as one activation
(``activation_spec()``) whose ``bounds`` are the inputs where it clips,
[theta_N / alpha, theta_P]: conversion then normalises each layer by the
learned thresholds, not by the largest activation seen.

``symmetric=True`` ties theta_N = -theta_P: with ``negative_slope=1`` that
is the symmetric-threshold ReLU (stReLU) the Table 1 baseline trains with,
and with a Leaky ReLU the clamp of LeakyReLU(x) / theta to [-1, 1] of the
two-stage baseline (Wang et al. 2025).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import ActivationSpec


def _check_thresholds(positive, negative) -> None:
    if negative is None or not (math.isfinite(positive) and math.isfinite(negative) and positive > 0 > negative):
        raise ValueError(f"a clipping layer needs finite thresholds theta_P > 0 > theta_N, got theta_P = "
                         f"{positive!r}, theta_N = {negative!r}")


def clipped_leaky_relu(x: torch.Tensor, negative_slope: float, low: float, high: float) -> torch.Tensor:
    """LeakyReLU clipped to [low, high] (the function a :class:`ClippedLeakyReLU` computes)."""
    return F.leaky_relu(x, negative_slope).clamp(low, high)


class ClippedLeakyReLU(nn.Module):
    """LeakyReLU followed by a trainable clipping layer (thresholds theta_P > 0 > theta_N)."""

    def __init__(self, negative_slope: float, positive: float, negative: Optional[float] = None,
                 symmetric: bool = False) -> None:
        super().__init__()
        if not 0 < negative_slope <= 1:
            raise ValueError(f"negative_slope must be in (0, 1], got {negative_slope!r}")
        negative = -positive if symmetric else negative
        _check_thresholds(positive, negative)
        self.negative_slope, self.symmetric = float(negative_slope), symmetric
        self.theta_p = nn.Parameter(torch.tensor(float(positive)))
        self.theta_n = None if symmetric else nn.Parameter(torch.tensor(float(negative)))

    def thresholds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta_P, theta_N) as tensors (theta_N = -theta_P when symmetric)."""
        return self.theta_p, -self.theta_p if self.theta_n is None else self.theta_n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = self.thresholds()
        y = F.leaky_relu(x, self.negative_slope)
        # clamp with gradients to both thresholds (TCL: up - relu(up - y)), both sides
        y = hi - F.relu(hi - y)
        return lo + F.relu(y - lo)

    def values(self) -> tuple[float, float]:
        """(theta_P, theta_N) as numbers (read from the parameter table: torch.fx
        replaces attribute access by proxies while it traces)."""
        hi = float(self._parameters["theta_p"].detach())
        return hi, -hi if self.symmetric else float(self._parameters["theta_n"].detach())

    def activation_spec(self) -> ActivationSpec:
        """What the converter sees: a LeakyReLU clipped to [theta_N, theta_P] (values frozen now;
        thresholds that training moved to the wrong side of zero are an error)."""
        hi, lo = self.values()
        _check_thresholds(hi, lo)
        a = self.negative_slope
        return ActivationSpec(
            f"clipped_leaky_relu:{a:g}:[{lo:.6g},{hi:.6g}]",
            partial(clipped_leaky_relu, negative_slope=a, low=lo, high=hi),
            f"LeakyReLU, alpha = {a:g}, clipped to [{lo:.4g}, {hi:.4g}]",
            negative_slope=a, bounds=(lo / a, hi))

    def extra_repr(self) -> str:
        hi, lo = self.values()
        return f"negative_slope={self.negative_slope:g}, theta_P={hi:.4g}, theta_N={lo:.4g}" + \
            (", symmetric" if self.symmetric else "")


def clipping_layers(model: nn.Module) -> Iterator[ClippedLeakyReLU]:
    """Every clipping layer of ``model``."""
    return (m for m in model.modules() if isinstance(m, ClippedLeakyReLU))


def threshold_l2(model: nn.Module) -> torch.Tensor:
    """Eq. 24: the sum over layers of theta_P^2 + theta_N^2."""
    terms = [sum(t.square() for t in m.thresholds()) for m in clipping_layers(model)]
    if not terms:
        raise ValueError(f"{type(model).__name__} has no ClippedLeakyReLU layer (add them with add_clipping)")
    return torch.stack(terms).sum()
