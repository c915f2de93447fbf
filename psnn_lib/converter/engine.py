"""The converter: validate, calibrate, replace, simulate.

``convert(model, method="ps", calibration=loader)`` returns a
:class:`ConvertedModel` and a :class:`ConversionReport`:

1. *validate*: trace the model with torch.fx and find every element-wise
   activation, as a module (``nn.GELU``, Hugging Face ``GELUActivation``, ...)
   or a functional call (``F.gelu``, ``torch.sigmoid``, ``x.relu()``). Each
   call becomes its own :class:`ActivationSite`, even when one module object
   is called twice. A model that does not trace falls back to swapping
   activation modules in place.
2. *calibrate*: each site first holds an :class:`~psnn_lib.converter.calibration.Observer`;
   one pass over the calibration data records the input range per site. The
   first batch runs under an :class:`~psnn_lib.converter.sites.ActivationProbe`,
   which lists any activation that still runs outside a site.
3. *replace*: the method from the registry (``methods``) builds a
   neuron per site on its interval.
4. *simulate*: the converted model runs the neurons (``set_mode`` picks a
   simulator where the method has two) and counts spikes.

Nothing is left analog silently: unsupported or leftover activations raise
:class:`ConversionError` (``strict=True``, the default) or are listed in the
report with a warning. Softmax-like operations are not element-wise and
stay analog by design (paper 1, Sect. 4); the report lists them.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Iterable, Optional, Union

import torch
from torch import fx, nn

from ..activations import ActivationSpec
from ..progress import progress_bar
from .calibration import Observer, check_how
from .methods import Method, Site, get_method
from .network_stats import NetworkStats, fanouts, network_stats
from .report import ConversionReport
from .sites import (ActivationProbe, NOT_ELEMENTWISE, UnsupportedActivation, call_activation,
                    is_not_elementwise, module_activation, site_scope)


class ConversionError(RuntimeError):
    """Some activations could not be converted (the message lists them)."""


class ActivationSite(nn.Module):
    """Where an activation was: holds an observer, then the neuron."""

    def __init__(self, name: str, spec: ActivationSpec, source: str) -> None:
        super().__init__()
        self.site_name, self.spec, self.source = name, spec, source
        self.impl: nn.Module = Observer(spec.fn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with site_scope():
            return self.impl(x)

    def extra_repr(self) -> str:
        return f"{self.spec.name} ({self.source})"


class ConvertedModel(nn.Module):
    """A model whose activations are spiking neurons of one method."""

    def __init__(self, model: nn.Module, sites: dict[str, ActivationSite], method: Method,
                 options: dict, synapses: Optional[dict[str, float]]) -> None:
        super().__init__()
        self.model = model
        self.method_name = method.name
        self.passes = method.passes(options)
        # the neuron module of every site, by site name (fixed after conversion)
        self.neurons: dict[str, nn.Module] = {name: site.impl for name, site in sites.items()}
        self._synapses = synapses
        self.samples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One inference: ``passes`` network time steps, outputs averaged."""
        for neuron in self.neurons.values():
            neuron.reset_state()
        self.samples += x.shape[0] if x.dim() else 1
        out = self.model(x)
        for _ in range(self.passes - 1):
            out = out + self.model(x)
        return out / self.passes if self.passes > 1 else out

    def set_mode(self, mode: str) -> "ConvertedModel":
        """Choose the simulator of every neuron (e.g. PS: "fast" or "stepped")."""
        for name, neuron in self.neurons.items():
            if mode not in neuron.MODES:
                raise ValueError(f"{self.method_name} neurons ({name}) have modes {neuron.MODES}, not {mode!r}")
            neuron.mode = mode
        return self

    def reset_stats(self) -> None:
        self.samples = 0
        for neuron in self.neurons.values():
            neuron.reset_stats()

    def spike_stats(self) -> NetworkStats:
        """Neurons, spikes, K, FireRate (Eq. 26) and synaptic operations per sample."""
        return network_stats(self.neurons, self.samples, self._synapses)


def _batches(calibration: Union[torch.Tensor, Iterable], limit: Optional[int]) -> Iterable[torch.Tensor]:
    if isinstance(calibration, torch.Tensor):
        calibration = [calibration]
    for i, batch in enumerate(calibration):
        if limit is not None and i >= limit:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


