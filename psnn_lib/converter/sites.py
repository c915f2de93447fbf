"""Find the activations of a torch model: modules, functional calls, leftovers.

The converter (``psnn_lib.converter.engine``) replaces every *element-wise* activation by a
spiking neuron. This module answers three questions for it:

- :func:`module_activation`: is this ``nn.Module`` an element-wise activation,
  and which function does it compute? (torch.nn and Hugging Face types)
- :func:`call_activation`: is this torch.fx node a functional activation call
  (``F.relu``, ``torch.sigmoid``, ``x.tanh()``, ...) and with which arguments?
- :class:`ActivationProbe`: which activation functions still run *outside*
  the converted sites during a real forward pass? This catches what neither
  tracing nor module swapping can see (a functional call in an untraceable
  model, an activation inside a custom autograd function), so nothing is left
  analog silently.

Softmax-like operations are not element-wise; as in paper 1 (Sect. 4) they
stay analog and are reported as such.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from ..activations import ActivationSpec, activation_spec, registered_activations



class _Frozen:
    """An activation module used as a plain function (a private eval copy)."""

    def __init__(self, module: nn.Module, label: str) -> None:
        self.module = module
        self.__qualname__ = label

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.module(x)


def _module_fn(module: nn.Module) -> ActivationSpec:
    label = f"{type(module).__name__}({module.extra_repr()})"
    frozen = copy.copy(module).eval()
    if getattr(frozen, "inplace", False):
        frozen.inplace = False  # the function of the module, never overwriting its argument
    return ActivationSpec(f"module:{label}", _Frozen(frozen, label.replace(", inplace=True", "")), label)


def _leaky(slope: float) -> ActivationSpec:
    return activation_spec(f"leaky_relu:{slope}")


def _gelu(approximate: str) -> ActivationSpec:
    return activation_spec("gelu" if approximate == "none" else "gelu_tanh")


# torch.nn modules -> spec (a function of the module): modules whose parameters
# choose the function, those without a table entry (their own function), and the
# table's other modules, one function each
def _fixed(spec: ActivationSpec) -> Callable[[nn.Module], ActivationSpec]:
    return lambda module: spec


_PARAMETRISED: dict[type, Callable[[nn.Module], ActivationSpec]] = {
    nn.GELU: lambda m: _gelu(m.approximate),
    nn.LeakyReLU: lambda m: _leaky(m.negative_slope),
    nn.ELU: lambda m: activation_spec("elu") if m.alpha == 1.0 else _module_fn(m),
    nn.Softplus: lambda m: activation_spec("softplus") if (m.beta, m.threshold) == (1.0, 20.0) else _module_fn(m),
    # ReLU spelt otherwise: Hardtanh(0, 6) is ReLU6, Threshold(0, 0) is ReLU
    nn.Hardtanh: lambda m: activation_spec("relu6") if (m.min_val, m.max_val) == (0, 6) else _module_fn(m),
    nn.Threshold: lambda m: activation_spec("relu") if (m.threshold, m.value) == (0, 0) else _module_fn(m),
}
_UNTABLED = (nn.CELU, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Hardshrink, nn.Softshrink)
_TORCH_MODULES: dict[type, Callable[[nn.Module], ActivationSpec]] = {
    **{type(spec.module()): _fixed(spec) for spec in registered_activations()
       if spec.module and type(spec.module()) not in _PARAMETRISED},
    **_PARAMETRISED,
    **{t: _module_fn for t in _UNTABLED},
}
# Hugging Face transformers activation classes (matched by name: no import needed)
_HF_MODULES: dict[str, Callable[[nn.Module], ActivationSpec]] = {
    "GELUActivation": lambda m: activation_spec("gelu"),
    "NewGELUActivation": lambda m: activation_spec("gelu_tanh"),
    "PytorchGELUTanh": lambda m: activation_spec("gelu_tanh"),
    "GELUTanh": lambda m: activation_spec("gelu_tanh"),
    "FastGELUActivation": lambda m: activation_spec("gelu_tanh"),
    "SiLUActivation": lambda m: activation_spec("silu"),
    "MishActivation": lambda m: activation_spec("mish"),
    "QuickGELUActivation": _module_fn,
    "ClippedGELUActivation": _module_fn,
    "AccurateGELUActivation": _module_fn,
    "ReLUSquaredActivation": _module_fn,
    "LaplaceActivation": _module_fn,
    "SwiGLUActivation": None,  # not element-wise: reported unsupported
}
# element-wise-looking but per-channel or gated: cannot be one shared neuron
UNSUPPORTED_MODULES = (nn.PReLU, nn.RReLU, nn.GLU)


def module_activation(module: nn.Module) -> Optional[ActivationSpec]:
    """The spec of an element-wise activation module, or None if it is none.

    Raises :class:`UnsupportedActivation` for activation modules that one
    shared neuron cannot represent (PReLU's per-channel slopes, GLU, ...).
    A module of its own kind says what it computes with an ``activation_spec()``
    method (e.g. the trainable clipping layers of paper 2).
    """
    if callable(getattr(module, "activation_spec", None)):
        return module.activation_spec()
    make = _TORCH_MODULES.get(type(module))
    if make is None and type(module).__name__ in _HF_MODULES:
        make = _HF_MODULES[type(module).__name__]
        if make is None:
            raise UnsupportedActivation(type(module).__name__, "not element-wise")
    if make is not None:
        return make(module)
    if isinstance(module, UNSUPPORTED_MODULES):
        raise UnsupportedActivation(type(module).__name__, "per-channel, random or gated: no shared neuron")
    return None


def _is_activation_module(module: nn.Module) -> bool:
    """Is ``module`` an activation (convertible or not)? Its own calls are the activation: a site
    replaces it, or the converter reports it as not converted."""
    try:
        return module_activation(module) is not None
    except UnsupportedActivation:
        return True


class UnsupportedActivation(Exception):
    """An activation the converter recognises but cannot turn into neurons."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.what, self.why = what, why


# Functional activations: target -> (registry name, names of the extra arguments)
_FUNCTIONS: dict[Any, tuple[str, tuple[str, ...]]] = {}
for _targets, _name, _extra in [
    ((F.relu, torch.relu, torch.relu_, F.relu_, "relu", "relu_"), "relu", ("inplace",)),
    ((F.relu6,), "relu6", ("inplace",)),
    ((F.gelu, "gelu"), "gelu", ("approximate",)),
    ((F.silu,), "silu", ("inplace",)),
    ((F.mish,), "mish", ("inplace",)),
    ((F.hardswish,), "hardswish", ("inplace",)),
    ((F.hardsigmoid,), "hardsigmoid", ("inplace",)),
    ((torch.sigmoid, F.sigmoid, torch.sigmoid_, "sigmoid", "sigmoid_"), "sigmoid", ()),
    ((torch.tanh, F.tanh, torch.tanh_, "tanh", "tanh_"), "tanh", ()),
    ((F.selu, torch.selu, torch.selu_, F.selu_), "selu", ("inplace",)),
    ((F.elu, F.elu_), "elu", ("alpha", "inplace")),
    ((F.leaky_relu, F.leaky_relu_), "leaky_relu", ("negative_slope", "inplace")),
    ((F.softplus,), "softplus", ("beta", "threshold")),
    # element-wise functions outside the table: converted as the function itself
    ((F.hardtanh, F.hardtanh_), "hardtanh", ("min_val", "max_val", "inplace")),
    ((F.threshold, F.threshold_), "threshold", ("threshold", "value", "inplace")),
    ((F.celu, F.celu_), "celu", ("alpha", "inplace")),
    ((F.logsigmoid,), "logsigmoid", ()),
    ((F.softsign,), "softsign", ()),
    ((F.hardshrink,), "hardshrink", ("lambd",)),
    ((F.softshrink,), "softshrink", ("lambd",)),
    ((F.tanhshrink,), "tanhshrink", ()),
    # ReLU spelt as a clamp: only clamp(min=0) and clamp(0, 6) are activations
    ((torch.clamp, torch.clip, torch.clamp_, torch.clip_, "clamp", "clip", "clamp_", "clip_"), "clamp",
     ("min", "max")),
    ((torch.clamp_min, torch.clamp_min_, "clamp_min", "clamp_min_"), "clamp", ("min",)),
]:
    for _t in _targets:
        _FUNCTIONS[_t] = (_name, _extra)
_DEFAULTS = {"approximate": "none", "alpha": 1.0, "negative_slope": 0.01, "beta": 1.0, "threshold": 20.0,
             "inplace": False, "min_val": -1.0, "max_val": 1.0, "lambd": 0.5, "min": None, "max": None}
# the function of each name outside the table, and the arguments at which it is a table entry
_PLAIN = {"hardtanh": F.hardtanh, "threshold": F.threshold, "celu": F.celu, "logsigmoid": F.logsigmoid,
          "softsign": F.softsign, "hardshrink": F.hardshrink, "softshrink": F.softshrink,
          "tanhshrink": F.tanhshrink, "elu": F.elu, "softplus": F.softplus}
_TABLE_AT: dict[tuple[str, tuple], str] = {
    ("hardtanh", (0, 6)): "relu6", ("threshold", (0, 0)): "relu", ("elu", (1.0,)): "elu",
    ("softplus", (1.0, 20.0)): "softplus", ("clamp", (0, None)): "relu", ("clamp", (0, 6)): "relu6",
    ("clamp", (0,)): "relu",
}
# element-wise functions the converter cannot handle (per-channel, random or gated)
_UNSUPPORTED_FUNCTIONS = {F.prelu: "prelu", F.rrelu: "rrelu", F.rrelu_: "rrelu", F.glu: "glu",
                          torch.prelu: "prelu", torch.rrelu: "rrelu", torch.rrelu_: "rrelu"}
# maximum with zero is ReLU too
_MAXIMUM = {torch.maximum, torch.max, torch.fmax, "maximum", "max", "fmax"}


def _is_zero(node: Any, x: torch.fx.Node) -> bool:
    """Is ``node`` a constant zero tensor (``torch.tensor(0.)``) or ``zeros_like(x)``?"""
    if not isinstance(node, torch.fx.Node):
        return False
    if node.op == "call_function" and node.target is torch.zeros_like:
        return node.args[0] is x
    if node.op == "get_attr":
        value = node.graph.owning_module
        for part in node.target.split("."):
            value = getattr(value, part)
        return isinstance(value, torch.Tensor) and value.numel() == 1 and float(value) == 0.0
    return False


def call_activation(node: torch.fx.Node) -> Optional[ActivationSpec]:
    """Spec of an fx ``call_function``/``call_method`` activation node, else None.

    ReLU's other spellings are ReLU sites: ``clamp(x, min=0)`` (ReLU6 with
    ``max=6``), ``hardtanh(x, 0, 6)``, ``threshold(x, 0, 0)`` and ``maximum``
    of x and a zero tensor. A clamp with other bounds is not an activation.
    Raises :class:`UnsupportedActivation` when an argument is not a constant
    (a slope computed at run time) or the function cannot be one shared neuron.
    """
    if node.op not in ("call_function", "call_method"):
        return None
    target = node.target
    if node.op == "call_function" and target in _UNSUPPORTED_FUNCTIONS:
        raise UnsupportedActivation(_UNSUPPORTED_FUNCTIONS[target], "per-channel, random or gated: no shared neuron")
    is_method = node.op == "call_method"
    if target in _MAXIMUM and is_method == isinstance(target, str) and len(node.args) == 2 and not node.kwargs:
        return activation_spec("relu") if _is_zero(node.args[1], node.args[0]) else None
    if target not in _FUNCTIONS or is_method != isinstance(target, str):
        return None
    name, extra = _FUNCTIONS[target]
    values = dict(_DEFAULTS)
    values.update(zip(extra, node.args[1:]))
    values.update({k: v for k, v in node.kwargs.items() if k in extra})
    if any(isinstance(values[k], torch.fx.Node) for k in extra):
        if name == "clamp":
            return None  # clamped to a tensor: not an activation
        raise UnsupportedActivation(f"{name} at {node.name}", "an argument is computed at run time")
    params = {k: values[k] for k in extra if k != "inplace"}
    table = _TABLE_AT.get((name, tuple(params.values())))
    if table is not None:
        return activation_spec(table)
    if name == "clamp":
        return None  # clamp(min=eps) and the like: not an activation
    if name == "gelu":
        return _gelu(values["approximate"])
    if name == "leaky_relu":
        return _leaky(float(values["negative_slope"]))
    if name in _PLAIN:
        fn = partial(_PLAIN[name], **params)
        label = f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})"
        return ActivationSpec(f"function:{label}", fn, label)
    return activation_spec(name)


