"""psnn_lib: ANN-to-SNN conversion with Precise Spiking neurons (paper 1) and signed spikes (paper 2).

The public API is imported lazily (PEP 562), so ``import psnn_lib.ps.fit``
loads the fitting core alone, not the converter.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "ActivationSpec": "activations", "known_activations": "activations",
    "register_activation": "activations", "resolve_activation": "activations",
    "fit_ps": "ps.fit", "PSParams": "ps.fit",
    "PSNeuron": "neurons.ps", "FSNeuron": "neurons.fs", "IFNeuron": "neurons.rate",
    "SignedIFNeuron": "neurons.signed",
    "joint_calibration": "through_time.calibrate", "layerwise_calibration": "through_time.calibrate",
    "SpikeStats": "neurons.stats",
    "convert": "converter.engine", "ConversionError": "converter.engine",
    "ConvertedModel": "converter.engine", "ConversionReport": "converter.report",
    "save_converted": "converter.saving", "load_converted": "converter.saving",
    "Method": "converter.registry", "Site": "converter.registry", "get_method": "converter.registry",
    "known_methods": "converter.registry", "register_method": "converter.registry",
    "SpikeCost": "converter.registry", "EnergyModel": "converter.cost", "CostReport": "converter.cost",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'psnn_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
