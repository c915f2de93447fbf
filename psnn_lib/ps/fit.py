"""Fit the parameters of a Precise Spiking neuron (paper 1, Algorithm 1).

Setup phase: sample f on a uniform grid of [l, r], shift by b = min f
(Theorem 1), choose s and K by Eqs. 17-19. Iteration phase: for t = 1..K
the spike weight is d(t) = 2^(s+K-t) (Theorem 2), every grid point whose
remaining value Delta y reaches d(t) spikes, its reset voltage becomes
h(t+1) = f^-1(Delta y) (Theorem 3, Eq. 14), and the threshold is
T(t) = min{f^-1(Delta y) : Delta y > d(t)} (Eq. 20).

Two options follow readings of the paper that differ:

- ``first_weight="paper"``: d(1) = 2^(s+K-1) as in Algorithm 1 line 16;
  ``"code"``: the authors' code, d(t) = 2^(s+K+1-t), whose first weight is
  >= M so step 1 never fires and whose smallest weight is 2^(s+1).
- ``strict=True``: spike when Delta y > d(t) (Algorithm 1 line 23, Eq. 20);
  ``False``: when Delta y >= d(t) (an exact binary floor expansion).

The setup phase (:func:`fit_ps`) and the iteration phase
(:func:`iterate`) are apart, so that the book can run the iteration on the
values the authors' code fits (a thinned grid, float32 samples:
:mod:`psnn_lib.paper1.readings`). Every fit carries an a-priori error bound
(:mod:`psnn_lib.ps.bound`).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch

from ..activations import Activation, known_lipschitz, resolve_activation
from .bound import check_lipschitz, error_bound
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
    [l, r] needs more than ``MAX_GRID_POINTS``). ``error_bound`` bounds
    |PS(x) - f(x)| on [l, r] a priori when ``bound_condition`` holds
    (:mod:`psnn_lib.ps.bound`); ``snapping`` is its part due to the grid.
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
    direction: int = 1
    error_bound: float = float("nan")
    snapping: float = float("nan")
    bound_condition: str = ""
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
        """max_j |PS(x_j) - f(x_j)|: at most d(K) (the quantisation step), up to the membrane
        scale's resolution (:mod:`psnn_lib.ps.bound`)."""
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


