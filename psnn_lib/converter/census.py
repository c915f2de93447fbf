"""The census of a converted model: what each weight layer and analog operation computes, and
which sites' spikes reach it, observed in a forward pass with every site exact.

The fan-outs behind the synaptic operations (SOPs, :meth:`Census.fanouts`) and the cost model
(:mod:`.cost`) are functions of it and of the spike counts, never a pass of their own. A
converted model takes one census per shape of its inputs (but the batch dimension): on the
first calibration batch, and on the first call with inputs of another shape (a sentence batch
of another length, an image of another size), in eval mode, so that every call is priced at
its own shapes (:func:`merged`). That is one extra forward pass per new shape; shapes inside
objects that are not tensors (a Hugging Face cache) are not part of the key.

Per call of a *weight layer* it keeps the layer's dense multiply-accumulates (MACs), its weights
and biases, its outputs, and its synaptic connections from each site. The weight layers are
``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``, ``nn.Linear`` and Hugging Face's ``Conv1D``
modules, ``F.linear`` / ``F.conv*d`` calls whose weight is a parameter or buffer (or a view of
one), and ``matmul``, ``mm``, ``bmm`` and ``einsum`` with exactly one operand on a parameter or
buffer.

A site's output is followed as spikes through views, slices, concatenation, max pooling,
batch norm, adds and dropout into the weight layers it reaches, and no further: an analog
operation, an average or a weight layer turns what it passes on into analog values. Each
element that reaches a layer drives the layer's *fan-out*, as in paper 1, Sect. 4.3:

- a convolution: ``out_channels / groups * kernel area / stride area`` (exact away from the borders);
- a transposed convolution: ``out_channels / groups * kernel area``;
- a linear layer: ``out_features``;
- a product with a weight: its MACs per element of the other operand.

An element reaches a layer unless it was dropped on the way: indexing, ``narrow``, ``split``,
``chunk``, ``select``, ``unbind`` and max pooling pass on only their share of a site's elements.

Per call of an *analog operation* (what :func:`~.sites.analog_kind` names: softmax,
normalisation, attention, analog functions, products of two signals) the census keeps its
MACs: one per output element, and for a product of matrices one per term of each sum.
``nn.MultiheadAttention`` is one analog call that counts its projections too and reads their
weights, dense even where spikes reach it.

Three more kinds of call are kept apart:

- batch norm, as folded into the layer before it: one bias add per output, and its channels'
  biases read;
- an add of two signals (a residual connection): one add per output;
- an average (average pooling, ``mean``): one add per input.

Every call says two more things:

- whether it depends on a site's output: a multi-pass method then runs it at every pass, while
  otherwise the converter computes it once per inference (:mod:`.invariant`);
- whether its input went through an analog operation, an average or a weight layer since the
  last site: then it receives analog values, not spikes.

Only operations that go through ``__torch_function__`` are seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

from .sites import MATRIX_PRODUCTS, analog_kind, weight_storages

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
_TRANSPOSED_FUNCTIONS = {F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
_AVERAGES = {F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
             F.adaptive_avg_pool3d, torch.avg_pool1d, torch.adaptive_avg_pool1d, torch.mean, torch.Tensor.mean}
_SLICES = {torch.Tensor.__getitem__, torch.narrow, torch.Tensor.narrow, torch.split, torch.Tensor.split,
           torch.chunk, torch.Tensor.chunk, torch.select, torch.Tensor.select, torch.unbind, torch.Tensor.unbind,
           torch.index_select, torch.Tensor.index_select}
_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.add_,
         torch.Tensor.__iadd__}


def _is_conv1d_hf(module: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2): a linear layer with its weight stored (in, out)."""
    return type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None \
        and module.weight.dim() == 2


def module_fanout(module: nn.Module) -> Optional[float]:
    """Weights each input element of a weight layer module drives (None: not a weight layer)."""
    if isinstance(module, _CONV):
        return module.out_channels / module.groups * math.prod(module.kernel_size) / math.prod(module.stride)
    if isinstance(module, _TRANSPOSED):
        return module.out_channels / module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return float(module.out_features)
    if _is_conv1d_hf(module):
        return float(module.weight.shape[1])
    return None


def call_fanout(function: Callable, args: tuple, kwargs: dict, shape: torch.Size) -> float:
    """Fan-out of a call ``function(*args, **kwargs)`` of ``F.linear``, ``F.conv*d`` or
    ``F.conv_transpose*d`` with a weight of ``shape``."""
    if function is F.linear:
        return float(shape[0])
    if function in _TRANSPOSED_FUNCTIONS:  # weight (in, out / groups, *kernel)
        return float(shape[1] * math.prod(shape[2:]))
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    dims = _CONV_FUNCTIONS[function]
    stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
    stride = [stride] * dims if isinstance(stride, int) else list(stride)
    return shape[0] / groups * math.prod(shape[2:]) / math.prod(stride)


