"""The census of a converted model: what each weight layer and analog operation computes, and
which sites' spikes reach it, observed in one forward pass of the first calibration batch.

It is what the cost model (:mod:`.cost`) and, for models whose activation modules were
swapped because they do not trace, the synaptic operations (:meth:`Census.fanouts`) are
computed from; both are functions of it and of the spike counts, never a pass of their own.
The converter takes it on the first calibration batch with every site exact.

Per call of a weight layer (``nn.Conv1d/2d/3d``, ``nn.Linear``, Hugging Face's ``Conv1D``, or
``F.linear`` / ``F.conv*d`` with a parameter as weight outside those modules) the census keeps
its dense multiply-accumulates, its weights and biases, its outputs, and the synaptic
connections from each site: a site's output followed through every operation (views,
pooling, add, batch norm, normalisations, ...) into the layer, each of its elements driving
the layer's *fan-out* (paper 1, Sect. 4.3: ``out_channels / groups * kernel area / stride
area`` for a convolution, exact away from the borders; ``out_features`` for a linear layer).
Per call of an analog operation (what :func:`~.sites.analog_kind` names: softmax,
normalisation, attention, analog functions, products of two signals; max pooling aside,
which passes spikes on) it keeps its multiply-accumulates: one per output element, and for a
product of two matrices (``matmul``, ``bmm``, ``einsum``, attention) one per term of each sum.

Every call says whether it depends on a site's output (then a multi-pass method runs it at
every pass; otherwise the converter computes it once per inference, :mod:`.invariant`) and
whether its input went through an analog operation since the last site (then it receives
analog values, not spikes). Only operations that go through ``__torch_function__`` are seen.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

from .sites import analog_kind, weight_storages

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
# analog kinds that do not make spikes analog: the max of spike trains is a spike train
_SPIKE_PRESERVING = {"max pooling"}


def _is_conv1d_hf(module: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2): a linear layer with its weight stored (in, out)."""
    return type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None \
        and module.weight.dim() == 2


def module_fanout(module: nn.Module) -> Optional[float]:
    """Weights each input element of a weight layer drives (None: not a weight layer)."""
    if isinstance(module, _CONV):
        return module.out_channels / module.groups * math.prod(module.kernel_size) / math.prod(module.stride)
    if isinstance(module, nn.Linear):
        return float(module.out_features)
    if _is_conv1d_hf(module):
        return float(module.weight.shape[1])
    return None


def call_fanout(function: Callable, args: tuple, kwargs: dict, shape: torch.Size) -> float:
    """Fan-out of a call ``function(*args, **kwargs)`` of ``F.linear`` or ``F.conv*d`` with a weight of ``shape``."""
    if function is F.linear:
        return float(shape[0])
    dims = CONV_FUNCTIONS[function]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    stride = [stride] * dims if isinstance(stride, int) else list(stride)
    return shape[0] / groups * math.prod(shape[2:]) / math.prod(stride)


def _fan_in(weight: torch.Tensor, hf_conv1d: bool = False) -> int:
    """Products summed into each output of a weight layer: a convolution's in_channels / groups
    times its kernel area, a linear layer's in_features (``Conv1D``: its weight's first dimension)."""
    return weight.shape[0] if hf_conv1d else weight.numel() // weight.shape[0]


@dataclass
class LayerCall:
    """One call of a weight layer (``kind`` "weights") or an analog operation ("analog"), over
    the whole census batch: ``macs`` dense multiply-accumulates, ``weights`` and ``biases``
    (elements it reads), ``outputs`` (elements), ``spikes_from`` (site -> synaptic connections:
    that site's output elements reaching the call times the call's fan-out), ``after_site``
    (depends on a site: runs at every pass) and ``analog_input`` (its input went through an
    analog operation since the last site)."""

    name: str
    kind: str
    macs: float
    weights: int
    biases: int
    outputs: int
    spikes_from: dict[str, float] = field(default_factory=dict)
    after_site: bool = False
    analog_input: bool = False

    @property
    def biases_added(self) -> int:
        """Bias additions of the call: one per output of a layer with a bias."""
        return self.outputs if self.biases else 0


