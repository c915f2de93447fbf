"""Fit the parameters of a Precise Spiking neuron (paper 1, Algorithm 1).

Setup phase: sample f on a uniform grid of [l, r], shift by b = min f
(Theorem 1), choose s and K by Eqs. 17-19. Iteration phase: for t = 1..K
the spike weight is d(t) = 2^(s+K-t) (Theorem 2), every grid point whose
remaining value Delta y reaches d(t) spikes, its reset voltage becomes
h(t+1) = f^-1(Delta y) (Theorem 3, Eq. 14), and the threshold is
T(t) = min{f^-1(Delta y) : Delta y > d(t)} (Eq. 20).

Readings of the paper that differ are options, so the book can test them:

- ``first_weight="paper"``: d(1) = 2^(s+K-1) as in Algorithm 1 line 16;
  ``"code"``: the authors' code, d(t) = 2^(s+K+1-t), whose first weight is
  >= M so step 1 never fires and whose smallest weight is 2^(s+1).
- ``strict=True``: spike when Delta y > d(t) (Algorithm 1 line 23, Eq. 20);
  ``False``: when Delta y >= d(t) (an exact binary floor expansion).
- ``thin="nearest"`` or ``"next"``: the authors' code keeps a grid point only
  where f changed by at least dy since the last kept point; each grid point
  then takes the value of its nearest kept point, or of the next one at or
  to its right (the code's ``searchsorted`` look-up).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch

from ..activations import Activation, resolve_activation
from .grid import MAX_GRID_POINTS, check_finite, make_grid
from .inverse import BranchInverse

FIRST_WEIGHTS = ("paper", "code")


@dataclass
class FitTables:
    """What Algorithm 1 computes per grid point (float64 on the CPU, G points).

    ``h`` has shape (K, G): ``h[0, j]`` is the initial membrane
    v(1) = f^-1(f(x_j)) (Eq. 11) of a neuron whose input snaps to grid point
    j, and ``h[t, j]`` (t >= 1) its reset voltage h_j(t+1) (Eq. 2).
    ``accumulated[j]`` = sum_t d(t) z_j(t) (exact: a sum of powers of two)
    and ``spike_count[j]`` (int32) are what such a neuron emits; ``target[j]``
    is f(x_j).
    """

    target: torch.Tensor
    h: torch.Tensor
    accumulated: torch.Tensor
    spike_count: torch.Tensor


@dataclass
class PSParams:
    """Parameters of a PS neuron; all tensors are float64 on the CPU.

    The scalars, d(t) and T(t) are small; the per-grid-point ``tables``
    (:class:`FitTables`, read through ``h``, ``target``, ``accumulated`` and
    ``spike_count``) are large, so :meth:`slim` drops them and the first read
    rebuilds them with ``refit`` (``fit_ps`` with the same arguments, the
    activation callable included: picklable when that callable is a
    module-level function or a ``functools.partial``). Membrane values are in
    input units; ``direction = -1`` marks a function that falls on [l, r],
    whose branch is mirrored (v = -x) so that a neuron still fires when v >= T.
    ``step`` is the requested grid step, ``delta`` the one used (coarser when
    [l, r] needs more than ``MAX_GRID_POINTS``).
    """

    activation: str
    l: float
    r: float
    dy: float
    step: float
    points: int
    d: torch.Tensor
    T: torch.Tensor
    b: float
    K: int
    s: int
    first_weight: str = "paper"
    strict: bool = True
    thin: Optional[str] = None
    direction: int = 1
    error_bound: float = float("nan")
    tables: Optional[FitTables] = field(default=None, repr=False, compare=False)
    refit: Optional[Callable[[], "PSParams"]] = field(default=None, repr=False, compare=False)

    @property
    def delta(self) -> float:
        """Actual grid step (<= the requested ``step`` unless the grid was capped)."""
        return (self.r - self.l) / (self.points - 1)

    @property
    def grid(self) -> torch.Tensor:
        """The ``points`` uniform samples of [l, r] (Algorithm 1, line 3)."""
        return torch.linspace(self.l, self.r, self.points, dtype=torch.float64)

    def fit_tables(self) -> FitTables:
        """The per-grid-point tables: held ones, or refitted without keeping them."""
        if self.tables is not None:
            return self.tables
        if self.refit is None:
            raise RuntimeError("these PS parameters hold no tables and no refit recipe")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the first fit already warned
            again = self.refit()
        if (again.K, again.s, again.b, again.points) != (self.K, self.s, self.b, self.points) or \
                not torch.equal(again.T, self.T):
            raise RuntimeError(f"refitting {self.activation} on [{self.l:g}, {self.r:g}] gave other "
                               "parameters: the activation function changed since the fit")
        return again.tables

    def _held(self) -> FitTables:
        if self.tables is None:
            self.tables = self.fit_tables()
        return self.tables

    @property
    def h(self) -> torch.Tensor:
        """Reset table (K, G) of Eq. 2 (see :class:`FitTables`); rebuilt on first read if slim."""
        return self._held().h

    @property
    def target(self) -> torch.Tensor:
        """f on the grid."""
        return self._held().target

    @property
    def accumulated(self) -> torch.Tensor:
        """sum_t d(t) z_j(t) on the grid."""
        return self._held().accumulated

    @property
    def spike_count(self) -> torch.Tensor:
        """Spikes per grid point."""
        return self._held().spike_count

    def slim(self) -> "PSParams":
        """A copy without the tables (kept when there is no ``refit`` to rebuild them)."""
        return dataclasses.replace(self, tables=None if self.refit is not None else self.tables)

    @property
    def output(self) -> torch.Tensor:
        """PS output on the grid, Eq. 3."""
        return self.accumulated + self.b

    @property
    def grid_error(self) -> float:
        """max_j |PS(x_j) - f(x_j)|: at most d(K) (the quantisation step)."""
        return float((self.output - self.target).abs().max())


def sample(fn: Activation, x: torch.Tensor) -> torch.Tensor:
    """f on the grid in float64, with a clear error where it is not finite."""
    with torch.no_grad():
        y = torch.as_tensor(fn(x), dtype=torch.float64)
    if y.shape != x.shape:
        raise ValueError(f"activation returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
    bad = ~torch.isfinite(y)
    if bad.any():
        raise ValueError(
            f"activation is not finite on the grid ({int(bad.sum())} points, first at x = "
            f"{float(x[bad][0]):.6g}); choose an interval where it is finite"
        )
    return y


def thin_grid(y: torch.Tensor, dy: float) -> torch.Tensor:
    """Indices kept by the authors' thinning: y moved >= dy since the last kept."""
    keep, last = [0], float(y[0])
    for i, v in enumerate(y.tolist()):
        if abs(v - last) >= dy:
            keep.append(i)
            last = v
    return torch.tensor(keep)


