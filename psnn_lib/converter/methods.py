"""Registry of conversion methods: which spiking neuron replaces an activation.

The converter (``engine.py``) knows nothing about any neuron, and no
neuron knows the converter: this module binds them. A method is registered
once with :func:`register_method` and says

- ``build(site, options)``: the neuron module for one activation site, given
  its :class:`Site` (activation, interval, observer and how the interval was
  chosen from it);
- ``accepts(spec)``: None if it can convert that activation, else why not;
- ``passes(options)``: how many forward passes one inference takes (1 for
  neurons that finish within one layer pass such as PS and FS; T for
  rate coding, whose IF neurons integrate over T network time steps);
- ``spikes``: what its neurons emit (binary spikes, signed spikes, a look-up),
  shown in reports so nobody mistakes real values for spikes;
- ``defaults``: its options; unknown options are an error, and ``check(options)``
  rejects bad values before any calibration pass;
- ``details(neuron)``: extra report columns of one built neuron (its table
  memory in bytes, a PS grid step, ...);
- ``covers(neuron)``: the input range its neuron represents, where that is not
  the site's interval (numbers, or per-channel tensors; the report's
  ``clipped_fraction`` counts inputs outside it).

Every neuron module exposes ``stats`` (a :class:`~psnn_lib.neurons.stats.SpikeStats`),
``reset_stats()``, ``reset_state()``, ``MODES`` and a ``mode`` attribute.
The bindings of ``ps``, ``fs`` and ``rate`` are at the end of this module;
paper 2's signed-spike neurons plug in the same way from ``signed_methods``
(imported last, so that every method is known once the converter is).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from torch import nn

from ..activations import ActivationSpec
from ..neurons.fs import FSNeuron, load_table, lookup, relu_params
from ..neurons.fs_train import train_fs
from ..neurons.ps import PSNeuron
from ..neurons.rate import IFNeuron
from ..ps.fit import FIRST_WEIGHTS, fit_ps
from ..ps.grid import site_step
from .calibration import Observer


@dataclass
class Site:
    """One activation site of a model, after calibration: ``how`` is the observer mode that
    chose ``interval`` ("minmax" or a percentile; None for an interval given to the converter)."""

    name: str
    spec: ActivationSpec
    interval: tuple[float, float]
    observer: Optional[Observer] = None
    how: Union[str, float, None] = None


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[[Site, dict], nn.Module]
    spikes: str
    defaults: dict = field(default_factory=dict)
    accepts: Callable[[ActivationSpec], Optional[str]] = lambda spec: None
    passes: Callable[[dict], int] = lambda options: 1
    check: Callable[[dict], None] = lambda options: None
    details: Callable[[nn.Module], dict] = lambda neuron: {}
    covers: Callable[[nn.Module], Optional[tuple[Any, Any]]] = lambda neuron: None

    def options(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise TypeError(f"method {self.name!r} has no option(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.defaults)}")
        options = {**self.defaults, **given}
        self.check(options)
        return options


def positive_int(name: str, value: Any) -> None:
    """An option that counts (K, T): a positive integer (a Python or NumPy int), not a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def number(name: str, value: Any, positive: bool = False) -> None:
    """A real option value (finite, and > 0 when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise ValueError(f"{name} must be a {'positive ' if positive else ''}number, got {value!r}")


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> None:
    """Add a conversion method; refuses to overwrite a name."""
    if method.name in _METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    _METHODS[method.name] = method


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(known_methods())}")
    return _METHODS[name]


def known_methods() -> list[str]:
    return sorted(_METHODS)


PS_DEFAULT_K = 16


def _check_ps(o: dict) -> None:
    """K or dy (Eq. 17 or 18), never both; a valid step and mode."""
    if o["K"] is not None and o["dy"] is not None:
        raise ValueError(f"give K (time steps) or dy (precision), not both: K={o['K']!r}, dy={o['dy']!r}")
    if o["K"] is not None:
        positive_int("K", o["K"])
    for name in ("dy", "step"):
        if o[name] is not None:
            number(name, o[name], positive=True)
    if o["mode"] not in PSNeuron.MODES:
        raise ValueError(f"mode must be one of {PSNeuron.MODES}, got {o['mode']!r}")
    if o["first_weight"] not in FIRST_WEIGHTS:
        raise ValueError(f"first_weight must be one of {FIRST_WEIGHTS}, got {o['first_weight']!r}")


def _build_ps(site: Site, o: dict) -> PSNeuron:
    """PS neuron fitted on the site's interval (Algorithm 1) with K steps (default 16) or precision dy,
    on a grid of step ``step`` (default: :func:`~psnn_lib.ps.grid.site_step`, the paper's 1e-3, finer on
    an interval narrower than 1). Warns when the grid, not the spikes, sets the site's error: the
    snapping term of its a-priori bound (:mod:`psnn_lib.ps.bound`) above both the quantisation term
    and ``SNAPPING_SHARE`` of the site's output range."""
    l, r = site.interval
    if not r > l:
        raise ValueError(f"empty interval [{l}, {r}] (the calibration inputs are constant); "
                         "widen it with convert(..., interval=(l, r))")
    K = None if o["dy"] is not None else int(o["K"] or PS_DEFAULT_K)
    params = fit_ps(site.spec.fn, l, r, o["dy"], o["step"] or site_step(l, r), K=K,
                    first_weight=o["first_weight"])
    params.activation = site.spec.name
    snapping, quantisation = params.snapping, params.error_bound - params.snapping
    if snapping > quantisation and snapping > SNAPPING_SHARE * float(params.target.max() - params.b):
        warnings.warn(f"its grid step {params.delta:.3g} gives {params.points} points on [{l:.4g}, {r:.4g}]: "
                      f"the error bound {params.error_bound:.3g} is mostly snapping ({snapping:.3g}), not the "
                      f"spikes' precision ({quantisation:.3g}); pass a smaller step")
    return PSNeuron(params, mode=o["mode"])


