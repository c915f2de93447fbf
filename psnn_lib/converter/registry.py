"""The registry of conversion methods: which spiking neuron replaces an activation.

The converter (``engine.py``) knows nothing about any neuron, and no
neuron knows the converter: a method binds them. A method is registered
once with :func:`register_method` and says

- ``build(site, options)``: the neuron module for one activation site, given
  its :class:`Site` (activation, interval, observer and how the interval was
  chosen from it);
- ``accepts(spec)``: None if it can convert that activation, else why not;
- ``options``: its options, one frozen dataclass (the defaults in one place;
  ``__post_init__`` rejects bad values), built once from the keyword options
  of :func:`~.engine.convert` by :meth:`Method.parse` before any calibration
  pass (an unknown option is an error); ``build`` and the other functions get
  that instance;
- ``passes(options)``: how many forward passes one inference takes (1 for
  neurons that finish within one layer pass such as PS and FS; the time steps
  for rate coding and paper 2's neurons, which integrate over network time steps);
- ``spikes``: what its neurons emit (binary spikes, signed spikes, a look-up),
  shown in reports so nobody mistakes real values for spikes;
- ``details(neuron)``: extra report columns of one built neuron (its table
  memory in bytes, a PS grid step, ...);
- ``covers(neuron)``: the input range its neuron represents, where that is not
  the site's interval (numbers, or per-channel tensors; the report's
  ``clipped_fraction`` counts inputs outside it);
- ``cost(neuron)``: what its spikes cost where they arrive and what its neurons
  read and write per step (a :class:`SpikeCost`; :mod:`.cost` adds it up).

Time steps have one name, ``time_steps``, everywhere but at the front door: the
options keep each paper's letter (``K`` for paper 1's PS and FS neurons, ``T`` for
rate coding and paper 2's neurons), and :class:`~psnn_lib.ps.fit.PSParams` keeps
paper 1's notation (``K`` steps, ``T`` the thresholds T(t) of Eq. 1).

Every neuron module exposes ``stats`` (a :class:`~psnn_lib.neurons.stats.SpikeStats`),
``reset_stats()``, ``reset_state()``, ``MODES`` and a ``mode`` attribute.
The bindings are apart: ``ps``, ``fs`` and ``rate`` in :mod:`.methods`, paper 2's
signed-spike neurons in :mod:`.signed_methods`; the package ``psnn_lib.converter``
imports both, so every method is known once the converter is. A new method is one
more :func:`register_method` call, never an edit of the converter.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional, Union

from torch import nn

from ..activations import ActivationSpec
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
class SpikeCost:
    """What one neuron of a method costs per time step, and its spikes where they arrive (:mod:`.cost`).

    ``event``: the operation one spike costs at one synapse: "ac" (an accumulate: the spike's
    value is folded into the weights, or a sign picks add or subtract) or "mac" (a spike carrying
    a magnitude multiplies its weight). ``receiver_acs`` / ``receiver_macs``: operations per
    receiving neuron and step to weight each step's sum (PS: one add, doubling the sum by
    Horner's rule, since d(t) halves each step; FS: one multiply-add by its trained d(t)).
    ``weight_copies``: copies of the receiving layer's weights, each scaled by a spike value
    (signed spikes: one for positive spikes, one for negative ones, so that either is an
    accumulate; the receiver subtracts the second sum from the first, one add per step).
    ``table_values``: values each neuron reads from a table of its own per step (PS: its reset
    h_i(t); values a whole site shares, such as T(t) and d(t), are not counted).
    ``state_values``: values of state (membranes) each neuron reads and writes per step;
    ``updates``: its membrane updates per step, one accumulate each (a signed neuron: two)."""

    event: str = "ac"
    receiver_acs: int = 0
    receiver_macs: int = 0
    weight_copies: int = 1
    table_values: int = 0
    state_values: int = 1
    updates: int = 1

    def __post_init__(self) -> None:
        if self.event not in ("ac", "mac"):
            raise ValueError(f"a spike's event is 'ac' or 'mac', not {self.event!r}")
        for name in ("receiver_acs", "receiver_macs", "weight_copies", "table_values", "state_values", "updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (name == "weight_copies"):
                raise ValueError(f"{name} must be a count (an int >= {int(name == 'weight_copies')}), got {value!r}")


@dataclass(frozen=True)
class NoOptions:
    """The options of a method that takes none."""


@dataclass(frozen=True)
class Method:
    name: str
    build: Callable[[Site, Any], nn.Module]
    spikes: str
    options: type = NoOptions
    accepts: Callable[[ActivationSpec], Optional[str]] = lambda spec: None
    passes: Callable[[Any], int] = lambda options: 1
    details: Callable[[nn.Module], dict] = lambda neuron: {}
    covers: Callable[[nn.Module], Optional[tuple[Any, Any]]] = lambda neuron: None
    cost: Callable[[nn.Module], SpikeCost] = lambda neuron: SpikeCost()

    def parse(self, given: dict[str, Any]) -> Any:
        """The method's options (its ``options`` dataclass) from keyword options; an unknown one is an error."""
        names = [f.name for f in fields(self.options)]
        unknown = set(given) - set(names)
        if unknown:
            raise TypeError(f"method {self.name!r} has no option(s) {sorted(unknown)}; it takes {sorted(names)}")
        return self.options(**given)


def positive_int(name: str, value: Any) -> int:
    """An option that counts (time steps, ...): a positive integer (a Python or NumPy int), not a
    bool or a float; returned as an ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def number(name: str, value: Any, positive: bool = False) -> float:
    """A real option value (finite, and > 0 when ``positive``); returned as a ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise ValueError(f"{name} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def checked(options: Any, name: str, check: Callable[..., Any], **how: Any) -> None:
    """Set a frozen options dataclass's field ``name`` to ``check(name, value, **how)`` (a checked
    value of the plain Python type: ``K=np.int64(8)`` is stored as ``8``)."""
    object.__setattr__(options, name, check(name, getattr(options, name), **how))


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
