"""Spike statistics of a converted network (paper 1, Sect. 4.3, Table 4).

Per site and in total, *per inference sample*: neurons, spikes, time steps,
FireRate (Eq. 26) and synaptic operations (SOPs). A SOP is one spike
arriving at one synapse: spikes of a site times its fan-out, the number of
weights each of its neurons drives in the next weight layer(s). The fan-out
is read from the traced graph, following the site's output through
weight-free operations (pooling, flatten, add, batch norm, ...) to the
convolutions or linear layers (modules or traced ``F.conv2d`` / ``F.linear``
calls) that consume it: a convolution contributes
``out_channels / groups * kernel area / stride area`` (exact away from the
borders), a linear layer ``out_features`` (Hugging Face's ``Conv1D``, a
linear layer with its weight stored (in, out), likewise its out features).

A model that does not trace (its activation modules swapped instead) has
its fan-outs observed in one forward pass by
:meth:`~psnn_lib.converter.census.Census.fanouts`, with the same rule and
the same per-layer formula.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch.nn.functional as F
from torch import fx, nn

from .census import CONV_FUNCTIONS, call_fanout, module_fanout


def _functional_fanout(gm: fx.GraphModule, node: fx.Node) -> Optional[float]:
    """Fan-out of a traced ``F.conv*d`` / ``F.linear`` call (custom conv modules trace to these)."""
    if node.target not in CONV_FUNCTIONS and node.target is not F.linear:
        return None
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    return call_fanout(node.target, node.args, node.kwargs, gm.get_parameter(weight.target).shape)


def fanouts(gm: fx.GraphModule, sites: dict[str, fx.Node]) -> dict[str, float]:
    """Fan-out of each site's neurons (see the module docstring)."""
    site_targets = {n.target for n in sites.values()}
    result = {}
    for name, start in sites.items():
        total, seen, todo = 0.0, set(), list(start.users)
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "call_module":
                if node.target in site_targets:
                    continue
                fan = module_fanout(gm.get_submodule(node.target))
                if fan is not None:
                    total += fan
                    continue
            if node.op == "call_function":
                fan = _functional_fanout(gm, node)
                if fan is not None:
                    total += fan
                    continue
            if node.op == "output":
                continue
            todo.extend(node.users)
        result[name] = total
    return result


@dataclass
class NetworkStats:
    """Per-sample spike statistics; ``rows`` per site, the rest in total."""

    samples: int
    neurons: float
    spikes: float
    time_steps: int
    fire_rate: float
    synops: Optional[float]
    clipped_fraction: float = 0.0  # of all neuron inputs: outside the site's interval
    rows: list[dict] = field(default_factory=list)
    tokens: Optional[float] = None  # real tokens per sample (sequence models with a token mask)

    @property
    def spikes_per_token(self) -> Optional[float]:
        return self.spikes / self.tokens if self.tokens else None

    def as_dict(self) -> dict:
        per_token = {"tokens": self.tokens, "spikes_per_token": self.spikes_per_token} if self.tokens else {}
        return {"samples": self.samples, "neurons": self.neurons, "spikes": self.spikes, "time_steps": self.time_steps,
                "fire_rate": self.fire_rate, "synops": self.synops, "clipped_fraction": self.clipped_fraction,
                **per_token}


def network_stats(neurons: dict[str, nn.Module], samples: int, synapses: Optional[dict[str, float]],
                  tokens: Optional[int] = None) -> NetworkStats:
    """Collect the counters of every neuron module (after ``samples`` inputs holding
    ``tokens`` real tokens, for a sequence model converted with a token mask).

    The network FireRate applies Eq. 26 to the totals with the largest time steps
    of the network (all sites share them when converted with a fixed K or T).
    """
    if samples == 0:
        raise RuntimeError("no input has run through the converted model since its stats were reset")
    rows, total_n, total_s, total_c, synops = [], 0, 0, 0, 0.0
    for name, neuron in neurons.items():
        st = neuron.stats
        sop = st.spikes * synapses[name] / samples if synapses is not None else None
        rows.append({"site": name, "neurons": st.neurons / samples, "spikes": st.spikes / samples,
                     "negative_spikes": st.negative / samples, "time_steps": st.time_steps,
                     "fire_rate": st.fire_rate, "clipped_fraction": st.clipped_fraction, "synops": sop})
        total_n += st.neurons
        total_s += st.spikes
        total_c += st.clipped
        synops += sop or 0.0
    steps = max((r["time_steps"] for r in rows), default=0)
    bias = any(n.stats.bias_spike for n in neurons.values())
    rate = (total_s / total_n + bias) / steps if total_n and steps else float("nan")
    return NetworkStats(samples, total_n / samples, total_s / samples, steps, rate,
                        synops if synapses is not None else None, total_c / total_n if total_n else 0.0, rows,
                        tokens / samples if tokens is not None else None)