def spike_exponents(M: float, dy: Optional[float], K: Optional[int]) -> tuple[int, int]:
    """(s, K) for the range M of f - b: from dy by Eqs. 17 and 19, or, given K,
    s = ceil(log2 M) - K, the finest precision K steps reach (Eq. 18 solved for s)."""
    top = math.ceil(math.log2(M)) if M > 0 else 0
    if dy is None:
        return top - K, K
    s = math.floor(math.log2(dy))
    return s, max(1, top - s) if M > 0 else 1


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
    lipschitz: Optional[float] = None,
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
    O(K G log G), no per-point root finding. ``lipschitz`` (sup |f'| on
    [l, r]) sharpens the error bound; the activation table knows it for its
    functions.
    """
    if (dy is None) == (K is None):
        raise ValueError("give exactly one of dy (precision) and K (time steps)")
    if dy is not None:
        check_finite(dy=dy)
        if dy <= 0:
            raise ValueError(f"dy must be > 0, got {dy}")
    elif isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K must be a positive int, got {K!r}")
    if first_weight not in FIRST_WEIGHTS:
        raise ValueError(f"first_weight must be one of {FIRST_WEIGHTS}, got {first_weight!r}")
    check_lipschitz(lipschitz)
    refit = functools.partial(fit_ps, fn, l, r, dy, step, K=K, first_weight=first_weight,
                              strict=strict, lipschitz=lipschitz)
    name, f = resolve_activation(fn)
    x = make_grid(l, r, step)
    n = x.numel()
    if (r - l) / step > MAX_GRID_POINTS - 1:
        warnings.warn(f"fit_ps: [{l:g}, {r:g}] with step {step:g} needs more than {MAX_GRID_POINTS} grid "
                      f"points; using step {(r - l) / (n - 1):.4g} ({n} points) instead", stacklevel=2)
    target = sample(f, x)
    # Setup phase (Algorithm 1 lines 3-12, Eqs. 17-19).
    b = float(target.min())
    values = target - b
    s, K = spike_exponents(float(values.max()), dy, K)
    params = iterate(name, x, target, values, b, s, K, first_weight=first_weight, strict=strict,
                     dy=2.0 ** s if dy is None else dy, step=step)
    bound = error_bound(f, x, target, float(params.d[-1]),
                        known_lipschitz(fn) if lipschitz is None else lipschitz)
    return dataclasses.replace(params, refit=refit, error_bound=bound.value, snapping=bound.snapping,
                               bound_condition=bound.condition)


def branch_inverse(x: torch.Tensor, values: torch.Tensor) -> tuple[int, BranchInverse]:
    """(direction, f^-1 on the membrane scale): the rising branch of the samples, mirrored
    (v = -x, direction -1) if the function falls (see :class:`PSParams`)."""
    if int(torch.argmin(values)) <= values.numel() - 1 - int(torch.argmax(values.flip(0))):
        return 1, BranchInverse(x, values)
    return -1, BranchInverse(-x.flip(0), values.flip(0))


DECISIONS = ("membrane", "values")


def iterate(activation: str, x: torch.Tensor, target: torch.Tensor, values: torch.Tensor, b: float,
            s: int, K: int, *, first_weight: str, strict: bool, dy: float, step: float,
            decide_on: str = "membrane") -> PSParams:
    """Iteration phase of Algorithm 1 (lines 13-29) on a uniform float64 grid ``x``.

    ``values`` >= 0 are what the neuron expands into spikes at each grid point
    (f(x) - b for :func:`fit_ps`), ``target`` is f(x); d(t) = 2^(s+K-t), or
    2^(s+K+1-t) with the code's first weight. A point spikes when its remainder
    Delta y exceeds d(t) (line 23), decided on the membrane scale,
    f^-1(Delta y) > f^-1(d(t)), so that T(t) of Eq. 20 reproduces every
    decision exactly in floating point; ``decide_on="values"`` compares Delta y
    and d(t) themselves, as the authors' code does (the two differ only at
    ties within rounding, where the neuron then follows T). A weight above
    max(values) never fires. The result holds its tables and no refit recipe
    or error bound.
    """
    if first_weight not in FIRST_WEIGHTS:
        raise ValueError(f"first_weight must be one of {FIRST_WEIGHTS}, got {first_weight!r}")
    if decide_on not in DECISIONS:
        raise ValueError(f"decide_on must be one of {DECISIONS}, got {decide_on!r}")
    n = x.numel()
    shift = 1 if first_weight == "code" else 0
    d = torch.tensor([2.0 ** (s + K + shift - t) for t in range(1, K + 1)], dtype=torch.float64)

    direction, inverse = branch_inverse(x, values)

    # One vectorised pass per time step.
    res = values.clone()
    h = torch.empty(K, n, dtype=torch.float64)
    h[0] = inverse(res)
    T = torch.full((K,), math.inf, dtype=torch.float64)
    acc = torch.zeros(n, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.int32)
    # f^-1(d(t)), where Delta y = d(t) on the membrane scale; +inf for a weight no value reaches
    # (the inverse saturates at the top of the branch, where >= would fire it)
    levels = inverse(d).masked_fill_(d > values.max(), math.inf)
    on_values = decide_on == "values"
    for t in range(K):
        now, level = (res, d[t]) if on_values else (h[t], levels[t])
        fire = now > level if strict else now >= level
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

    return PSParams(
        activation=activation, l=float(x[0]), r=float(x[-1]), dy=float(dy), step=float(step), points=n,
        d=d, T=T, b=b, K=K, s=s, first_weight=first_weight, strict=strict, direction=direction,
        tables=FitTables(target, h, acc, count),
    )