def is_inplace(node: torch.fx.Node, module: Optional[nn.Module] = None) -> bool:
    """Does this activation node overwrite its input (``relu_``, ``inplace=True``)?"""
    if module is not None:
        return bool(getattr(module, "inplace", False))
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name.endswith("_") and not name.endswith("__"):
        return True
    extra = _FUNCTIONS.get(node.target, ("", ()))[1]
    if "inplace" not in extra:
        return False
    position = extra.index("inplace") + 1
    inplace = node.args[position] if len(node.args) > position else node.kwargs.get("inplace", False)
    return bool(inplace)


# What the probe watches: every activation function a forward pass may call ...
_PROBED = {t for t in _FUNCTIONS if not isinstance(t, str)} | set(_UNSUPPORTED_FUNCTIONS) | {
    torch.Tensor.relu, torch.Tensor.relu_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_,
    torch.Tensor.tanh, torch.Tensor.tanh_, torch.special.expit, torch.erf,
}
_CLAMPS = {torch.clamp, torch.clip, torch.clamp_, torch.clip_, torch.clamp_min, torch.clamp_min_,
           torch.Tensor.clamp, torch.Tensor.clip, torch.Tensor.clamp_, torch.Tensor.clip_,
           torch.Tensor.clamp_min, torch.Tensor.clamp_min_}
