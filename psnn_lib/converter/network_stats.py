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
its fan-outs observed in one forward pass by :func:`observed_fanouts`,
with the same rule and the same per-layer formula.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _fanout_of(module: nn.Module) -> Optional[float]:
    if isinstance(module, _CONV):
        return module.out_channels / module.groups * math.prod(module.kernel_size) / math.prod(module.stride)
    if isinstance(module, nn.Linear):
        return float(module.out_features)
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None \
            and module.weight.dim() == 2:  # Hugging Face (GPT-2): weight (in, out), x @ weight + bias
        return float(module.weight.shape[1])
    return None


_CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}


def _functional_fanout(gm: fx.GraphModule, node: fx.Node) -> Optional[float]:
    """Fan-out of a traced ``F.conv*d`` / ``F.linear`` call (custom conv modules trace to these)."""
    if node.target not in _CONV_FUNCTIONS and node.target is not F.linear:
        return None
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    return _call_fanout(node.target, node.args, node.kwargs, gm.get_parameter(weight.target).shape)


def _call_fanout(function: Callable, args: tuple, kwargs: dict, shape: torch.Size) -> float:
    """Fan-out of a call ``function(*args, **kwargs)`` of ``F.linear`` or ``F.conv*d`` with a weight of ``shape``."""
    if function is F.linear:
        return float(shape[0])
    dims = _CONV_FUNCTIONS[function]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    stride = [stride] * dims if isinstance(stride, int) else list(stride)
    return shape[0] / groups * math.prod(shape[2:]) / math.prod(stride)


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
                fan = _fanout_of(gm.get_submodule(node.target))
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


class _Sources(TorchFunctionMode):
    """Tags every tensor computed from a site call's output with that call, through any
    operation but a weight layer (there it counts the layer's fan-out for each tag of its
    input) and a site (whose output is tagged anew), as :func:`fanouts` walks the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.tags = WeakTensorKeyDictionary()  # tensor -> frozenset of call ids
        self.fan: dict[int, float] = {}  # call id -> fan-out reached
        self.opaque = 0  # > 0 inside a site or a weight layer: its inner operations are its own

    def sources(self, *values: Any) -> frozenset:
        return frozenset().union(*(self.tags.get(t, ()) for t in tree_leaves(values) if isinstance(t, torch.Tensor)))

    def count(self, calls: frozenset, fan: float) -> None:
        for call in calls:
            self.fan[call] += fan

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.opaque:
            return out
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        if (func is F.linear or func in _CONV_FUNCTIONS) and isinstance(weight, nn.Parameter):
            self.count(self.sources(args[:1], kwargs.get("input")), _call_fanout(func, args, kwargs, weight.shape))
        elif calls := self.sources(args, kwargs):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.tags[t] = calls | self.tags.get(t, frozenset())
        return out


def observed_fanouts(model: nn.Module, sites: dict[str, nn.Module], run: Callable[[], Any]) -> dict[str, float]:
    """Fan-out of each site's neurons observed in one forward pass ``run()`` of ``model``
    (under ``torch.no_grad``), for models whose activation modules were swapped for
    ``sites`` (module objects, by site name) because they do not trace.

    The same rule as :func:`fanouts` (paper 1, Sect. 4.3): a site's output is followed
    through every operation (views, dropout, pooling, add, normalisations, ...) and
    through modules without weights, into the weight layers that consume it, each
    counting :func:`_fanout_of` per call: ``nn.Conv1d/2d/3d``, ``nn.Linear`` and Hugging
    Face's ``Conv1D`` modules, and ``F.linear`` / ``F.conv*d`` calls with a parameter as
    weight outside those modules. Another site stops the walk; a site whose output reaches
    no weight layer (or that did not run) has fan-out 0. A site module called several times
    in the pass (a reused module) gets the mean of its calls' fan-outs weighted by their
    output sizes: its spikes times that fan-out are its SOPs exactly when its calls fire at
    the same rate. Only operations that go through ``__torch_function__`` are followed.
    """
    mode, owner, sizes = _Sources(), {id(site): name for name, site in sites.items()}, {}

    def enter(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not mode.opaque and id(module) not in owner:  # a weight layer consumes its input
            mode.count(mode.sources(args, kwargs), _fanout_of(module))
        mode.opaque += 1

    def leave(module: nn.Module, args: tuple, out: Any) -> None:
        mode.opaque -= 1
        if id(module) in owner and not mode.opaque and isinstance(out, torch.Tensor):
            call = len(sizes)
            sizes[call], mode.fan[call] = (owner[id(module)], out.numel()), 0.0
            mode.tags[out] = frozenset({call})

    handles = [h for m in model.modules() if id(m) in owner or _fanout_of(m) is not None
               for h in (m.register_forward_pre_hook(enter, with_kwargs=True), m.register_forward_hook(leave))]
    try:
        with torch.no_grad(), mode:
            run()
    finally:
        for h in handles:
            h.remove()
    total, neurons = dict.fromkeys(sites, 0.0), dict.fromkeys(sites, 0)
    for call, (name, n) in sizes.items():
        total[name] += n * mode.fan[call]
        neurons[name] += n
    return {name: total[name] / neurons[name] if neurons[name] else 0.0 for name in sites}


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
