"""Save and load a converted model's state as JSON (no pickle).

A converted model is its ANN (the user's weights, saved their way) plus the
converted state: the method, its options and, per site, the activation and
the interval [l, r]. Every method builds its neurons deterministically
from these (a PS fit, Algorithm 1, is exact arithmetic on its grid), so
:func:`load_converted` rebuilds the SNN with
``convert(model, method, interval={site: (l, r)}, **options)``. Each site
also stores a fingerprint (a digest of its neuron's outputs on fixed inputs)
so that a file that does not match the model or this version of the library
is a clear error, never a different SNN.

``torch.save(snn)`` / ``torch.load(path, weights_only=False)`` also round-trip
a whole converted model (with pickle, as for any torch module).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

import torch
from torch import nn

from .. import __version__
from .engine import ConversionError, ConvertedModel, convert
from .report import ConversionReport

FORMAT, VERSION = "psnn-converted", 1
_PROBE_POINTS = 1025


def fingerprint(neuron: nn.Module, interval: tuple[float, float], device: torch.device) -> str:
    """Digest of a neuron's float32 outputs on points across and beyond [l, r]
    (its state and counters are left as they were)."""
    l, r = interval
    pad = (r - l) / 4
    x = torch.linspace(l - pad, r + pad, _PROBE_POINTS, dtype=torch.float32, device=device)
    stats = copy.copy(neuron.stats)  # the probe's own counts must not reach the neuron's
    neuron.reset_state()
    with torch.no_grad():
        y = neuron(x)
    neuron.reset_state()
    neuron.stats = stats
    return hashlib.sha256(y.float().cpu().numpy().tobytes()).hexdigest()[:16]


def _json_options(options: Any) -> dict:
    """A method's options dataclass as JSON values (a path as its string)."""
    out = {}
    for key, value in dataclasses.asdict(options).items():
        value = str(value) if isinstance(value, Path) else value
        try:
            json.dumps(value)
        except TypeError:
            raise TypeError(f"option {key}={value!r} cannot be saved as JSON") from None
        out[key] = value
    return out


def _device(snn: ConvertedModel) -> torch.device:
    return next((p.device for p in snn.parameters()), torch.device("cpu"))


def _saved_fingerprint(name: str, neuron: nn.Module, interval: tuple[float, float], device: torch.device) -> str:
    """The fingerprint of a neuron that its interval rebuilds. A neuron with per-channel values
    (which refuses the fingerprint's one-dimensional probe) or shifted membranes cannot be saved."""
    shift = getattr(neuron, "v_shift", 0.0)
    if not torch.is_tensor(shift) and shift != 0:
        why = f"its membranes are shifted by {shift:g} (v_shift)"
    else:
        try:
            return fingerprint(neuron, interval, device)
        except ValueError as err:
            why = f"{err}: its neuron holds per-channel values (channel-wise thresholds or membrane shifts)"
    raise ValueError(f"site {name} cannot be saved as JSON ({why}), the saved state holds one interval per site; "
                     "torch.save the converted model instead")


def save_converted(snn: ConvertedModel, path: Union[str, Path]) -> Path:
    """Write the converted state of ``snn`` to ``path`` (JSON)."""
    device = _device(snn)
    state = {
        "format": FORMAT, "version": VERSION, "psnn_lib": __version__, "torch": torch.__version__,
        "method": snn.method_name, "options": _json_options(snn.options), "strict": snn.strict,
        "token_mask": snn.token_mask, "traced_at_default": sorted(snn.fixed_arguments),
        "sites": {name: {"activation": snn.activations[name], "interval": list(snn.intervals[name]),
                         "fingerprint": _saved_fingerprint(name, neuron, snn.intervals[name], device)}
                  for name, neuron in snn.neurons.items()},
    }
    path = Path(path)
    path.write_text(json.dumps(state, indent=1) + "\n")
    return path


def load_converted(model: nn.Module, path: Union[str, Path], *,
                   calibration: Union[torch.Tensor, Mapping, Iterable, None] = None,
                   progress: bool = False) -> tuple[ConvertedModel, ConversionReport]:
    """Rebuild the SNN saved by :func:`save_converted` on ``model`` (the same ANN).

    ``calibration`` is only needed for a model that torch.fx cannot trace (the
    converter then probes one batch for leftover activations). A conversion
    made with ``strict=False`` is rebuilt with it (the same sites stay analog).
    Raises
    :class:`ConversionError` when the file does not match the model (other
    sites or activations) or a neuron rebuilds differently (another version).
    """
    try:
        state: dict[str, Any] = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a saved converted model: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a saved converted model (no {FORMAT!r} format field)")
    if state.get("version") != VERSION:
        raise ValueError(f"{path} has format version {state.get('version')!r}; this library reads {VERSION}")
    sites = state["sites"]
    snn, report = convert(model, state["method"], calibration=calibration, progress=progress,
                          strict=state.get("strict", True), token_mask=state.get("token_mask"),
                          interval={name: tuple(site["interval"]) for name, site in sites.items()},
                          **state["options"])
    fixed = state.get("traced_at_default", [])
    if sorted(snn.fixed_arguments) != fixed:
        raise ConversionError(f"{path} was converted with the forward arguments {fixed} traced at their defaults, "
                              f"this rebuild traced {sorted(snn.fixed_arguments)} so: pass calibration= a batch "
                              "with the inputs the original calibration batches gave")
    changed = [f"{name} (saved {site['activation']}, now {snn.activations[name]})"
               for name, site in sites.items() if snn.activations[name] != site["activation"]]
    changed += [f"{name} (its neuron differs)" for name, site in sites.items()
                if fingerprint(snn.neurons[name], snn.intervals[name], _device(snn)) != site["fingerprint"]]
    if changed:
        raise ConversionError(f"{path} (saved with psnn_lib {state.get('psnn_lib')}) does not rebuild on this "
                              f"model with psnn_lib {__version__}: sites {', '.join(changed)}")
    return snn, report