_PROBED -= _CLAMPS


def _relu_clamp(args: tuple, kwargs: dict) -> bool:
    """Is this clamp call a ReLU (lower bound 0; upper bound none or 6)?"""
    bounds = list(args[1:3]) + [None, None]
    low, high = kwargs.get("min", bounds[0]), kwargs.get("max", bounds[1])
    return isinstance(low, (int, float)) and low == 0 and high in (None, 6)
# non-linear element-wise functions that are not activations of the table (torch.X, x.X, x.X_, abs(x))
_ELEMENTWISE = [f for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
                               "atanh", "abs", "absolute", "square", "round", "sign", "sgn", "floor", "ceil",
                               "trunc", "frac", "exp2", "expm1", "log1p", "log2", "log10", "reciprocal", "erfc",
                               "erfinv", "logit", "sinc", "nan_to_num", "heaviside", "signbit", "fmod",
                               "remainder")
                for owner in (torch, torch.Tensor) for f in (getattr(owner, name, None), getattr(owner, name + "_", None))
                if f is not None] + [torch.Tensor.__abs__, torch.Tensor.__mod__, torch.Tensor.__floordiv__]
# ... and what stays analog: non-linearities that are not element-wise or not activations, by kind
_ANALOG_FUNCTIONS: dict[Any, str] = {
    **dict.fromkeys([F.softmax, F.log_softmax, F.softmin, torch.softmax, torch.log_softmax,
                     torch.Tensor.softmax, torch.Tensor.log_softmax], "softmax"),
    **dict.fromkeys([F.layer_norm, F.group_norm, F.instance_norm, F.rms_norm, F.local_response_norm,
                     F.normalize], "normalisation"),
    **dict.fromkeys([F.scaled_dot_product_attention, F.multi_head_attention_forward,
                     torch._native_multi_head_attention], "attention (softmax of products)"),
    **dict.fromkeys([torch.exp, torch.Tensor.exp, torch.log, torch.Tensor.log, torch.sqrt, torch.Tensor.sqrt,
                     torch.rsqrt, torch.Tensor.rsqrt, torch.pow, torch.Tensor.pow, torch.Tensor.__pow__,
                     torch.norm, torch.Tensor.norm, torch.linalg.vector_norm], "analog function"),
    **dict.fromkeys([F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
                     F.adaptive_max_pool3d, torch.max_pool1d, torch.max_pool2d, torch.max_pool3d],
                    "max pooling"),
    **dict.fromkeys(_CLAMPS, "clamp"),  # a ReLU clamp is counted as an activation before this
    **dict.fromkeys([torch.where, torch.Tensor.where], "selection"),
    **dict.fromkeys(_ELEMENTWISE, "element-wise function outside the activation table"),
}
# an activation inside a fused kernel: nn.TransformerEncoderLayer's inference fast path
_FUSED = {torch._transformer_encoder_layer_fwd: "fused transformer layer (its activation runs inside one kernel)"}
# products (and quotients) of two signals: gating such as squeeze-excitation, attention scores
# products of matrices (also what a weight used as a matrix computes, :mod:`.census`)
MATRIX_PRODUCTS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.mm,
                   torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, torch.einsum}