class _Tracer(fx.Tracer):
    """Keeps activation modules (Hugging Face ones too) as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        try:
            if module_activation(m) is not None:
                return True
        except UnsupportedActivation:
            return True
        return super().is_leaf_module(m, qualname)


def _trace_sites(model: nn.Module, problems: list[str], analog: list[str]
                 ) -> tuple[fx.GraphModule, dict[str, ActivationSite], dict[str, fx.Node]]:
    graph = _Tracer().trace(model)
    gm = fx.GraphModule(model, graph, class_name=type(model).__name__)
    holder = nn.ModuleDict()
    gm.add_module("psnn_sites", holder)
    sites, nodes = {}, {}
    for node in list(gm.graph.nodes):
        try:
            if node.op == "call_module":
                module = gm.get_submodule(node.target)
                if isinstance(module, NOT_ELEMENTWISE):
                    analog.append(f"{node.target} ({type(module).__name__})")
                    continue
                spec, source = module_activation(module), f"module {node.target} ({type(module).__name__})"
            else:
                if is_not_elementwise(node):
                    analog.append(f"{node.name} ({node.target if isinstance(node.target, str) else node.target.__name__})")
                    continue
                spec = call_activation(node)
                source = f"call {node.name}"
        except UnsupportedActivation as err:
            problems.append(str(err))
            continue
        if spec is None:
            continue
        site = ActivationSite(node.name, spec, source)
        holder[node.name] = site
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(f"psnn_sites.{node.name}", (node.args[0],))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        sites[node.name], nodes[node.name] = site, new
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm, sites, nodes


def _swap_sites(model: nn.Module, problems: list[str], analog: list[str]) -> dict[str, ActivationSite]:
    sites: dict[str, ActivationSite] = {}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            path = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, NOT_ELEMENTWISE):
                analog.append(f"{path} ({type(child).__name__})")
                continue
            try:
                spec = module_activation(child)
            except UnsupportedActivation as err:
                problems.append(f"{path}: {err}")
                continue
            if spec is not None:
                key = path.replace(".", "_")
                site = ActivationSite(key, spec, f"module {path} ({type(child).__name__}), swapped")
                setattr(parent, child_name, site)
                sites[key] = site
    return sites


def convert(
    model: nn.Module,
    method: str = "ps",
    *,
    calibration: Union[torch.Tensor, Iterable, None] = None,
    interval: Optional[tuple[float, float]] = None,
    observer: Union[str, float] = "minmax",
    max_batches: Optional[int] = None,
    strict: bool = True,
    progress: bool = True,
    **options: Any,
) -> tuple[ConvertedModel, ConversionReport]:
    """Convert every element-wise activation of ``model`` to spiking neurons.

    ``calibration``: a tensor or an iterable of batches (``x`` or ``(x, y)``);
    each site's interval is its input range by ``observer`` ("minmax" or a
    percentile such as 99.9). ``interval=(l, r)`` gives every site the same
    interval instead (calibration data, when given, then only measures
    clipping and checks for leftovers). ``options`` go to the method (see
    ``get_method(name).defaults``). The input model is not modified.
    """
    chosen = get_method(method)
    opts = chosen.options(options)
    how = check_how(observer)
    if calibration is None and interval is None:
        raise ValueError("give calibration data (to measure each site's range) or a global interval=(l, r)")
    if interval is not None and not (float(interval[1]) > float(interval[0])):
        raise ValueError(f"empty interval {interval}: need l < r")
    work = copy.deepcopy(model).eval()
    problems: list[str] = []
    analog: list[str] = []
    try:
        work, sites, nodes = _trace_sites(work, problems, analog)
        traced = True
    except Exception as err:  # any tracing failure: fall back to module swap
        warnings.warn(f"torch.fx could not trace {type(model).__name__} ({type(err).__name__}: {err}); "
                      "swapping activation modules instead", stacklevel=2)
        problems.clear(), analog.clear()
        work = copy.deepcopy(model).eval()
        sites, nodes, traced = _swap_sites(work, problems, analog), {}, False
        if calibration is None:
            raise ValueError("this model does not trace with torch.fx: pass calibration data so that "
                             "the converter can check no functional activation is left") from err
    rejected = {name for name, site in sites.items() if chosen.accepts(site.spec)}
    problems.extend(f"{sites[n].source}: {sites[n].spec.name}: {chosen.accepts(sites[n].spec)}" for n in rejected)

    samples = _calibrate(work, sites, calibration, max_batches, progress, problems) if calibration is not None else 0
    if problems:
        message = f"{len(problems)} activation(s) not converted to {method!r}: " + "; ".join(problems)
        if strict:
            raise ConversionError(message + " (convert(..., strict=False) keeps them analog, listed in the report)")
        warnings.warn(message, stacklevel=2)

    report = ConversionReport(method, chosen.spikes, traced, samples, unconverted=problems, kept_analog=analog)
    device = next((p.device for p in work.parameters()), torch.device("cpu"))
    for name, site in progress_bar(sites.items(), desc=f"building {method} neurons", enabled=progress):
        obs = site.impl
        if name in rejected:
            site.impl = _Analog(site.spec)
            continue
        try:
            l, r = (float(interval[0]), float(interval[1])) if interval is not None else obs.interval(how)
        except RuntimeError as err:
            raise ConversionError(f"site {name} ({site.source}): {err}") from None
        if obs.nan:
            warnings.warn(f"site {name}: {obs.nan} NaN calibration input(s) ignored (the report counts them)",
                          stacklevel=2)
        site.impl = chosen.build(Site(name, site.spec, (l, r), obs), opts).to(device)
        report.rows.append({
            "site": name, "source": site.source, "activation": site.spec.name, "l": l, "r": r,
            "K": site.impl.stats.K,
            "neurons": obs.count // samples if samples else 0,
            "clipped_fraction": obs.clipped_fraction(l, r), "nan_inputs": obs.nan,
        })
    kept = {k: v for k, v in sites.items() if k not in rejected}
    synapses = fanouts(work, nodes) if traced else None
    return ConvertedModel(work, kept, chosen, opts, synapses), report


class _Analog(nn.Module):
    """An unconverted activation kept as it was (only with strict=False)."""

    def __init__(self, spec: ActivationSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spec.fn(x)


def _calibrate(model: nn.Module, sites: dict[str, ActivationSite], calibration, max_batches: Optional[int],
               progress: bool, problems: list[str]) -> int:
    """One pass over the calibration data; the first batch runs under the probe."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    samples = 0
    with torch.no_grad():
        for i, x in enumerate(progress_bar(_batches(calibration, max_batches), desc="calibrating", enabled=progress)):
            x = x.to(device)
            if i == 0:
                with ActivationProbe(model) as probe:
                    model(x)
                problems.extend(f"{where} (called {n}x outside any converted site)"
                                for where, n in probe.found.items())
            else:
                model(x)
            samples += x.shape[0]
    if samples == 0:
        raise ValueError("the calibration data yielded no batch")
    return samples
