"""Registry of conversion methods: which spiking neuron replaces an activation.

The converter (``convert.py``) knows nothing about any neuron. A method is
registered once with :func:`register_method` and says

- ``build(site, options)``: the neuron module for one activation site, given
  its :class:`Site` (activation, calibrated interval, observer);
- ``accepts(spec)``: None if it can convert that activation, else why not;
- ``passes(options)``: how many forward passes one inference takes (1 for
  neurons that finish within one layer pass such as PS and FS; T for
  rate coding, whose IF neurons integrate over T network time steps);
- ``spikes``: what its neurons emit (binary spikes, signed spikes, a look-up),
  shown in reports so nobody mistakes real values for spikes;
- ``defaults``: its options; unknown options are an error.

Every neuron module exposes ``stats`` (a :class:`~psnn_lib.ps_neuron.SpikeStats`),
``reset_stats()``, ``reset_state()``, ``MODES`` and a ``mode`` attribute.
PS is registered here; ``rate_neuron`` and ``fs_neuron`` register
theirs, and a new neuron (paper 2's signed spikes) plugs in the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from torch import nn

from .activation_sites import ActivationSpec
from .calibration import Observer
from .ps_fit import fit_ps
from .ps_neuron import PSNeuron


@dataclass
class Site:
    """One activation site of a model, after calibration."""

    name: str
    spec: ActivationSpec
    interval: tuple[float, float]
    observer: Optional[Observer] = None


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[[Site, dict], nn.Module]
    spikes: str
    defaults: dict = field(default_factory=dict)
    accepts: Callable[[ActivationSpec], Optional[str]] = lambda spec: None
    passes: Callable[[dict], int] = lambda options: 1

    def options(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise TypeError(f"method {self.name!r} has no option(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.defaults)}")
        return {**self.defaults, **given}


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


def _build_ps(site: Site, o: dict) -> PSNeuron:
    """PS neuron fitted on the site's interval (Algorithm 1) with K steps or precision dy."""
    l, r = site.interval
    if not r > l:
        raise ValueError(f"site {site.name}: empty interval [{l}, {r}] (the calibration inputs are constant); "
                         "widen it with convert(..., interval=(l, r))")
    params = fit_ps(site.spec.fn, l, r, o["dy"], o["step"], K=None if o["dy"] else o["K"],
                    first_weight=o["first_weight"])
    params.activation = site.spec.name
    return PSNeuron(params, mode=o["mode"])


register_method(Method(
    name="ps",
    build=_build_ps,
    spikes=PSNeuron.spikes,
    defaults={"K": 16, "dy": None, "step": 1e-3, "first_weight": "paper", "mode": "fast"},
))