@dataclass
class LayerCall:
    """One call, over the whole census batch.

    ``kind`` is "weights" (a weight layer), "analog" (an analog operation), "batch norm" (folded
    into the layer before it), "add" (of two signals) or "average" (pooling). ``macs``: its dense
    multiply-accumulates; ``adds``: its additions beside them (one per output of a layer with a
    bias, of a batch norm, of an add; one per input of an average); ``weights`` and ``biases``:
    elements it reads; ``outputs``: elements; ``spikes_from``: site -> synaptic connections (the
    site's output elements reaching the call times its fan-out); ``after_site``: depends on a site
    (runs at every pass); ``analog_input``: its input went through an analog operation, an
    average or a weight layer since the last site."""

    name: str
    kind: str
    macs: float
    adds: float
    weights: int
    biases: int
    outputs: float
    spikes_from: dict[str, float] = field(default_factory=dict)
    after_site: bool = False
    analog_input: bool = False


@dataclass
class Census:
    """The calls of a forward pass of ``samples`` inputs, and each site's output elements."""

    samples: float
    calls: list[LayerCall]
    site_elements: dict[str, float]

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


def merged(censuses: Iterable[tuple["Census", float]]) -> Census:
    """One census per sample from several, each weighted by the samples it stands for (calls of
    one name and kind summed; a call only some censuses have counts in those only)."""
    parts = [(c, w) for c, w in censuses if w > 0]
    total = sum(w for _, w in parts)
    if not total:
        raise ValueError("no census stands for any sample")
    calls: dict[tuple[str, str, int], LayerCall] = {}
    sites: dict[str, float] = {}
    for census, weight in parts:
        share = weight / total / census.samples
        seen: dict[tuple[str, str], int] = {}
        for call in census.calls:
            nth = seen[(call.name, call.kind)] = seen.get((call.name, call.kind), -1) + 1
            scaled = replace(call, macs=call.macs * share, adds=call.adds * share, outputs=call.outputs * share,
                             spikes_from={s: c * share for s, c in call.spikes_from.items()})
            key = (call.name, call.kind, nth)
            if key in calls:
                old = calls[key]
                scaled = replace(old, macs=old.macs + scaled.macs, adds=old.adds + scaled.adds,
                                 outputs=old.outputs + scaled.outputs,
                                 spikes_from={s: old.spikes_from.get(s, 0.0) + scaled.spikes_from.get(s, 0.0)
                                              for s in {*old.spikes_from, *scaled.spikes_from}})
            calls[key] = scaled
        for site, n in census.site_elements.items():
            sites[site] = sites.get(site, 0.0) + n * share
    return Census(1.0, list(calls.values()), sites)


def _einsum_macs(equation: str, operands: list[torch.Tensor], out: torch.Tensor) -> float:
    """Multiply-accumulates of an einsum: its output elements times the sizes of the summed letters
    (an ellipsis stands for dimensions it keeps)."""
    equation = equation.replace(" ", "")
    inputs = equation.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for spec, t in zip(inputs, operands):
        before, _, after = spec.partition("...")
        sizes.update(zip(before, t.shape[:len(before)]))
        sizes.update(zip(after, t.shape[t.dim() - len(after):]))
    kept = equation.split("->")[1] if "->" in equation else "".join(
        c for c in sizes if sum(i.count(c) for i in inputs) == 1)
    return float(out.numel() * math.prod(n for c, n in sizes.items() if c not in kept))


def _attention_macs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    """Scores, softmax and weighted values of scaled dot-product attention."""
    return float(q.numel() // q.shape[-1] * k.shape[-2] * (q.shape[-1] + v.shape[-1] + 1))


def _mha(args: tuple, kwargs: dict) -> tuple[float, int, int, float]:
    """MACs, weights, biases and bias adds of ``F.multi_head_attention_forward``: the q, k, v and
    output projections (from their weights' shapes) and attention over the heads."""
    names = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias")
    given = {**dict(zip(names, args)), **kwargs}
    q, k, v, e = given["query"], given["key"], given["value"], given["embed_dim_to_check"]
    out_w = args[11] if len(args) > 11 else kwargs.get("out_proj_weight")
    out_b = args[12] if len(args) > 12 else kwargs.get("out_proj_bias")
    in_w, in_b = given.get("in_proj_weight"), given.get("in_proj_bias")
    rows_q, rows_k = q.numel() // q.shape[-1], k.numel() // k.shape[-1]
    projections = (rows_q * q.shape[-1] + 2 * rows_k * k.shape[-1]) * e + rows_q * e * e
    length_q = q.shape[0] if q.dim() == 3 else q.shape[-2]  # (L, N, E) as the function takes it
    length_k = k.shape[0] if k.dim() == 3 else k.shape[-2]
    batch = rows_q // length_q
    attention = batch * length_q * length_k * (2 * e + given["num_heads"])
    weights = sum(w.numel() for w in (in_w, out_w) if isinstance(w, torch.Tensor))
    weights = weights or 4 * e * e  # separate q, k, v projection weights
    biases = sum(b.numel() for b in (in_b, out_b) if isinstance(b, torch.Tensor))
    return float(projections + attention), weights, biases, float((2 * rows_q + 2 * rows_k) * e if biases else 0)


def _analog_macs(func: Any, args: tuple, kwargs: dict, out: Any) -> float:
    """Multiply-accumulates of an analog call: one per output element, and for a product of
    matrices one per term of each of its sums."""
    if func is F.scaled_dot_product_attention:
        q, k, v = (*args, *(kwargs[n] for n in ("query", "key", "value")[len(args):]))[:3]
        return _attention_macs(q, k, v)
    if func in MATRIX_PRODUCTS:
        return _product_macs(func, args, out)
    return float(sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)))