@dataclass
class Census:
    """The calls of one forward pass of ``samples`` inputs, and each site's output elements."""

    samples: int
    calls: list[LayerCall]
    site_elements: dict[str, int]

    def fanouts(self) -> dict[str, float]:
        """Fan-out of each site's neurons: its synaptic connections over its output elements (0 for a
        site whose output reaches no weight layer, or that did not run). A site module called
        several times in the pass gets the mean over its calls weighted by their output sizes: its
        spikes times that fan-out are its SOPs exactly when its calls fire at the same rate."""
        total = dict.fromkeys(self.site_elements, 0.0)
        for call in self.calls:
            for site, connections in call.spikes_from.items():
                total[site] += connections
        return {s: total[s] / n if n else 0.0 for s, n in self.site_elements.items()}


def _einsum_macs(equation: str, operands: list[torch.Tensor], out: torch.Tensor) -> float:
    """Multiply-accumulates of an einsum: its output elements times the sizes of the summed letters."""
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for letters, t in zip(inputs, operands):
        if "." in letters:
            return float(out.numel())  # ellipsis: counted as element-wise
        sizes.update(zip(letters, t.shape))
    kept = equation.split("->")[1] if "->" in equation else "".join(
        sorted(c for c in sizes if sum(i.count(c) for i in inputs) == 1))
    return float(out.numel() * math.prod(n for c, n in sizes.items() if c in string.ascii_letters and c not in kept))


def _analog_macs(func: Any, args: tuple, kwargs: dict, out: Any) -> float:
    """Multiply-accumulates of an analog call: one per output element, and for a product of
    matrices one per term of each of its sums (attention: scores, softmax and weighted values)."""
    if func is F.scaled_dot_product_attention:
        q, k, v = args[:3]
        rows = q.numel() // q.shape[-1]
        return float(rows * k.shape[-2] * (q.shape[-1] + v.shape[-1] + 1))
    if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm):
        return float(out.numel() * args[0].shape[-1])
    if func is torch.einsum:
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        return _einsum_macs(args[0], operands, out)
    return float(sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)))


class _Watch(TorchFunctionMode):
    """Tags every tensor computed from a site call's output: with that call, through every
    operation but a weight layer; whether an analog operation or a weight layer came since the
    last site (its values are then analog, not spikes); and that it depends on a site, through
    everything. Records each weight layer and analog call with the tags of its input. Inside a
    site or a weight layer (``opaque``) the inner operations are its own."""

    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.tags = WeakTensorKeyDictionary()  # tensor -> (site call ids, analog since, depends on a site)
        self.site_calls: dict[int, tuple[str, int]] = {}  # call id -> (site, output elements)
        self.calls: list[tuple[LayerCall, frozenset, float]] = []  # (call, site calls reaching it, fan-out)
        self.opaque = 0
        self.stack: list[str] = []
        self.weights = weights

    def sources(self, *values: Any) -> tuple[frozenset, bool, bool]:
        tags = [self.tags[t] for t in tree_leaves(values) if isinstance(t, torch.Tensor) and t in self.tags]
        return (frozenset().union(*(c for c, _, _ in tags)), any(a for _, a, _ in tags),
                any(d for _, _, d in tags))

    def tag(self, out: Any, calls: frozenset, analog: bool, dependent: bool) -> None:
        if not dependent:
            return
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                old_calls, old_analog, _ = self.tags.get(t, (frozenset(), False, True))
                self.tags[t] = (calls | old_calls, analog or old_analog, True)

    def weight_call(self, name: str, inputs: Any, out: torch.Tensor, fan: float, fan_in: int,
                    weight: torch.Tensor, bias: Optional[torch.Tensor]) -> None:
        """Record a weight layer's call; its output carries analog values (currents, not spikes)."""
        calls, analog, dependent = self.sources(inputs)
        self.calls.append((LayerCall(name, "weights", float(out.numel() * fan_in), weight.numel(),
                                     0 if bias is None else bias.numel(), out.numel(), after_site=dependent,
                                     analog_input=analog), calls, fan))
        self.tag(out, frozenset(), True, dependent)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.opaque:
            return out
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        where = self.stack[-1] if self.stack else "<model>"
        if (func is F.linear or func in CONV_FUNCTIONS) and isinstance(weight, nn.Parameter):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            self.weight_call(f"{where}: {func.__name__}", (args[:1], kwargs.get("input")), out,
                             call_fanout(func, args, kwargs, weight.shape), _fan_in(weight), weight, bias)
            return out
        calls, analog, dependent = self.sources(args, kwargs)
        kind = analog_kind(func, args, self.weights)
        if kind is not None and kind not in _SPIKE_PRESERVING:
            self.calls.append((LayerCall(f"{where}: {getattr(func, '__name__', func)} ({kind})", "analog",
                                         _analog_macs(func, args, kwargs, out), 0, 0,
                                         sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)),
                                         after_site=dependent, analog_input=analog), frozenset(), 0.0))
            analog = True
        self.tag(out, calls, analog, dependent)
        return out