# a site's snapping term above this share of its output range (and above its quantisation term) is warned about
SNAPPING_SHARE = 1e-2


register_method(Method(
    name="ps",
    build=_build_ps,
    spikes=PSNeuron.spikes,
    defaults={"K": None, "dy": None, "step": None, "first_weight": "paper", "mode": "fast"},
    check=_check_ps,
    details=lambda neuron: {"step": neuron.params.delta, "error_bound": neuron.params.error_bound,
                            "table_bytes": neuron.table_bytes()},
))


def _build_fs(site: Site, o: dict) -> FSNeuron:
    name, K = site.spec.name, int(o["K"])
    if name in ("relu", "relu6"):
        alpha = o["alpha"] if o["alpha"] is not None else site.interval[1]
        alpha = min(alpha, 6.0) if name == "relu6" else alpha
        if not alpha > 0:
            raise ValueError(f"FS ReLU needs alpha > 0, got {alpha:g}")
        return FSNeuron(relu_params(alpha, K, name))
    params = lookup(load_table(o["table"]), name, K)
    if params is None:
        where = o["table"] or "the FS table that ships with psnn_lib"
        if not o["train"]:
            raise ValueError(f"no trained FS parameters for {name} with K={K} in {where}; train them "
                             f"with `python -m psnn_lib.neurons.fs_train --activations {name} --K {K} "
                             "--out FILE` and pass table=FILE, or pass train=True")
        params = train_fs(site.spec.fn, K, restarts=o["restarts"], steps=o["steps"], points=o["points"])
        params.activation = name
    return FSNeuron(params)


def _check_fs(o: dict) -> None:
    positive_int("K", o["K"])
    if o["alpha"] is not None:
        number("alpha", o["alpha"], positive=True)


register_method(Method(
    name="fs",
    build=_build_fs,
    spikes=FSNeuron.spikes,
    defaults={"K": 16, "alpha": None, "table": None, "train": False,
              "restarts": 8, "steps": 1000, "points": 20_000},
    check=_check_fs,
    details=lambda neuron: {"table_bytes": neuron.table_bytes()},
))


def _accepts_rate(spec: ActivationSpec) -> Optional[str]:
    if spec.name in ("relu", "relu6"):
        return None
    return "rate-coded IF neurons convert ReLU and ReLU6 only (use method='ps' or 'fs')"


def _build_rate(site: Site, o: dict) -> IFNeuron:
    l, r = site.interval
    theta = min(r, 6.0) if site.spec.name == "relu6" else r
    if not theta > 0:
        raise ValueError(f"its calibrated inputs are never positive (r = {r:g}); "
                         "an IF threshold needs r > 0")
    return IFNeuron(theta, int(o["T"]), o["v_init"])


register_method(Method(
    name="rate",
    build=_build_rate,
    spikes=IFNeuron.spikes,
    defaults={"T": 32, "v_init": 0.0},
    accepts=_accepts_rate,
    passes=lambda o: int(o["T"]),
    check=lambda o: (positive_int("T", o["T"]), number("v_init", o["v_init"])),
    details=lambda neuron: {"table_bytes": neuron.table_bytes()},
))


from . import signed_methods  # noqa: E402,F401  paper 2's neurons register themselves