_PRODUCTS = {torch.mul, torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.mul_,
             torch.Tensor.__imul__, torch.div, torch.Tensor.div, torch.Tensor.__truediv__, *MATRIX_PRODUCTS}
_QUOTIENTS = {torch.div, torch.Tensor.div, torch.Tensor.__truediv__}


def weight_storages(model: nn.Module) -> set[int]:
    """The storages of a model's parameters and buffers (a tensor on one of them is a weight, or a view of one)."""
    return {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}


def analog_kind(func: Any, args: tuple, weights: set[int]) -> Optional[str]:
    """The kind of analog operation a call of ``func`` on ``args`` is (softmax, normalisation,
    attention, analog function, max pooling, ..., or a product or quotient of two signals:
    tensor arguments that are neither scalars nor on the ``weights`` storages), or None."""
    if func in _ANALOG_FUNCTIONS:
        return _ANALOG_FUNCTIONS[func]
    if func in _PRODUCTS and sum(isinstance(a, torch.Tensor) and a.numel() > 1
                                 and a.untyped_storage().data_ptr() not in weights for a in tree_leaves(args)) >= 2:
        return f"{'quotient' if func in _QUOTIENTS else 'product'} of two signals"
    return None


class ActivationProbe(TorchFunctionMode):
    """Record what runs outside converted sites during one forward pass.

    Use as a context manager around one forward pass; converted sites run
    inside :func:`site_scope`, so their own calls are not counted.
    ``found`` maps ``"module path: function"`` to a call count for every
    activation function (``torch.erf`` too: an erf outside a site is almost
    always a hand-written GELU); ``analog`` does the same for what stays
    analog by design: softmax, normalisations, attention, other analog
    functions, element-wise functions outside the activation table (``sin``,
    ``abs``, ``round``, ...) and products of two signals (gating such as
    squeeze-excitation, attention scores; a product with a parameter or buffer
    is a weight, not a gate). Calls inside an activation module are that
    activation (converted as a whole, or reported as not converted), never
    counted apart.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.found: dict[tuple[str, str], int] = {}  # (where, activation) -> calls
        self.analog: dict[tuple[str, str, str], int] = {}  # (where, op, kind) -> calls
        self._inside = 0
        self._stack: list[str] = []
        self._weights = weight_storages(model)
        self._handles = []
        top = f"<{type(model).__name__}, top level>"
        for name, module in model.named_modules():
            opaque = _is_activation_module(module)
            self._handles.append(module.register_forward_pre_hook(partial(self._enter, name or top, opaque)))
            self._handles.append(module.register_forward_hook(partial(self._leave, opaque)))

    def _enter(self, name: str, opaque: bool, module: nn.Module, args: Any) -> None:
        self._stack.append(name)
        self._inside += opaque

    def _leave(self, opaque: bool, module: nn.Module, args: Any, out: Any) -> None:
        self._stack.pop()
        self._inside -= opaque

    def __enter__(self):
        _ACTIVE.append(self)
        return super().__enter__()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not self._inside:
            where = self._stack[-1] if self._stack else "<model>"
            name = getattr(func, "__name__", str(func))
            if func in _PROBED or (func in _CLAMPS and _relu_clamp(args, kwargs or {})):
                _count(self.found, (where, name))
            elif func in _FUSED:
                _count(self.found, (where, _FUSED[func]))
            elif kind := analog_kind(func, args, self._weights):
                _count(self.analog, (where, name, kind))
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self)
        for h in self._handles:
            h.remove()
        return super().__exit__(*exc)


def _count(counter: dict, label: Any) -> None:
    counter[label] = counter.get(label, 0) + 1


_ACTIVE: list[ActivationProbe] = []


class site_scope:
    """Context for a converted site's own computation: probes ignore it."""

    def __enter__(self) -> None:
        for probe in _ACTIVE:
            probe._inside += 1

    def __exit__(self, *exc) -> None:
        for probe in _ACTIVE:
            probe._inside -= 1
