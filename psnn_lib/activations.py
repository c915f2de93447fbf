"""Registry of activation functions with exact torch definitions.

PS neurons fit *any* activation (paper 1, Sect. 3); the registry names the
common ones so that a fit is reproducible from a string, and
:func:`resolve_activation` also accepts any torch callable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ActivationSpec:
    """A named activation: the torch function and how it is spelt."""

    name: str
    fn: Activation
    description: str


def _leaky_relu(alpha: float) -> Activation:
    return lambda x: F.leaky_relu(x, negative_slope=alpha)


_REGISTRY: dict[str, ActivationSpec] = {}


def register_activation(name: str, fn: Activation, description: str = "") -> None:
    """Add an activation under ``name`` (lower case); refuses to overwrite."""
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError(f"activation {name!r} is already registered")
    _REGISTRY[key] = ActivationSpec(key, fn, description or name)


for _name, _fn, _desc in [
    ("relu", F.relu, "max(0, x)"),
    ("relu6", F.relu6, "min(max(0, x), 6)"),
    ("leaky_relu", _leaky_relu(0.01), "LeakyReLU, alpha = 0.01 (leaky_relu:ALPHA for another slope)"),
    ("gelu", lambda x: F.gelu(x, approximate="none"), "GELU, exact: x * Phi(x) with erf"),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), "GELU, tanh approximation"),
    ("silu", F.silu, "SiLU / swish: x * sigmoid(x)"),
    ("mish", F.mish, "x * tanh(softplus(x))"),
    ("selu", F.selu, "SELU (Klambauer et al.)"),
    ("elu", F.elu, "ELU, alpha = 1"),
    ("softplus", F.softplus, "log(1 + exp(x))"),
    ("hardswish", F.hardswish, "x * relu6(x + 3) / 6"),
    ("hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6"),
    ("sigmoid", torch.sigmoid, "1 / (1 + exp(-x))"),
    ("tanh", torch.tanh, "tanh(x)"),
]:
    register_activation(_name, _fn, _desc)


def known_activations() -> list[str]:
    """Names accepted by :func:`resolve_activation`, sorted."""
    return sorted(_REGISTRY)


def resolve_activation(fn: Union[str, Activation]) -> tuple[str, Activation]:
    """Return ``(name, torch_callable)`` for a registry name or a callable.

    ``"leaky_relu:0.2"`` selects LeakyReLU with slope 0.2. A callable is used
    as given; its name is taken from ``__qualname__`` (used in cache keys and
    reports), so give distinct functions distinct names.
    """
    if callable(fn):
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        return f"callable:{getattr(fn, '__module__', '')}.{name}", fn
    if not isinstance(fn, str):
        raise TypeError(f"activation must be a name or a callable, not {type(fn).__name__}")
    key = fn.strip().lower()
    if key.startswith("leaky_relu:"):
        try:
            alpha = float(key.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad LeakyReLU slope in {fn!r}; use e.g. 'leaky_relu:0.1'") from None
        if not math.isfinite(alpha):
            raise ValueError(f"LeakyReLU slope must be finite, got {alpha}")
        return f"leaky_relu:{alpha:g}", _leaky_relu(alpha)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown activation {fn!r}; known: {', '.join(known_activations())} "
            "(or pass any torch callable)"
        )
    return key, _REGISTRY[key].fn
