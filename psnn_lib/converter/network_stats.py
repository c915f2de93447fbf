"""Spike statistics of a converted network (paper 1, Sect. 4.3, Table 4).

Per site and in total, *per inference sample*: neurons, spikes, time steps,
FireRate (Eq. 26) and synaptic operations (SOPs). A SOP is one spike
arriving at one synapse: spikes of a site times its fan-out, the number of
weights each of its neurons drives in the next weight layer(s), read from the
model's census (:mod:`psnn_lib.converter.census`: the site's output followed as
spikes through views, slices, max pooling, batch norm and adds to the layers
that consume it, not through an analog operation or an average; a convolution
contributes ``out_channels / groups * kernel area / stride area``, exact away
from the borders, a linear layer ``out_features``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch import nn


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