def _product_macs(func: Any, args: tuple, out: torch.Tensor) -> float:
    if func is torch.einsum:
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        return _einsum_macs(args[0], operands, out)
    first = args[1] if func is torch.Tensor.__rmatmul__ else args[0]
    return float(out.numel() * first.shape[-1])


class _Watch(TorchFunctionMode):
    """Tags every tensor computed from a site call's output, through every operation but a weight
    layer, with the share of that call's elements it carries; whether an analog operation or a
    weight layer came since the last site (its values are then analog, not spikes); and that it
    depends on a site, through everything. Records each weight layer, analog operation, batch
    norm and add of two signals with the tags of its input. Inside a site or a weight layer
    module (``opaque``) the inner operations are its own."""

    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.tags = WeakTensorKeyDictionary()  # tensor -> ({site call id: share}, analog since, depends on a site)
        self.site_calls: dict[int, tuple[str, int]] = {}  # call id -> (site, output elements)
        self.calls: list[tuple[LayerCall, dict[int, float], float]] = []  # (call, site calls reaching it, fan-out)
        self.names: dict[str, int] = {}  # calls so far per name: a second call of one is "name #2"
        self.opaque = 0
        self.stack: list[str] = []
        self.weights = weights

    def on_weights(self, t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() in self.weights

    def sources(self, *values: Any) -> tuple[dict[int, float], bool, bool]:
        shares: dict[int, float] = {}
        analog = dependent = False
        for t in tree_leaves(values):
            if isinstance(t, torch.Tensor) and t in self.tags:
                calls, a, d = self.tags[t]
                for c, s in calls.items():
                    shares[c] = min(1.0, shares.get(c, 0.0) + s)
                analog, dependent = analog or a, dependent or d
        return shares, analog, dependent

    def tag(self, out: Any, calls: dict[int, float], analog: bool, dependent: bool) -> None:
        if not dependent:
            return
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                old, old_analog, _ = self.tags.get(t, ({}, False, True))
                self.tags[t] = ({**old, **calls}, analog or old_analog, True)

    def record(self, call: LayerCall, inputs: Any, out: Any, fan: float = 0.0) -> None:
        """Record a call (with the tags of ``inputs``); the output of a weight layer, an analog
        operation or an average carries analog values and no spike, any other the input's tags."""
        calls, analog, dependent = self.sources(inputs)
        n = self.names[call.name] = self.names.get(call.name, 0) + 1
        call.name = call.name if n == 1 else f"{call.name} #{n}"
        call.after_site, call.analog_input = dependent, analog
        self.calls.append((call, calls if call.kind == "weights" else {}, fan))
        ends = call.kind in ("weights", "analog", "average")
        self.tag(out, {} if ends else calls, analog or ends, dependent)

    def weight_call(self, name: str, inputs: Any, out: torch.Tensor, fan: float, macs: float,
                    weight: torch.Tensor, bias: Optional[torch.Tensor]) -> None:
        self.record(LayerCall(name, "weights", macs, out.numel() if bias is not None else 0, weight.numel(),
                              0 if bias is None else bias.numel(), out.numel()), inputs, out, fan)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.opaque:
            return out
        where = self.stack[-1] if self.stack else "<model>"
        name = f"{where}: {getattr(func, '__name__', func)}"
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        if (func is F.linear or func in _CONV_FUNCTIONS or func in _TRANSPOSED_FUNCTIONS) and self.on_weights(weight):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            x = args[0] if args else kwargs["input"]
            fan = call_fanout(func, args, kwargs, weight.shape)
            macs = x.numel() * fan if func in _TRANSPOSED_FUNCTIONS else out.numel() * (weight.numel() // weight.shape[0])
            self.weight_call(name, x, out, fan, macs, weight, bias if isinstance(bias, torch.Tensor) else None)
            return out
        if func in MATRIX_PRODUCTS:
            operands = [a for a in tree_leaves(args) if isinstance(a, torch.Tensor)]
            held = [a for a in operands if self.on_weights(a)]
            if len(held) == 1 and len(operands) == 2:
                signal = next(a for a in operands if a is not held[0])
                macs = _product_macs(func, args, out)
                self.weight_call(name, signal, out, macs / signal.numel(), macs, held[0], None)
                return out
        if func is F.multi_head_attention_forward:
            macs, weights, biases, adds = _mha(args, kwargs)
            self.record(LayerCall(f"{name} (attention with its projections)", "analog", macs, adds, weights, biases,
                                  out[0].numel()), args[:3], out)
            return out
        if func is F.batch_norm:
            self.record(LayerCall(f"{name} (folded)", "batch norm", 0.0, out.numel(), 0,
                                  args[0].shape[1] if args[0].dim() > 1 else 1, out.numel()), args[0], out)
            return out
        if func in _ADDS and sum(isinstance(a, torch.Tensor) and a.numel() > 1 and not self.on_weights(a)
                                 for a in args[:2]) == 2:
            self.record(LayerCall(name, "add", 0.0, out.numel(), 0, 0, out.numel()), args[:2], out)
            return out
        if func in _AVERAGES and isinstance(out, torch.Tensor):
            x = args[0] if args else kwargs["input"]
            self.record(LayerCall(name, "average", 0.0, x.numel(), 0, 0, out.numel()), x, out)
            return out
        kind = analog_kind(func, args, self.weights)
        if kind is not None and kind != "max pooling":
            self.record(LayerCall(f"{name} ({kind})", "analog", _analog_macs(func, args, kwargs, out), 0.0, 0, 0,
                                  sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))), args, out)
            return out
        calls, analog, dependent = self.sources(args, kwargs)
        if calls and (func in _SLICES or kind == "max pooling"):  # the max of spike trains is a spike train
            source = args[0] if args else next(iter(kwargs.values()))
            for t in tree_leaves(out):  # each piece passes on its own share of the site's elements
                if isinstance(t, torch.Tensor):
                    piece = min(1.0, t.numel() / max(source.numel(), 1))
                    self.tag(t, {c: s * piece for c, s in calls.items()}, analog, dependent)
            return out
        self.tag(out, calls, analog, dependent)
        return out


