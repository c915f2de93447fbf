"""Readings of Algorithm 1 behind Table 5 and Fig. 2 (paper 1), fixed up front from two sources.

**The printed Algorithm 1** (``source="algorithm"``): d(t) = 2^(ceil(log2 M) - t)
(line 16), spike when y > d(t) (line 23), one fit for all iterations, on the
float64 grid. It has two conflicts, and each is a variant:

- ``threshold``: ``"eq20"`` sets T(t) = min f^-1(y) over the spiking points
  *before* the weight is subtracted (Eq. 20); ``"line25"`` takes line 25
  literally, *after* the subtraction (y <- y - d(t), then T(t) <- min(T(t), f^-1(y))).
- ``range_from``: ``"shifted"`` takes M = max(f - b) (the text of Sect. 3.3.1,
  Eqs. 18-19); ``"unshifted"`` takes M = max f before the shift (line 8), with
  K = ceil(log2 M - log2 dy) (line 9, no floor).

**The authors' code** (``source="code"``, as summarised in the project's notes):
strict spiking and T(t) as in Eq. 20; it samples ``arange(l, r, 0.001)``,
shifts by b = min f, takes M = max(f - b), K = ceil(log2 M) - floor(log2 dy),
thins the grid to points where f moved by at least dy since the last kept
one, and at inference snaps an input to a kept point. Its variants:

- ``first_weight``: ``"code"``, d(1) = 2^ceil(log2 M) >= M (never fires), or
  ``"paper"`` (line 16);
- ``thin``: ``None`` (every grid point), ``"nearest"`` (the nearest kept point,
  ties to the left) or ``"next"`` (the kept point at or right of the input, the
  ``searchsorted`` index);
- ``shift_from``: b and M from the ``"full"`` grid before thinning (the code's
  order) or from the ``"kept"`` points;
- ``precision``: the samples and f's values in ``"float32"`` (torch's default)
  or ``"float64"`` (numpy's); the values (exact in float64) then go through the
  shift, the thinning and the spike decisions in float64. What "float32" means
  is fixed so that every CPU gives the same bits (:data:`SAMPLINGS`): the
  samples are l + i * step in float64 rounded once to float32, and f is
  evaluated in float64 on them and rounded once to float32. torch's own
  float32 ``arange`` and float32 kernels (erf, exp, tanh) differ in the last
  ulp between CPUs and instruction sets, and on the thinned grid such an ulp
  decides ties (``sampling="torch"`` keeps that definition, for comparison);
- ``per_column``: one fit at dy for all nine iterations, or one fit per
  iteration t at the coarsest dy = 2^e that gives K = t, read after its last step.

Every combination is run (:data:`READINGS`). Both sources decide a spike on
the values, y > d(t) (line 23; the code's mask), so every reading runs the
iteration phase :func:`psnn_lib.ps.fit.iterate` with ``decide_on="values"``.
Its branch inverse stands in for the authors' per-point ``fsolve``: on the
full grid both give the same membranes where the root found is on the rising
branch; on a thinned grid it inverts the snapped values (a staircase), so a
membrane sits at the left edge of its stair, not at f^-1 of the kept value.
Spike decisions, outputs and MSE do not depend on it. The outputs
come from the time-stepped neuron (:class:`psnn_lib.neurons.ps.PSNeuron`),
which spikes when its membrane reaches T(t), as the code's inference does.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Optional, Union

import torch

from ..activations import Activation, resolve_activation
from ..neurons.ps import PSNeuron
from ..ps.fit import FIRST_WEIGHTS, PSParams, branch_inverse, iterate, sample, spike_exponents
from ..ps.grid import check_finite

SOURCES = ("algorithm", "code")
THIN_MODES = (None, "nearest", "next")
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
SAMPLINGS = ("rounded", "torch")
"""How float32 samples of f are made: ``"rounded"`` (the definition: samples and values computed
in float64, each rounded once to float32; the same bits on every CPU) or ``"torch"`` (torch's
float32 ``arange`` and kernels, as the authors' code ran them; the last ulp depends on the CPU)."""


@dataclass(frozen=True)
class Reading:
    """One reading of Algorithm 1 (see the module docstring for each field)."""

    source: str
    first_weight: str = "paper"
    threshold: str = "eq20"
    range_from: str = "shifted"
    thin: Optional[str] = None
    shift_from: str = "full"
    precision: str = "float64"
    per_column: bool = False

    def __post_init__(self) -> None:
        choices = {"source": SOURCES, "first_weight": FIRST_WEIGHTS, "threshold": ("eq20", "line25"),
                   "range_from": ("shifted", "unshifted"), "thin": THIN_MODES, "shift_from": ("full", "kept"),
                   "precision": tuple(PRECISIONS), "per_column": (False, True)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed or name == "per_column" and not isinstance(self.per_column, bool):
                raise ValueError(f"Reading.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        # each source has only its own variants (so that a label names one reading)
        fixed = ({"first_weight": "paper", "thin": None, "shift_from": "full", "precision": "float64",
                  "per_column": False} if self.source == "algorithm" else
                 {"threshold": "eq20", "range_from": "shifted"})
        if self.thin is None:
            fixed["shift_from"] = "full"
        for name, value in fixed.items():
            if getattr(self, name) != value:
                raise ValueError(f"Reading.{name} = {getattr(self, name)!r} is no variant of the {self.source} "
                                 f"source{' without thinning' if name == 'shift_from' else ''} (only {value!r})")

    @property
    def label(self) -> str:
        """A short name: the source, then each setting that differs from the printed algorithm."""
        if self.source == "algorithm":
            parts = ["Algorithm 1",
                     "T after the subtraction (line 25)" if self.threshold == "line25" else "T by Eq. 20"]
            if self.range_from == "unshifted":
                parts.append("M before the shift (line 8)")
            return ", ".join(parts)
        grid = "full grid" if self.thin is None else f"thinned, {self.thin} kept point, b and M {self.shift_from}"
        fits = "one fit per column" if self.per_column else "one fit"
        return f"code, first weight {self.first_weight}, {grid}, {self.precision}, {fits}"

    def dimensions(self) -> dict[str, str]:
        """The reading's settings as short table columns ("" where the source has no such choice)."""
        return {"source": "code" if self.source == "code" else "Alg. 1",
                "d(1)": self.first_weight,
                "T(t)": "Eq. 20" if self.threshold == "eq20" else "line 25",
                "M": "max f" if self.range_from == "unshifted" else "max f-b",
                "snap": "" if self.thin is None else self.thin,
                "b, M": self.shift_from if self.thin else "",
                "f in": self.precision,
                "fits": "per col." if self.per_column else "one"}


def all_readings() -> tuple[Reading, ...]:
    """Every combination of each source's variants: 4 of the printed algorithm, 40 of the code."""
    printed = [Reading("algorithm", threshold=th, range_from=m)
               for th, m in itertools.product(("eq20", "line25"), ("shifted", "unshifted"))]
    grids = [(None, "full")] + list(itertools.product(("nearest", "next"), ("full", "kept")))
    code = [Reading("code", first_weight=fw, thin=thin, shift_from=shift, precision=prec, per_column=col)
            for fw, (thin, shift), prec, col in itertools.product(("code", "paper"), grids, PRECISIONS,
                                                                   (False, True))]
    return tuple(printed + code)


READINGS = all_readings()
PRINTED = Reading("algorithm")
"""Algorithm 1 with T(t) by Eq. 20: what the converter's ``fit_ps`` computes (first weight "paper")."""
LITERAL = Reading("algorithm", threshold="line25", range_from="unshifted")
"""Every line of Algorithm 1 taken as printed."""
AUTHORS_CODE = Reading("code", first_weight="code", thin="nearest", shift_from="full", precision="float32")
"""The authors' code with its own order of steps, torch's default precision and one fit."""


def thin_grid(y: torch.Tensor, dy: float) -> torch.Tensor:
    """Indices the authors' code keeps: the first point, then each where y moved >= dy since the last kept."""
    keep, last = [0], float(y[0])
    for i, v in enumerate(y.tolist()):
        if abs(v - last) >= dy:
            keep.append(i)
            last = v
    return torch.tensor(keep)


def snap_to_kept(kept: torch.Tensor, n: int, how: str) -> torch.Tensor:
    """For each index 0..n-1, the nearest kept index (ties to the left) or the next one at or right of it."""
    j = torch.arange(n)
    k = torch.searchsorted(kept, j)
    if how == "next" or kept.numel() == 1:
        return kept[k.clamp(max=kept.numel() - 1)]
    k = k.clamp(1, kept.numel() - 1)
    left, right = kept[k - 1], kept[k]
    return torch.where((j - left) <= (right - j), left, right)


@dataclass
class ReadingFit:
    """A reading's neuron and the grid it is evaluated on (the authors' sampling grid).

    ``x`` is ``arange(l, r, step)`` in the reading's precision, ``target`` f(x)
    (computed in that precision, held in float64)."""

    params: PSParams
    x: torch.Tensor
    target: torch.Tensor


@dataclass
class Samples:
    """f on the authors' sampling grid: ``x`` the points of ``arange(l, r, step)`` in one
    precision, ``y`` = f(x) in that precision (:func:`sampled` says how) held in float64, ``grid``
    the uniform float64 grid l + i * step that x lies on."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    grid: torch.Tensor
    step: float


def sampled(fn: Union[str, Activation], l: float, r: float, step: float, precision: str,
            sampling: str = "rounded") -> Samples:
    """f sampled at l + i * step for i < ceil((r - l) / step) (as many points as
    ``arange(l, r, step)``), in ``precision``. float32 samples are made as ``sampling`` says
    (:data:`SAMPLINGS`); float64 values come from torch's float64 kernels, whose last ulp can
    differ between CPUs (no claim rests on it: ``make same-claims``). An error for fewer than
    two samples or float32 samples that drift off the uniform grid by more than a quarter
    step."""
    check_finite(l=l, r=r, step=step)
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    n = max(0, math.ceil((r - l) / step))
    grid = torch.arange(n, dtype=torch.float64).mul_(step).add_(l)  # i exact, then two roundings
    if n < 2:
        raise ValueError(f"need at least two samples of [{l}, {r}) at step {step}, got {n}")
    dtype = PRECISIONS[precision]
    x = torch.arange(l, r, step, dtype=dtype) if sampling == "torch" else grid.to(dtype)
    if float((x.to(torch.float64) - grid).abs().max()) > step / 4:
        raise ValueError(f"{precision} samples of [{l}, {r}) drift from the uniform grid by more than a "
                         "quarter step; use float64 or an interval nearer 0")
    name, f = resolve_activation(fn)
    y = sample(f, x if sampling == "torch" else x.to(torch.float64))
    return Samples(name, x, y.to(dtype).to(torch.float64), grid, step)


def fit_reading(reading: Reading, fn: Union[str, Activation], l: float, r: float, dy: float,
                step: float) -> ReadingFit:
    """The neuron ``reading`` fits to ``fn`` on [l, r) at precision ``dy`` (one fit)."""
    return fit_samples(reading, sampled(fn, l, r, step, reading.precision), dy)


def fit_samples(reading: Reading, samples: Samples, dy: float) -> ReadingFit:
    """The neuron ``reading`` fits to f sampled in the reading's precision, at precision ``dy``."""
    check_finite(dy=dy)
    if dy <= 0:
        raise ValueError(f"dy must be > 0, got {dy}")
    y, grid = samples.y, samples.grid
    b = float(y.min())
    values = y
    if reading.thin is not None:
        kept = thin_grid(y, dy)
        values = y[snap_to_kept(kept, y.numel(), reading.thin)]
        if reading.shift_from == "kept":
            b = float(y[kept].min())
    values = values - b
    if reading.range_from == "unshifted":  # lines 8-9: M = max f, K = ceil(log2 M - log2 dy)
        top_value = float(y.max())
        if top_value <= 0:
            raise ValueError(f"line 8 of Algorithm 1 needs max f > 0; {samples.name} has max {top_value:g}")
        K = max(1, math.ceil(math.log2(top_value) - math.log2(dy)))
        s = math.ceil(math.log2(top_value)) - K
    else:
        s, K = spike_exponents(float(y.max()) - b if reading.shift_from == "full" else float(values.max()), dy, None)
    params = iterate(samples.name, grid, y, values, b, s, K, first_weight=reading.first_weight,
                     strict=True, dy=dy, step=samples.step, decide_on="values")
    if reading.threshold == "line25":
        params = dataclasses.replace(params, T=line25_thresholds(grid, values, params.d))
    return ReadingFit(params, samples.x, y)


def column_fit(reading: Reading, fn: Union[str, Activation], l: float, r: float, t: int,
               step: float) -> Optional[ReadingFit]:
    """The fit of column t: K = t at the coarsest dy = 2^e that gives it, or None where no dy
    does. e starts from the range of f on the full grid; where the reading takes M from the
    kept points, a coarse thinning can shrink M, and e goes down until K = t. K can also jump
    past t (Hardswish at t = 2 with b and M from the kept points: K = 1 at dy = 4, 3 at dy = 2)."""
    return column_samples_fit(reading, sampled(fn, l, r, step, reading.precision), t)


def column_samples_fit(reading: Reading, samples: Samples, t: int) -> Optional[ReadingFit]:
    """:func:`column_fit` on f already sampled."""
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"the column t must be a positive int, got {t!r}")
    spread = float(samples.y.max() - samples.y.min())
    if spread <= 0:
        raise ValueError(f"{samples.name} is constant on the grid: no fit has {t} time steps")
    e = math.ceil(math.log2(spread)) - t
    while True:
        fit = fit_samples(reading, samples, 2.0 ** e)
        if fit.params.K >= t:
            return fit if fit.params.K == t else None
        e -= 1


def line25_thresholds(x: torch.Tensor, values: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """T(t) of Algorithm 1 line 25 as printed: min f^-1(y) over the spiking points, y taken
    *after* the weight is subtracted (Eq. 20 takes it before)."""
    _, inverse = branch_inverse(x, values)
    res = values.clone()
    T = torch.full_like(d, math.inf)
    for t, weight in enumerate(d.tolist()):
        fire = res > weight
        res = res - fire * weight
        if fire.any():
            T[t] = inverse(res[fire]).min()
    return T


def iteration_mse(reading: Reading, fn: Union[str, Activation], l: float, r: float, dy: float, step: float,
                  iterations: int = 9, sampling: str = "rounded") -> tuple[list[float], list[float]]:
    """(MSE against f after iterations 1..``iterations``, the lattice lower bound of each);
    NaN in a column no fit of a per-column reading reaches (:func:`column_fit`).

    The lower bound: after iteration t every output is b + k w for an integer k,
    w the smallest spike weight used so far, so no choice of spikes gets below
    mean_x min_k (f(x) - b - k w)^2 (:func:`lattice_bound`)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    samples = sampled(fn, l, r, step, reading.precision, sampling)
    if not reading.per_column:
        fit = fit_samples(reading, samples, dy)
        p = fit.params
        out = iteration_outputs(p, fit.x, iterations)
        mses = ((out - fit.target) ** 2).mean(dim=1).tolist()
        return mses, [lattice_bound(fit.target, p.b, float(p.d[: min(t, p.K)].min()))
                      for t in range(1, iterations + 1)]
    mses, bounds = [], []
    for t in range(1, iterations + 1):
        fit = column_samples_fit(reading, samples, t)
        if fit is None:  # no fit of this reading has K = t
            mses.append(math.nan)
            bounds.append(math.nan)
            continue
        out = iteration_outputs(fit.params, fit.x, t)[-1]
        mses.append(float(((out - fit.target) ** 2).mean()))
        bounds.append(lattice_bound(fit.target, fit.params.b, float(fit.params.d.min())))
    return mses, bounds


def lattice_bound(target: torch.Tensor, b: float, weight: float) -> float:
    """mean min_k (target - b - k weight)^2: the least MSE of any output on b + weight * Z."""
    if not weight > 0:
        raise ValueError(f"weight must be > 0, got {weight}")
    residue = torch.remainder(target - b, weight)
    return float(torch.minimum(residue, weight - residue).pow(2).mean())


def iteration_outputs(params: PSParams, x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Output of the time-stepped neuron after t = 1..iterations steps, shape (iterations, N),
    in float64; beyond K the output stays at its final value."""
    acc = PSNeuron(params, mode="stepped").simulate(x.to(torch.float64), record=True).accumulated
    if iterations > params.K:
        acc = torch.cat([acc, acc[-1:].expand(iterations - params.K, -1)])
    return acc[:iterations]
