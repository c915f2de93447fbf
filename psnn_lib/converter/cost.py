"""What a converted model costs per sample, beside its ANN: operations, memory traffic, energy.

A pure function of the model's census (:mod:`.census`: shapes observed with every site exact,
one census per shape of the inputs), its spike counts (:meth:`~.engine.ConvertedModel.spike_stats`)
and each method's :class:`~.registry.SpikeCost`; no inference pass of its own. Per sample:

*The ANN.* Every weight layer and analog operation once: its multiply-accumulates (MACs),
one accumulate (AC) per output of a layer with a bias, of a batch norm (as if folded into
the layer before it) and of an add of two signals, one per input of an average (pooling),
and its weights and biases read once.
Its activation functions are not counted (a ReLU is a comparison; counting a GELU's or a
sigmoid's operations would favour the SNN).

*The SNN* (``passes`` network passes per inference: 1 for PS and FS, whose neurons spike
within a layer's pass, T for rate coding and paper 2's neurons):

- what depends on no site (the first layer on the real-valued input) runs once, as in the
  ANN, where the converter computes it once per inference (the invariant prefix of a traced
  model, :mod:`.invariant`); at every pass where it does not (``prefix_once`` False);
- a weight layer that receives spikes (nothing analog between the sites and it): one
  operation per synaptic event (spike times fan-out, the SOPs of paper 1, Sect. 4.3): an AC,
  the spike's value folded into the weights, or a MAC for a spike carrying a magnitude; the
  method's operations per receiving neuron and step (PS: one AC, Horner's rule for the
  weights d(t) = 2^(s+K-t) of Eq. 3; FS: one MAC by its trained d(t); signed spikes of two
  values: one AC subtracting the second weight copy's sum); its adds (bias) at every pass;
  its weights read at every time step of the sites that drive it (times the method's weight
  copies), its biases at every pass;
- a layer or analog operation whose input went through an analog operation, an average or a
  weight layer after a site (analog values, not spikes), every product of two signals, batch
  norm, averages and adds of two signals after a site: dense MACs and adds, and weight reads,
  at every pass;
- every neuron, every one of its time steps: one AC per membrane update, its membranes read
  and written, and the values it reads from a table of its own (PS: its reset h_i(t), Eq. 2).

Memory counts parameters and neuron state (and PS's tables), as SpikingJelly's simple energy
model does; activations passed between layers are counted for neither network. A sequence
model's layers count every position they compute, padding included, in both networks; its
neurons count real tokens only. Energy: MACs times ``e_mac_pj``, ACs times ``e_ac_pj``, and
for the second total bytes times ``e_memory_pj_per_byte``. The defaults are the 45 nm,
32-bit float figures of Horowitz (2014) (MAC = multiply 3.7 pJ + add 0.9 pJ) and 3.12 pJ per
bit of memory access as STEP (Shen et al., 2025) uses it, by way of SpikingJelly 2.0's simple
energy model: a convention for comparing counts, not a chip.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Optional

import pandas as pd

from .census import Census, LayerCall
from .registry import SpikeCost


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation and per byte, and the bytes of one value (a weight, a membrane).

    Defaults: 32-bit float at 45 nm, Horowitz (ISSCC 2014): a MAC is a multiply (3.7 pJ) and an
    add (0.9 pJ), an AC an add; memory 3.12 pJ per bit (24.96 pJ per byte), the figure STEP
    (Shen et al., 2025) uses and SpikingJelly 2.0's simple energy model takes from it."""

    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9
    e_memory_pj_per_byte: float = 24.96
    value_bytes: int = 4

    def __post_init__(self) -> None:
        for name in ("e_mac_pj", "e_ac_pj", "e_memory_pj_per_byte"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        value = self.value_bytes
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"value_bytes must be a positive int, got {value!r}")
        object.__setattr__(self, "value_bytes", int(value))

    @classmethod
    def preset(cls, name: str) -> "EnergyModel":
        """Horowitz's (2014) 45 nm figures for ``name``: "fp32" (the default), "fp16" (multiply 1.1 pJ,
        add 0.4 pJ) or "int8" (multiply 0.2 pJ, add 0.03 pJ), with their value sizes; memory per
        byte unchanged."""
        if name not in PRESETS:
            raise ValueError(f"unknown energy preset {name!r}; known: {sorted(PRESETS)}")
        return PRESETS[name]


PRESETS = {"fp32": EnergyModel(), "fp16": EnergyModel(1.5, 0.4, 24.96, 2), "int8": EnergyModel(0.23, 0.03, 24.96, 1)}