THIN_MODES = (None, "nearest", "next")


def snap_to_kept(kept: torch.Tensor, n: int, how: str) -> torch.Tensor:
    """For each index 0..n-1, the nearest kept index (ties left) or the next one."""
    j = torch.arange(n)
    k = torch.searchsorted(kept, j)
    if how == "next" or kept.numel() == 1:
        return kept[k.clamp(max=kept.numel() - 1)]
    k = k.clamp(1, kept.numel() - 1)
    left, right = kept[k - 1], kept[k]
    return torch.where((j - left) <= (right - j), left, right)


def fit_ps(
    fn: Union[str, Activation],
    l: float,
    r: float,
    dy: Optional[float] = None,
    step: float = 1e-3,
    *,
    K: Optional[int] = None,
    first_weight: str = "paper",
    strict: bool = True,
    thin: Optional[str] = None,
) -> PSParams:
    """Fit h, d, T, b, K, s of a PS neuron to ``fn`` on [l, r] (Algorithm 1).

    ``dy`` is the required precision (Eq. 17: s = floor(log2 dy)); ``step``
    the sample spacing delta of Algorithm 1 line 3. Give ``K`` instead of
    ``dy`` to fix the number of time steps: then s = ceil(log2 M) - K, the
    finest precision K steps reach (Eq. 18 solved for s). The grid is
    ``linspace(l, r, G)``, G = ceil((r - l) / step) + 1, so both ends are
    samples and the actual spacing ``delta`` is at most ``step``; G is at
    least 2 (a tiny interval gives a near-constant neuron) and at most
    ``MAX_GRID_POINTS``, where the step is coarsened with a warning. Cost
    O(K G log G), no per-point root finding.
    """
    if (dy is None) == (K is None):
        raise ValueError("give exactly one of dy (precision) and K (time steps)")
    if dy is not None:
        check_finite(dy=dy)
        if dy <= 0:
            raise ValueError(f"dy must be > 0, got {dy}")
    elif isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K must be a positive int, got {K!r}")
    if thin not in THIN_MODES:
        raise ValueError(f"thin must be one of {THIN_MODES}, got {thin!r}")
    if first_weight not in FIRST_WEIGHTS:
        raise ValueError(f"first_weight must be one of {FIRST_WEIGHTS}, got {first_weight!r}")
    refit = functools.partial(fit_ps, fn, l, r, dy, step, K=K, first_weight=first_weight,
                              strict=strict, thin=thin)
    name, f = resolve_activation(fn)
    x = make_grid(l, r, step)
    n = x.numel()
    if (r - l) / step > MAX_GRID_POINTS - 1:
        warnings.warn(f"fit_ps: [{l:g}, {r:g}] with step {step:g} needs more than {MAX_GRID_POINTS} grid "
                      f"points; using step {(r - l) / (n - 1):.4g} ({n} points) instead", stacklevel=2)
    target = sample(f, x)

    # Setup phase (Algorithm 1 lines 3-12, Eqs. 17-19).
    y = target.clone()
    if thin:
        y = y[snap_to_kept(thin_grid(y, dy), n, thin)]
    b = float(y.min())
    y = y - b
    M = float(y.max())
    if dy is None:
        s = (math.ceil(math.log2(M)) if M > 0 else 0) - K
        dy = 2.0 ** s
    else:
        s = math.floor(math.log2(dy))
        K = max(1, math.ceil(math.log2(M) - s)) if M > 0 else 1
    shift = 1 if first_weight == "code" else 0
    d = torch.tensor([2.0 ** (s + K + shift - t) for t in range(1, K + 1)], dtype=torch.float64)

    # The rising branch, mirrored if the function falls (see PSParams).
    direction = 1 if int(torch.argmin(y)) <= n - 1 - int(torch.argmax(y.flip(0))) else -1
    inverse = BranchInverse(x, y) if direction == 1 else BranchInverse(-x.flip(0), y.flip(0))

    # Iteration phase (lines 13-29): one vectorised pass per time step.
    res = y.clone()
    h = torch.empty(K, n, dtype=torch.float64)
    h[0] = inverse(res)
    T = torch.full((K,), math.inf, dtype=torch.float64)
    acc = torch.zeros(n, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.int32)
    levels = inverse(d)  # f^-1(d(t)): where Delta y = d(t) on the membrane scale
    for t in range(K):
        # Decide on the membrane scale, Delta y > d(t) <=> f^-1(Delta y) > f^-1(d(t)),
        # so that T(t) of Eq. 20 reproduces every decision exactly in floating point.
        fire = h[t] > levels[t] if strict else h[t] >= levels[t]
        spiked = fire.nonzero().squeeze(1)
        if spiked.numel():
            T[t] = h[t].index_select(0, spiked).min()
            weight = fire.to(torch.float64).mul_(d[t])
            res.sub_(weight)
            acc.add_(weight)
            count.add_(fire.to(torch.int32))
        if t + 1 < K:
            h[t + 1] = h[t]
            h[t + 1].index_copy_(0, spiked, inverse(res.index_select(0, spiked)))

    params = PSParams(
        activation=name, l=float(l), r=float(r), dy=float(dy), step=float(step), points=n,
        d=d, T=T, b=b, K=K, s=s, first_weight=first_weight, strict=strict, thin=thin,
        direction=direction, tables=FitTables(target, h, acc, count), refit=refit,
    )
    params.error_bound = error_bound(params, f)
    return params


def error_bound(params: PSParams, fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Bound on |PS(x) - f(x)| for x in [l, r].

    A point x snaps to its nearest sample x_j, |x - x_j| <= delta / 2, so
    |PS(x) - f(x)| <= |PS(x_j) - f(x_j)| + |f(x_j) - f(x)|
                   <= q_j + V_j,
    with q_j the quantisation error on the grid (at most d(K) = 2^s, or
    2^(s+1) in the code reading, when the grid is not thinned) and V_j the
    largest change of f from x_j to the edges of its cell x_j +- delta / 2,
    exact when f is monotone on each cell (it is, except within a cell of
    an extremum where the change is O(delta^2)). Hence the bound
    max_j (q_j + V_j) <= 2^s + L delta / 2 for L = sup |f'|.
    """
    half = params.delta / 2
    edges = torch.cat([params.grid - half, params.grid[-1:] + half])
    fe = sample(fn, edges)
    v = torch.maximum((fe[:-1] - params.target).abs(), (fe[1:] - params.target).abs())
    v[0] = (fe[1] - params.target[0]).abs()  # the first cell starts at l
    v[-1] = (fe[-2] - params.target[-1]).abs()  # the last ends at r
    q = (params.output - params.target).abs()
    return float((q + v).max())
