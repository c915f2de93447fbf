"""psnn_lib: ANN-to-SNN conversion with Precise Spiking neurons."""
__version__ = "0.1.0"

from . import fs_neuron, rate_neuron  # noqa: F401  (register the "fs" and "rate" methods)
from .activations import known_activations, register_activation, resolve_activation
from .convert import ConversionError, ConversionReport, ConvertedModel, convert
from .neuron_methods import Method, get_method, known_methods, register_method
from .ps_fit import PSParams, fit_ps
from .ps_neuron import PSNeuron

__all__ = [
    "ConversionError",
    "ConversionReport",
    "ConvertedModel",
    "Method",
    "PSNeuron",
    "PSParams",
    "convert",
    "fit_ps",
    "get_method",
    "known_activations",
    "known_methods",
    "register_activation",
    "register_method",
    "resolve_activation",
]
