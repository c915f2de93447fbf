"""The one table of activation functions: name, exact torch function, module.

PS neurons fit *any* activation (paper 1, Sect. 3); the table names the
common ones so that a fit is reproducible from a string. Each entry is an
:class:`ActivationSpec`: the converter recognises modules and calls by it
(``psnn_lib.converter.sites``), the model builders make their activation
modules from it (``psnn_lib.models.cifar``), and :func:`resolve_activation`
also accepts any torch callable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ActivationSpec:
    """An activation: its name, the torch function, how it is spelt, and a
    factory of the ``nn.Module`` that computes it (None when torch has none).

    ``negative_slope``: for the ReLU family, the slope below zero (ReLU 0,
    LeakyReLU alpha; None for any other function); signed-spike neurons
    (paper 2) convert exactly these. ``bounds``: the input interval outside
    which the activation is constant (a clipped activation), or None; the
    converter never calibrates a site wider than its bounds. ``lipschitz``:
    an upper bound on sup |f'| over the reals (rounded up), which the a-priori
    error bound of a PS fit uses (:mod:`psnn_lib.ps.bound`); None if unknown.
    """

    name: str
    fn: Activation
    description: str = ""
    module: Optional[Callable[[], nn.Module]] = None
    negative_slope: Optional[float] = None
    bounds: Optional[tuple[float, float]] = None
    lipschitz: Optional[float] = None


_REGISTRY: dict[str, ActivationSpec] = {}


def register_activation(name: str, fn: Activation, description: str = "",
                        module: Optional[Callable[[], nn.Module]] = None,
                        negative_slope: Optional[float] = None,
                        lipschitz: Optional[float] = None) -> ActivationSpec:
    """Add an activation under ``name`` (lower case); refuses to overwrite."""
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError(f"activation {name!r} is already registered")
    spec = _REGISTRY[key] = ActivationSpec(key, fn, description or name, module, negative_slope,
                                           lipschitz=lipschitz)
    return spec


LEAKY_RELU_SLOPE = 0.01  # torch's default, the table's "leaky_relu"


def _leaky_relu(alpha: float) -> ActivationSpec:
    return ActivationSpec(f"leaky_relu:{alpha:g}", partial(F.leaky_relu, negative_slope=alpha),
                          f"LeakyReLU, alpha = {alpha:g}", partial(nn.LeakyReLU, alpha), alpha,
                          lipschitz=max(1.0, abs(alpha)))


# every function and module factory of the table is a module-level name or a
# functools.partial, so converted models pickle (torch.save of the whole model)
gelu = partial(F.gelu, approximate="none")
gelu_tanh = partial(F.gelu, approximate="tanh")


# lipschitz: sup |f'| rounded up (GELU's 1.1289 at x = 1.4; SiLU's 1.0998 at x = 2.4;
# Mish's 1.0885; SELU's lambda * alpha = 1.75810 just below 0; Hardswish's 1.5 at x = 3)
for _name, _fn, _desc, _module, _lipschitz in [
    ("relu", F.relu, "max(0, x)", nn.ReLU, 1.0),
    ("relu6", F.relu6, "min(max(0, x), 6)", nn.ReLU6, 1.0),
    ("leaky_relu", _leaky_relu(LEAKY_RELU_SLOPE).fn, "LeakyReLU, alpha = 0.01 (leaky_relu:ALPHA for another slope)",
     nn.LeakyReLU, 1.0),
    ("gelu", gelu, "GELU, exact: x * Phi(x) with erf", nn.GELU, 1.13),
    ("gelu_tanh", gelu_tanh, "GELU, tanh approximation", partial(nn.GELU, approximate="tanh"), 1.13),
    ("silu", F.silu, "SiLU / swish: x * sigmoid(x)", nn.SiLU, 1.1),
    ("mish", F.mish, "x * tanh(softplus(x))", nn.Mish, 1.09),
    ("selu", F.selu, "SELU (Klambauer et al.)", nn.SELU, 1.7582),
    ("elu", F.elu, "ELU, alpha = 1", nn.ELU, 1.0),
    ("softplus", F.softplus, "log(1 + exp(x))", nn.Softplus, 1.0),
    ("hardswish", F.hardswish, "x * relu6(x + 3) / 6", nn.Hardswish, 1.5),
    ("hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6", nn.Hardsigmoid, 1 / 6),
    ("sigmoid", torch.sigmoid, "1 / (1 + exp(-x))", nn.Sigmoid, 0.25),
    ("tanh", torch.tanh, "tanh(x)", nn.Tanh, 1.0),
]:
    register_activation(_name, _fn, _desc, _module,
                        {"relu": 0.0, "leaky_relu": LEAKY_RELU_SLOPE}.get(_name), _lipschitz)


def registered_activations() -> list[ActivationSpec]:
    """Every entry of the table (without parametrised variants such as ``leaky_relu:0.2``)."""
    return list(_REGISTRY.values())


def known_activations() -> list[str]:
    """Names accepted by :func:`resolve_activation`, sorted."""
    return sorted(_REGISTRY)


def activation_spec(name: str) -> ActivationSpec:
    """The table entry of a name; ``"leaky_relu:0.2"`` selects LeakyReLU with slope 0.2
    (``"leaky_relu:0.01"`` is the table's ``"leaky_relu"``: one name per function)."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name or a callable, not {type(name).__name__}")
    key = name.strip().lower()
    if key.startswith("leaky_relu:"):
        try:
            alpha = float(key.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad LeakyReLU slope in {name!r}; use e.g. 'leaky_relu:0.1'") from None
        if not math.isfinite(alpha):
            raise ValueError(f"LeakyReLU slope must be finite, got {alpha}")
        return _REGISTRY["leaky_relu"] if alpha == LEAKY_RELU_SLOPE else _leaky_relu(alpha)
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(known_activations())} "
                         "(or pass any torch callable)")
    return _REGISTRY[key]


def activation_module(name: str) -> nn.Module:
    """A fresh ``nn.Module`` computing the named activation."""
    spec = activation_spec(name)
    if spec.module is None:
        raise ValueError(f"activation {spec.name!r} has no torch module")
    return spec.module()


def known_lipschitz(fn: Union[str, Activation]) -> Optional[float]:
    """The table's Lipschitz constant of a name, or of a table function passed as its
    callable (the same object); None for any other callable."""
    if isinstance(fn, str):
        return activation_spec(fn).lipschitz
    return next((spec.lipschitz for spec in _REGISTRY.values() if spec.fn is fn), None)


def resolve_activation(fn: Union[str, Activation]) -> tuple[str, Activation]:
    """Return ``(name, torch_callable)`` for a table name or a callable.

    A callable is used as given; its name is taken from ``__qualname__``
    (used in cache keys and reports), so give distinct functions distinct names.
    """
    if callable(fn):
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        return f"callable:{getattr(fn, '__module__', '')}.{name}", fn
    spec = activation_spec(fn)
    return spec.name, spec.fn
