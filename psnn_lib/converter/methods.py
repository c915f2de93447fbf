"""The built-in conversion methods of paper 1: ``ps`` (Precise Spiking neurons), ``fs``
(few-spikes neurons) and ``rate`` (rate-coded integrate-and-fire, the baseline), each one
:func:`~.registry.register_method` call (paper 2's neurons: :mod:`.signed_methods`)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Optional, Union

from ..activations import ActivationSpec
from ..neurons.fs import FSNeuron, load_table, lookup, relu_params
from ..neurons.fs_train import train_fs
from ..neurons.ps import PSNeuron
from ..neurons.rate import IFNeuron
from ..ps.fit import FIRST_WEIGHTS, fit_ps
from ..ps.grid import site_step
from .registry import Method, Site, SpikeCost, checked, number, positive_int, register_method


PS_DEFAULT_K = 16


@dataclass(frozen=True)
class PSOptions:
    """Options of ``ps``: ``K`` time steps (Eq. 17; 16 unless ``dy`` is given) or the precision
    ``dy`` (Eq. 18: each site's K then follows from its range, Eq. 19), never both; the grid
    ``step`` (None: :func:`~psnn_lib.ps.grid.site_step`); the ``first_weight`` reading; ``mode``
    "fast" (a look-up) or "stepped" (Eqs. 1-3 spike by spike)."""

    K: Optional[int] = None
    dy: Optional[float] = None
    step: Optional[float] = None
    first_weight: str = "paper"
    mode: str = "fast"

    def __post_init__(self) -> None:
        if self.K is not None and self.dy is not None:
            raise ValueError(f"give K (time steps) or dy (precision), not both: K={self.K!r}, dy={self.dy!r}")
        if self.K is not None:
            checked(self, "K", positive_int)
        for name in ("dy", "step"):
            if getattr(self, name) is not None:
                checked(self, name, number, positive=True)
        if self.mode not in PSNeuron.MODES:
            raise ValueError(f"mode must be one of {PSNeuron.MODES}, got {self.mode!r}")
        if self.first_weight not in FIRST_WEIGHTS:
            raise ValueError(f"first_weight must be one of {FIRST_WEIGHTS}, got {self.first_weight!r}")
        if self.K is None and self.dy is None:
            object.__setattr__(self, "K", PS_DEFAULT_K)


def _build_ps(site: Site, o: PSOptions) -> PSNeuron:
    """PS neuron fitted on the site's interval (Algorithm 1) with K steps or precision dy,
    on a grid of step ``step`` (default: :func:`~psnn_lib.ps.grid.site_step`, the paper's 1e-3, finer on
    an interval narrower than 1). Warns when the grid, not the spikes, sets the site's error: the
    snapping term of its a-priori bound (:mod:`psnn_lib.ps.bound`) above the quantisation term and
    above ``SNAPPING_SHARE`` of the site's output range or the precision ``dy`` asked for."""
    l, r = site.interval
    if not r > l:
        raise ValueError(f"empty interval [{l}, {r}] (the calibration inputs are constant); "
                         "widen it with convert(..., interval=(l, r))")
    params = fit_ps(site.spec.fn, l, r, o.dy, o.step or site_step(l, r), K=None if o.K is None else int(o.K),
                    first_weight=o.first_weight)
    params.activation = site.spec.name
    snapping, quantisation = params.snapping, params.error_bound - params.snapping
    if snapping > quantisation and (snapping > SNAPPING_SHARE * float(params.target.max() - params.b)
                                    or (o.dy is not None and snapping > o.dy)):
        warnings.warn(f"its grid step {params.delta:.3g} gives {params.points} points on [{l:.4g}, {r:.4g}]: "
                      f"the error bound {params.error_bound:.3g} is mostly snapping ({snapping:.3g}), not the "
                      f"spikes' precision ({quantisation:.3g}); pass a smaller step")
    return PSNeuron(params, mode=o.mode)


# a site's snapping term above this share of its output range (and above its quantisation term) is warned about
SNAPPING_SHARE = 1e-2


register_method(Method(
    name="ps",
    build=_build_ps,
    spikes=PSNeuron.spikes,
    options=PSOptions,
    details=lambda neuron: {"step": neuron.params.delta, "error_bound": neuron.params.error_bound,
                            "table_bytes": neuron.table_bytes()},
    # a spike at step t is worth d(t) = 2^(s+K-t), half the step before's: the receiver doubles its
    # sum each step (one add, Horner's rule) and adds each spike's weight (one accumulate)
    cost=lambda neuron: SpikeCost(receiver_acs=1, table_values=1),
))


@dataclass(frozen=True)
class FSOptions:
    """Options of ``fs``: ``K`` time steps; ``alpha`` (ReLU's range; None: the site's r);
    ``table`` (a file of trained FS parameters; None: the table that ships with psnn_lib);
    ``train`` (train parameters missing from the table, with ``restarts``, ``train_steps``
    optimiser steps and ``points`` samples of the activation)."""

    K: int = 16
    alpha: Optional[float] = None
    table: Union[str, os.PathLike, None] = None
    train: bool = False
    restarts: int = 8
    train_steps: int = 1000
    points: int = 20_000

    def __post_init__(self) -> None:
        for name in ("K", "restarts", "train_steps", "points"):
            checked(self, name, positive_int)
        if self.alpha is not None:
            checked(self, "alpha", number, positive=True)
        if not isinstance(self.train, bool):
            raise ValueError(f"train is True or False, got {self.train!r}")
        if self.table is not None and not isinstance(self.table, (str, os.PathLike)):
            raise ValueError(f"table is the path of a file of FS parameters (or None), got {self.table!r}")


def _build_fs(site: Site, o: FSOptions) -> FSNeuron:
    name, K = site.spec.name, int(o.K)
    if name in ("relu", "relu6"):
        alpha = o.alpha if o.alpha is not None else site.interval[1]
        alpha = min(alpha, 6.0) if name == "relu6" else alpha
        if not alpha > 0:
            raise ValueError(f"FS ReLU needs alpha > 0, got {alpha:g}")
        return FSNeuron(relu_params(alpha, K, name))
    params = lookup(load_table(o.table), name, K)
    if params is None:
        where = o.table or "the FS table that ships with psnn_lib"
        if not o.train:
            raise ValueError(f"no trained FS parameters for {name} with K={K} in {where}; train them "
                             f"with `python -m psnn_lib.neurons.fs_train --activations {name} --K {K} "
                             "--out FILE` and pass table=FILE, or pass train=True")
        params = train_fs(site.spec.fn, K, restarts=o.restarts, steps=o.train_steps, points=o.points)
        params.activation = name
    return FSNeuron(params)


register_method(Method(
    name="fs",
    build=_build_fs,
    spikes=FSNeuron.spikes,
    options=FSOptions,
    details=lambda neuron: {"table_bytes": neuron.table_bytes()},
    cost=lambda neuron: SpikeCost(receiver_macs=1),  # each step's sum times its trained d(t)
))


def _accepts_rate(spec: ActivationSpec) -> Optional[str]:
    if spec.name in ("relu", "relu6"):
        return None
    return "rate-coded IF neurons convert ReLU and ReLU6 only (use method='ps' or 'fs')"


@dataclass(frozen=True)
class RateOptions:
    """Options of ``rate``: ``T`` time steps; ``v_init``, the initial membrane in thresholds."""

    T: int = 32
    v_init: float = 0.0

    def __post_init__(self) -> None:
        checked(self, "T", positive_int)
        checked(self, "v_init", number)


def _build_rate(site: Site, o: RateOptions) -> IFNeuron:
    l, r = site.interval
    theta = min(r, 6.0) if site.spec.name == "relu6" else r
    if not theta > 0:
        raise ValueError(f"its calibrated inputs are never positive (r = {r:g}); "
                         "an IF threshold needs r > 0")
    return IFNeuron(theta, int(o.T), o.v_init)


register_method(Method(
    name="rate",
    build=_build_rate,
    spikes=IFNeuron.spikes,
    options=RateOptions,
    accepts=_accepts_rate,
    passes=lambda o: int(o.T),
    details=lambda neuron: {"table_bytes": neuron.table_bytes()},
))
