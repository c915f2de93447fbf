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
    return ActivationSpec(f"module:{label}", _Frozen(copy.copy(module).eval(), label), label)


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
}
_UNTABLED = (nn.CELU, nn.Hardtanh, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Hardshrink, nn.Softshrink)
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
# kept analog on purpose: not element-wise (paper 1 leaves softmax out of scope)
NOT_ELEMENTWISE = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
# element-wise-looking but per-channel or gated: cannot be one shared neuron
UNSUPPORTED_MODULES = (nn.PReLU, nn.RReLU, nn.GLU, nn.Threshold)


def module_activation(module: nn.Module) -> Optional[ActivationSpec]:
    """The spec of an element-wise activation module, or None if it is none.

    Raises :class:`UnsupportedActivation` for activation modules that one
    shared neuron cannot represent (PReLU's per-channel slopes, GLU, ...).
    """
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
    ((F.selu, torch.selu, torch.selu_), "selu", ("inplace",)),
    ((F.elu,), "elu", ("alpha", "inplace")),
    ((F.leaky_relu,), "leaky_relu", ("negative_slope", "inplace")),
    ((F.softplus,), "softplus", ("beta", "threshold")),
]:
    for _t in _targets:
        _FUNCTIONS[_t] = (_name, _extra)
_DEFAULTS = {"approximate": "none", "alpha": 1.0, "negative_slope": 0.01, "beta": 1.0, "threshold": 20.0,
             "inplace": False}
# element-wise functions the converter cannot handle: the probe reports them if seen
_UNSUPPORTED_FUNCTIONS = {F.prelu: "prelu", F.rrelu: "rrelu", F.glu: "glu", F.celu: "celu",
                          F.hardtanh: "hardtanh", F.logsigmoid: "logsigmoid", F.softsign: "softsign",
                          F.threshold: "threshold", F.hardshrink: "hardshrink", F.softshrink: "softshrink",
                          F.tanhshrink: "tanhshrink"}
NOT_ELEMENTWISE_FUNCTIONS = {F.softmax, F.log_softmax, F.softmin, torch.softmax, torch.log_softmax,
                             "softmax", "log_softmax"}


def call_activation(node: torch.fx.Node) -> Optional[ActivationSpec]:
    """Spec of an fx ``call_function``/``call_method`` activation node, else None.

    Raises :class:`UnsupportedActivation` when an argument is not a constant
    (a slope computed at run time) or the function is recognised but not
    supported.
    """
    if node.op not in ("call_function", "call_method"):
        return None
    target = node.target
    if node.op == "call_function" and target in _UNSUPPORTED_FUNCTIONS:
        raise UnsupportedActivation(_UNSUPPORTED_FUNCTIONS[target], "no shared-neuron conversion")
    if target not in _FUNCTIONS or (node.op == "call_method") != isinstance(target, str):
        return None
    name, extra = _FUNCTIONS[target]
    values = dict(_DEFAULTS)
    values.update(zip(extra, node.args[1:]))
    values.update({k: v for k, v in node.kwargs.items() if k in extra})
    if any(isinstance(values[k], torch.fx.Node) for k in extra):
        raise UnsupportedActivation(f"{name} at {node.name}", "an argument is computed at run time")
    if name == "gelu":
        return _gelu(values["approximate"])
    if name == "leaky_relu":
        return _leaky(float(values["negative_slope"]))
    if (name == "elu" and values["alpha"] != 1.0) or (
            name == "softplus" and (values["beta"], values["threshold"]) != (1.0, 20.0)):
        params = {k: values[k] for k in extra if k != "inplace"}
        fn = partial(getattr(F, name), **params)
        label = f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})"
        fn.__qualname__ = label
        return ActivationSpec(f"function:{label}", fn, label)
    return activation_spec(name)


def is_not_elementwise(node: torch.fx.Node) -> bool:
    """Softmax-like call or module node (kept analog; reported)."""
    return node.op in ("call_function", "call_method") and node.target in NOT_ELEMENTWISE_FUNCTIONS


# What the probe watches: every activation function a forward pass may call.
_PROBED = {t for t in _FUNCTIONS if not isinstance(t, str)} | set(_UNSUPPORTED_FUNCTIONS) | {
    torch.Tensor.relu, torch.Tensor.relu_, torch.Tensor.sigmoid, torch.Tensor.sigmoid_,
    torch.Tensor.tanh, torch.Tensor.tanh_, torch.nn.functional.hardtanh_, torch.nn.functional.elu_,
    torch.nn.functional.leaky_relu_, torch.special.expit, torch.erf,
}


class ActivationProbe(TorchFunctionMode):
    """Record activation functions called outside converted sites.

    Use as a context manager around one forward pass; converted sites run
    inside :func:`site_scope`, so their own calls are not counted.
    ``found`` maps ``"module path: function"`` to a call count. ``torch.erf``
    is watched too: an erf outside a site is almost always a hand-written GELU.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.found: dict[str, int] = {}
        self._inside = 0
        self._stack: list[str] = []
        self._handles = []
        for name, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(partial(self._enter, name)))
            self._handles.append(module.register_forward_hook(self._leave))

    def _enter(self, name: str, module: nn.Module, args: Any) -> None:
        self._stack.append(name or "<model>")

    def _leave(self, module: nn.Module, args: Any, out: Any) -> None:
        self._stack.pop()

    def __enter__(self):
        _ACTIVE.append(self)
        return super().__enter__()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _PROBED and not self._inside:
            where = self._stack[-1] if self._stack else "<model>"
            label = f"{where}: {getattr(func, '__name__', str(func))}"
            self.found[label] = self.found.get(label, 0) + 1
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc) -> None:
        _ACTIVE.remove(self)
        for h in self._handles:
            h.remove()
        return super().__exit__(*exc)


_ACTIVE: list[ActivationProbe] = []


class site_scope:
    """Context for a converted site's own computation: probes ignore it."""

    def __enter__(self) -> None:
        for probe in _ACTIVE:
            probe._inside += 1

    def __exit__(self, *exc) -> None:
        for probe in _ACTIVE:
            probe._inside -= 1
