"""psnn_lib: ANN-to-SNN conversion with Precise Spiking neurons."""
__version__ = "0.1.0"

from .activations import known_activations, register_activation, resolve_activation
from .ps_fit import PSParams, fit_ps
from .ps_neuron import PSNeuron

__all__ = [
    "PSNeuron",
    "PSParams",
    "fit_ps",
    "known_activations",
    "register_activation",
    "resolve_activation",
]