@dataclass(frozen=True)
class Counts:
    """Operations and bytes per sample: ``macs``, ``acs``, ``parameter_bytes`` (weights and biases
    read), ``state_bytes`` (neuron state read and written, and table look-ups)."""

    macs: float = 0.0
    acs: float = 0.0
    parameter_bytes: float = 0.0
    state_bytes: float = 0.0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def energy(self, model: EnergyModel, memory: bool = True) -> float:
        """pJ of the operations, and with ``memory`` of the bytes too."""
        ops = self.macs * model.e_mac_pj + self.acs * model.e_ac_pj
        if not memory:
            return ops
        return ops + (self.parameter_bytes + self.state_bytes) * model.e_memory_pj_per_byte


@dataclass
class CostReport:
    """Per sample: ``rows`` (one per layer call, analog operation and site: what the ANN and the
    SNN spend there), the totals ``ann`` and ``snn`` (:class:`Counts`), and the ``energy``
    model they are priced with."""

    rows: list[dict]
    ann: Counts
    snn: Counts
    energy: EnergyModel

    def totals(self) -> dict[str, float]:
        """Energies in pJ per sample, operations only and with memory, for the ANN and the SNN,
        and the counts behind them."""
        out = {}
        for net, counts in (("ann", self.ann), ("snn", self.snn)):
            out |= {f"{net}_{k}": v for k, v in asdict(counts).items()}
            out[f"{net}_pj_ops"] = counts.energy(self.energy, memory=False)
            out[f"{net}_pj_total"] = counts.energy(self.energy)
        return out

    def table(self) -> pd.DataFrame:
        """The rows as a table, one per call and site (a name called twice has two rows)."""
        return pd.DataFrame(self.rows).set_index("name")


def conversion_cost(census: Census, sites: list[dict], costs: dict[str, SpikeCost], passes: int,
                    energy: EnergyModel, prefix_once: bool = True) -> CostReport:
    """The cost per sample of a converted model (see the module docstring): ``census`` of its
    layers, ``sites`` its sites' counts per sample (``site``, ``neurons``, ``spikes`` and
    ``time_steps``, as :attr:`~.network_stats.NetworkStats.rows`), ``costs`` each site's
    :class:`SpikeCost`, ``passes`` network passes per inference, ``prefix_once``: whether what
    depends on no site runs once per inference (else at every pass)."""
    n, b = census.samples, energy.value_bytes
    sites = {r["site"]: r for r in sites}
    rows, ann, snn = [], Counts(), Counts()
    for call in census.calls:
        dense = Counts(call.macs / n, call.adds / n, b * (call.weights + call.biases))
        ann += dense
        driven = {s: c for s, c in call.spikes_from.items() if census.site_elements.get(s) and s in sites}
        if not call.after_site and prefix_once:
            spent = dense
        elif call.kind == "weights" and not call.analog_input and driven:
            spent = _spike_driven(call, driven, census, sites, costs, passes, b)
        else:
            spent = Counts(passes * dense.macs, passes * dense.acs, passes * dense.parameter_bytes)
        snn += spent
        rows.append({"name": call.name, "kind": call.kind, "ann_macs": dense.macs, **asdict(spent)})
    for name, row in sites.items():
        c, steps = costs[name], row["neurons"] * row["time_steps"]
        spent = Counts(0.0, steps * c.updates, 0.0, steps * b * (2 * c.state_values + c.table_values))
        snn += spent
        rows.append({"name": name, "kind": "neurons", "ann_macs": 0.0, **asdict(spent)})
    return CostReport(rows, ann, snn, energy)


def _spike_driven(call: LayerCall, driven: dict[str, float], census: Census, sites: dict[str, dict],
                  costs: dict[str, SpikeCost], passes: int, value_bytes: int) -> Counts:
    """A weight layer that receives spikes: its synaptic events (a site's spikes per sample times its
    connections to the layer per site neuron), its receivers' operations per step, its bias adds,
    its weights read per time step and its biases per pass."""
    events = {"ac": 0.0, "mac": 0.0}
    for site, connections in driven.items():
        events[costs[site].event] += sites[site]["spikes"] * connections / census.site_elements[site]
    steps = max(sites[s]["time_steps"] for s in driven)
    receivers = call.outputs / census.samples * steps
    cost = max((costs[s] for s in driven), key=lambda c: (c.receiver_macs, c.receiver_acs, c.weight_copies))
    return Counts(events["mac"] + receivers * cost.receiver_macs,
                  events["ac"] + receivers * cost.receiver_acs + passes * call.adds / census.samples,
                  value_bytes * (steps * cost.weight_copies * call.weights + passes * call.biases))


def energy_columns(totals: Optional[dict], prefix: str = "") -> dict[str, Optional[float]]:
    """Table columns of a converted model's energy per sample in µJ (from :meth:`CostReport.totals`),
    operations only and with memory, and its ANN's; None where it was not costed."""
    get = (lambda key: totals[key] / 1e6) if totals else (lambda key: None)
    return {f"{prefix}energy, ops (µJ)": get("snn_pj_ops"), f"{prefix}energy (µJ)": get("snn_pj_total"),
            "ANN energy, ops (µJ)": get("ann_pj_ops"), "ANN energy (µJ)": get("ann_pj_total")}