def take_census(model: nn.Module, sites: dict[str, nn.Module], run: Callable[[], Any], samples: int) -> Census:
    """The census of one forward pass ``run()`` of ``model`` on ``samples`` inputs (under
    ``torch.no_grad``), ``sites`` its site modules by name (see the module docstring)."""
    watch, owner = _Watch(weight_storages(model)), {id(site): name for name, site in sites.items()}
    top = f"<{type(model).__name__}>"
    names = {id(m): name or top for name, m in model.named_modules()}

    def enter(module: nn.Module, args: tuple, kwargs: dict) -> None:  # a site or a weight layer
        watch.stack.append(names.get(id(module), type(module).__name__))
        watch.opaque += 1

    def leave_weights(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        watch.opaque -= 1
        name = watch.stack.pop()
        if not watch.opaque:
            x = args[0] if args else next(iter(kwargs.values()))
            fan = module_fanout(module)
            hf = _is_conv1d_hf(module)
            macs = x.numel() * fan if isinstance(module, _TRANSPOSED) else \
                out.numel() * (module.weight.shape[0] if hf else module.weight.numel() // module.weight.shape[0])
            watch.weight_call(name, x, out, fan, macs, module.weight, getattr(module, "bias", None))

    def leave_site(module: nn.Module, args: tuple, out: Any) -> None:
        watch.opaque -= 1
        watch.stack.pop()
        if not watch.opaque and isinstance(out, torch.Tensor):
            call = len(watch.site_calls)
            watch.site_calls[call] = (owner[id(module)], out.numel())
            watch.tags[out] = ({call: 1.0}, False, True)

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
    elements = dict.fromkeys(sites, 0.0)
    for site, n in watch.site_calls.values():
        elements[site] += n
    calls = []
    for call, reaching, fan in watch.calls:
        for c, share in reaching.items():
            site, n = watch.site_calls[c]
            call.spikes_from[site] = call.spikes_from.get(site, 0.0) + n * share * fan
        calls.append(call)
    return Census(float(samples), calls, elements)


def shape_key(values: Any) -> tuple:
    """The shapes of a call's tensors but their first (batch) dimension, and their dtypes: calls of
    one key have one census."""
    return tuple((tuple(t.shape[1:]), str(t.dtype)) for t in tree_leaves(values) if isinstance(t, torch.Tensor))

