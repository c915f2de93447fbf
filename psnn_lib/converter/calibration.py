"""Calibration observers: the input range of every activation site.

A converted neuron covers an interval [l, r] of its input (PS and FS
neurons saturate outside it; rate-coded IF neurons use r as threshold).
An :class:`Observer` sits where the activation will go, computes the
activation unchanged and records its *input*: exact min and max, and a
uniform random sample of bounded size for percentiles (a batch larger than
the sample is subsampled with replacement: drawing k indices costs O(k),
a permutation of a whole batch of feature maps O(n)). ``interval`` turns
that record into [l, r] by ``"minmax"`` or by a percentile (e.g. 99.9: the
0.1 % and 99.9 % quantiles, as SpikingJelly's "99.9%" mode).
"""
from __future__ import annotations

import math
from typing import Union

import torch
from torch import nn

from ..activations import Activation

SAMPLE_SIZE = 200_000
# a min-max interval wider than this many times the range of the central 98 %
# of the inputs is set by a few outliers (the converter warns and notes it)
OUTLIER_RATIO = 10.0


class Observer(nn.Module):
    """Computes ``fn(x)`` and records x (min, max, count, a bounded sample).

    NaN and infinite inputs are not recorded; ``nonfinite`` counts them.
    ``integer`` says the site saw integer inputs (an index clamped at 0, not
    an activation: the converter leaves it as it was).
    """

    def __init__(self, fn: Activation, sample_size: int = SAMPLE_SIZE, seed: int = 0) -> None:
        super().__init__()
        self.fn = fn
        self.sample_size = sample_size
        self.count = 0
        self.nonfinite = 0
        self.integer = False
        self.lo, self.hi = math.inf, -math.inf
        self.sample = torch.empty(0)
        self._gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            self.integer = True
            return self.fn(x)
        with torch.no_grad():
            flat = x.detach().reshape(-1).float().cpu()
            finite = torch.isfinite(flat)
            if not finite.all():
                self.nonfinite += int(flat.numel() - finite.sum())
                flat = flat[finite]
            if flat.numel():
                lo, hi = torch.aminmax(flat)
                self.lo, self.hi = min(self.lo, float(lo)), max(self.hi, float(hi))
                self._add_to_sample(flat)
        return self.fn(x)

    def _add_to_sample(self, flat: torch.Tensor) -> None:
        """Keep a uniform sample of everything seen (weighted merge of two
        uniform samples: each kept value stands for count / size inputs)."""
        n_new = flat.numel()
        self.count += n_new
        k = self.sample_size
        if n_new > k:
            flat = flat[torch.randint(n_new, (k,), generator=self._gen)]
        if self.sample.numel() + flat.numel() <= k:
            self.sample = torch.cat([self.sample, flat])
            return
        take_new = round(k * n_new / self.count)
        keep_old = k - take_new
        old = self.sample[torch.randperm(self.sample.numel(), generator=self._gen)[:keep_old]]
        new = flat[torch.randperm(flat.numel(), generator=self._gen)[:take_new]]
        self.sample = torch.cat([old, new])

    def interval(self, how: Union[str, float]) -> tuple[float, float]:
        """[l, r] from ``"minmax"`` or a percentile p in (50, 100]."""
        if self.count == 0:
            raise RuntimeError(
                "this site saw no finite calibration input; check the calibration data "
                f"({self.nonfinite} NaN or infinite values seen)" if self.nonfinite else
                "this site saw no calibration input: it is never reached by the forward pass"
            )
        how = check_how(how)
        if how == "minmax":
            return self.lo, self.hi
        p = how
        q = torch.quantile(self.sample.double(), torch.tensor([1 - p / 100, p / 100], dtype=torch.float64))
        return float(q[0]), float(q[1])

    def outlier_ratio(self) -> tuple[float, tuple[float, float]]:
        """Width of the min-max interval over that of the 1 %-99 % quantiles (and those quantiles)."""
        a, b = self.interval(99)
        wide = self.hi - self.lo
        return (wide / (b - a) if b > a else (math.inf if wide > 0 else 1.0)), (a, b)

    def clipped_fraction(self, l: float, r: float) -> float:
        """Fraction of calibration inputs outside [l, r] (estimated on the sample)."""
        if not self.sample.numel():
            return 0.0
        return float(((self.sample < l) | (self.sample > r)).double().mean())


def check_how(how: Union[str, float]) -> Union[str, float]:
    """Validate an observer mode early (before any calibration pass)."""
    if how == "minmax":
        return how
    try:
        p = float(how.rstrip("%")) if isinstance(how, str) else float(how)
    except ValueError:
        raise ValueError(f"calibrate with 'minmax' or a percentile such as 99.9, not {how!r}") from None
    if not 50 < p <= 100:
        raise ValueError(f"percentile must be in (50, 100], got {how!r}")
    return p