def take_census(model: nn.Module, sites: dict[str, nn.Module], run: Callable[[], Any], samples: int) -> Census:
    """The census of one forward pass ``run()`` of ``model`` on ``samples`` inputs (under
    ``torch.no_grad``), ``sites`` its site modules by name (see the module docstring)."""
    watch, owner = _Watch(weight_storages(model)), {id(site): name for name, site in sites.items()}
    names = {id(m): name for name, m in model.named_modules()}

    def enter(module: nn.Module, args: tuple, kwargs: dict) -> None:  # a site or a weight layer
        watch.stack.append(names.get(id(module), type(module).__name__))
        watch.opaque += 1

    def leave_weights(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        watch.opaque -= 1
        name = watch.stack.pop()
        if not watch.opaque:
            watch.weight_call(name, (args, kwargs), out, module_fanout(module),
                              _fan_in(module.weight, _is_conv1d_hf(module)), module.weight,
                              getattr(module, "bias", None))

    def leave_site(module: nn.Module, args: tuple, out: Any) -> None:
        watch.opaque -= 1
        watch.stack.pop()
        if not watch.opaque and isinstance(out, torch.Tensor):
            call = len(watch.site_calls)
            watch.site_calls[call] = (owner[id(module)], out.numel())
            watch.tags[out] = (frozenset({call}), False, True)

    def enter_plain(module: nn.Module, args: tuple) -> None:
        watch.stack.append(names.get(id(module), type(module).__name__))

    def leave_plain(module: nn.Module, args: tuple, out: Any) -> None:
        watch.stack.pop()

    handles = []
    for m in model.modules():
        if id(m) in owner:
            handles += [m.register_forward_pre_hook(enter, with_kwargs=True), m.register_forward_hook(leave_site)]
        elif module_fanout(m) is not None:
            handles += [m.register_forward_pre_hook(enter, with_kwargs=True),
                        m.register_forward_hook(leave_weights, with_kwargs=True)]
        else:
            handles += [m.register_forward_pre_hook(enter_plain), m.register_forward_hook(leave_plain)]
    try:
        with torch.no_grad(), watch:
            run()
    finally:
        for h in handles:
            h.remove()
    elements = dict.fromkeys(sites, 0)
    for site, n in watch.site_calls.values():
        elements[site] += n
    calls = []
    for call, reaching, fan in watch.calls:
        for c in reaching:
            site, n = watch.site_calls[c]
            call.spikes_from[site] = call.spikes_from.get(site, 0.0) + n * fan
        calls.append(call)
    return Census(samples, calls, elements)

