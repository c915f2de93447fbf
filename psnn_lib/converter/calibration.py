"""Calibration observers: the input range of every activation site.

A converted neuron covers an interval [l, r] of its input (PS and FS
neurons saturate outside it; rate-coded IF neurons use r as threshold).
An :class:`Observer` sits where the activation will go, computes the
activation unchanged and records its *input*: exact min and max, and a
uniform random sample of bounded size for percentiles (a batch larger than
the sample is subsampled with replacement: drawing k indices costs O(k),
a permutation of a whole batch of feature maps O(n)). ``interval`` turns
that record into [l, r] by ``"minmax"`` or by a percentile (e.g. 99.9: the
0.1 % and 99.9 % quantiles, as SpikingJelly's "99.9%" mode). It also keeps
each channel's min and max (dimension 1 of the input: a convolution's
channels, a linear layer's features), which channel-wise thresholds read
(:meth:`Observer.channel_interval`).
"""
from __future__ import annotations

import math
from typing import Optional, Union

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
    an activation: the converter leaves it as it was). ``channel_lo`` and
    ``channel_hi`` hold each channel's min and max (None until an input of at
    least two dimensions is seen), ``sample_channel`` the channel of each
    sampled input (None once the inputs' channel dimension varies).
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
        self.sample_channel: Optional[torch.Tensor] = None  # the channel of each sampled input
        self.channel_lo: Optional[torch.Tensor] = None
        self.channel_hi: Optional[torch.Tensor] = None
        self.ndim: Optional[int] = None  # of the inputs (a varying one is a channel problem)
        self._channel_problem: Optional[str] = None
        self._gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            self.integer = True
            return self.fn(x)
        with torch.no_grad():
            x = x.detach()
            flat = x.reshape(-1).float()  # on x's device: only the sample comes to the host
            finite = torch.isfinite(flat)
            kept = None  # positions of the finite inputs in x, when some are not
            if not finite.all():
                self.nonfinite += int(flat.numel() - finite.sum())
                kept = finite.nonzero().squeeze(1)
                flat = flat[kept]
            channels = self._add_channels(x, kept is None)
            if flat.numel():
                lo, hi = torch.aminmax(flat)
                self.lo, self.hi = min(self.lo, float(lo)), max(self.hi, float(hi))
                self._add_to_sample(flat, kept, channels)
        return self.fn(x)

    def _add_channels(self, x: torch.Tensor, all_finite: bool) -> Optional[tuple[int, int]]:
        """Fold x's per-channel min and max (finite values only) into the record; returns
        (channels, inputs per channel and sample) to locate a flat input's channel, or None
        where the inputs have no fixed channel dimension."""
        if self.ndim is not None and x.dim() != self.ndim:
            self._channel_problem = f"its inputs have {self.ndim} and {x.dim()} dimensions"
        self.ndim = x.dim()
        if x.dim() < 2 or x.shape[1] == 0:
            self._channel_problem = f"an input of shape {tuple(x.shape)} has no channel dimension"
        c = x.shape[1] if x.dim() >= 2 else 0
        if self.channel_lo is not None and self.channel_lo.numel() != c:
            self._channel_problem = f"its inputs have {self.channel_lo.numel()} and {c} channels on dimension 1"
        if self._channel_problem is not None or x.numel() == 0:
            return None
        dims = [d for d in range(x.dim()) if d != 1]
        if all_finite:  # reductions only, no copy of x
            lo, hi = x.amin(dim=dims).float().cpu(), x.amax(dim=dims).float().cpu()
        else:
            finite = torch.isfinite(x)
            lo = torch.where(finite, x, math.inf).amin(dim=dims).float().cpu()
            hi = torch.where(finite, x, -math.inf).amax(dim=dims).float().cpu()
        if self.channel_lo is None:
            self.channel_lo, self.channel_hi = lo, hi
        else:
            self.channel_lo, self.channel_hi = torch.minimum(self.channel_lo, lo), torch.maximum(self.channel_hi, hi)
        return c, x[0, 0].numel()

    def channel_interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each channel's [min, max] over all calibration inputs (float64 tensors; a channel that
        saw no finite input has min = inf, max = -inf). Raises ValueError where the inputs had
        no fixed channel dimension (dimension 1)."""
        if self._channel_problem is not None or self.channel_lo is None:
            raise ValueError(f"no per-channel range: {self._channel_problem or 'it saw no input'}")
        return self.channel_lo.double(), self.channel_hi.double()

    def _add_to_sample(self, flat: torch.Tensor, kept: Optional[torch.Tensor],
                       channels: Optional[tuple[int, int]]) -> None:
        """Keep a uniform sample of everything seen (weighted merge of two
        uniform samples: each kept value stands for count / size inputs), with
        each value's channel while the inputs have a fixed channel dimension."""
        n_new = flat.numel()
        self.count += n_new
        k = self.sample_size
        picked = None  # which of the finite inputs are taken (None: all)
        if n_new > k:
            picked = torch.randint(n_new, (k,), generator=self._gen)
            flat = flat[picked.to(flat.device)]
        flat = flat.cpu()
        new_channel = None
        if channels is not None and (self.sample_channel is not None or not self.sample.numel()):
            where = torch.arange(n_new) if picked is None else picked
            where = where if kept is None else kept.cpu()[where]
            c, inner = channels
            new_channel = (where // inner) % c
        if self.sample.numel() + flat.numel() <= k:
            self.sample = torch.cat([self.sample, flat])
            self.sample_channel = None if new_channel is None else torch.cat(
                [self.sample_channel if self.sample_channel is not None else new_channel[:0], new_channel])
            return
        take_new = round(k * n_new / self.count)
        keep_old = k - take_new
        old = torch.randperm(self.sample.numel(), generator=self._gen)[:keep_old]
        new = torch.randperm(flat.numel(), generator=self._gen)[:take_new]
        self.sample = torch.cat([self.sample[old], flat[new]])
        self.sample_channel = None if new_channel is None else torch.cat(
            [self.sample_channel[old], new_channel[new]])

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

    def clipped_fraction(self, l: Union[float, torch.Tensor], r: Union[float, torch.Tensor]) -> float:
        """Fraction of calibration inputs outside [l, r] (estimated on the sample); l and r may
        be per-channel tensors (each sampled input against its own channel's)."""
        if not self.sample.numel():
            return 0.0
        if torch.is_tensor(l) or torch.is_tensor(r):
            if self.sample_channel is None:
                raise ValueError(f"per-channel bounds, but no per-channel sample: {self._channel_problem}")
            l = l[self.sample_channel] if torch.is_tensor(l) else l
            r = r[self.sample_channel] if torch.is_tensor(r) else r
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
