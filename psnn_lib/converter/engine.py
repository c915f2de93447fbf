"""The converter: validate, calibrate, replace, simulate.

``convert(model, method="ps", calibration=loader)`` returns a
:class:`ConvertedModel` and a :class:`ConversionReport`. It is a pipeline of
named stages: ``_validate`` (model, method, options), ``_trace`` (sites),
``_accepted`` (the sites the method converts), ``_calibrate``, ``_judge`` (what
was not converted), ``_build`` (neurons and report rows) and ``_assemble`` (the
converted model and its fan-outs):

1. *validate*: trace the model with torch.fx and find every element-wise
   activation, as a module (``nn.GELU``, Hugging Face ``GELUActivation``, ...)
   or a functional call (``F.gelu``, ``torch.sigmoid``, ``x.relu()``, ReLU
   spelt as ``clamp(min=0)``). Each call becomes its own :class:`ActivationSite`,
   even when one module object is called twice; an in-place activation
   (``relu_``, ``inplace=True``) stays in place. A model that does not trace
   falls back to swapping activation modules in place.
2. *calibrate*: each site first holds an :class:`~psnn_lib.converter.calibration.Observer`;
   one pass over the calibration data records the input range per site. The
   first batch runs under an :class:`~psnn_lib.converter.sites.ActivationProbe`,
   which lists any activation that still runs outside a site and every analog
   non-linearity (softmax, normalisations, attention, gating products), and is
   checked against the original model: the copy with observers must compute
   the same output.
3. *replace*: the method from the registry (``methods``) builds a
   neuron per site on its interval.
4. *simulate*: the converted model runs the neurons (``set_mode`` picks a
   simulator where the method has two) and counts spikes; a multi-pass method
   computes what depends on no site once per inference (:mod:`.invariant`).

Nothing is left analog silently: unsupported or leftover activations raise
:class:`ConversionError` (``strict=True``, the default) or are listed in the
report with a warning; a model without any site converts with a warning.
Softmax-like operations are not element-wise and stay analog by design
(paper 1, Sect. 4); the report lists them.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import itertools
import math
import numbers
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional, Union

import torch
from torch import fx, nn

from ..activations import ActivationSpec
from ..neurons.gradients import no_gradient
from ..neurons.stats import fold_counts
from ..progress import progress_bar
from .calibration import OUTLIER_RATIO, Observer, check_how
from .inputs import batch_size, batches, clone, tensors, to_device, tree_map
from .registry import Method, Site, get_method
from .census import Census, merged, shape_key, take_census
from .cost import CostReport, EnergyModel, conversion_cost
from .network_stats import NetworkStats, network_stats
from .report import AnalogOp, ConversionReport, SiteRow
from .sites import (ActivationProbe, UnsupportedActivation, call_activation, is_inplace, module_activation,
                    site_scope)
from . import invariant
from .stateful import PassStates, is_stateful, private_states
from .tokens import active_mask, check_mask, real_tokens, token_positions

Interval = tuple[float, float]


class ConversionError(RuntimeError):
    """Some activations could not be converted (the message lists them)."""


class ActivationSite(nn.Module):
    """Where an activation was: holds an observer, then the neuron.

    An in-place activation site writes its result into its input, as the
    activation did, so code that ignores the return value still sees it.
    Inside a call with a token mask (:mod:`.tokens`), a per-token site runs
    its observer or neuron on the real tokens only and the exact activation
    at the padding; ``per_token`` says whether its calibration inputs were per
    token (None: it saw no token mask), and a per-token site refuses a later
    input that does not match the call's mask.
    """

    def __init__(self, name: str, spec: ActivationSpec, source: str, inplace: bool = False) -> None:
        super().__init__()
        self.site_name, self.spec, self.source, self.inplace = name, spec, source, inplace
        self.impl: nn.Module = Observer(spec.fn)
        self.per_token: Optional[bool] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = active_mask()
        real = None if mask is None else real_tokens(x, mask, f"site {self.site_name}")
        if mask is not None and isinstance(self.impl, Observer):
            self.per_token = real is not None
        elif real is None and mask is not None and self.per_token:
            raise ValueError(f"site {self.site_name} was per token at calibration, but its input "
                             f"{tuple(x.shape)} does not match the call's token mask {tuple(mask.shape)}")
        with site_scope():
            if real is None:
                out = self._spiking(x)
            else:
                out = self.spec.fn(x)
                out[real] = self._spiking(x[real]).to(out.dtype)
        return x.copy_(out) if self.inplace else out

    def _spiking(self, x: torch.Tensor) -> torch.Tensor:
        """The site's module on ``x``; where it passes no gradient, a backward pass through it is an error."""
        return no_gradient(x, self.impl(x), f"site {self.site_name}: its {type(self.impl).__name__} passes no "
                                            "gradient (the SNNs of 'ps', 'fs', 'rate' and augmented spikes are not "
                                            "differentiable; the binary signed-spike methods have a surrogate gradient)")

    def extra_repr(self) -> str:
        return f"{self.spec.name} ({self.source}{', in place' if self.inplace else ''})"


class ConvertedModel(nn.Module):
    """A model whose activations are spiking neurons of one method.

    Called like the original model (any positional and keyword arguments).
    ``method_name``, ``options``, ``strict``, ``token_mask``, ``activations`` and
    ``intervals`` (per site) are what :func:`~psnn_lib.converter.saving.save_converted`
    writes. With ``token_mask`` (the name of a keyword input such as
    ``attention_mask``), every call must pass that mask, and ``tokens`` counts
    the real tokens seen since the stats were reset.
    """

    def __init__(self, model: nn.Module, sites: dict[str, ActivationSite], method: Method,
                 options: Any, intervals: dict[str, Interval], strict: bool = True,
                 token_mask: Optional[str] = None) -> None:
        super().__init__()
        self.model = model
        self.method_name = method.name
        self.options = options  # the method's options dataclass
        self.strict = strict
        self.token_mask = token_mask
        self.tokens = 0
        self.passes = method.passes(options)
        # the neuron module of every site, by site name (fixed after conversion)
        self.neurons: dict[str, nn.Module] = {name: site.impl for name, site in sites.items()}
        self.activations = {name: site.spec.name for name, site in sites.items()}
        self.intervals = dict(intervals)
        self._censuses: dict[tuple, Optional[Census]] = {}  # one per shape of the inputs (None: it failed)
        self._runs: dict[tuple, int] = {}  # samples run per shape since the stats were reset
        self._uncut = False  # a multi-pass call since the stats were reset ran every pass whole
        self.samples = 0
        self._warned: set[str] = set()  # sites already warned about clipping
        # forward arguments the calibration batch did not give, traced at their default: name -> (position, default)
        self.fixed_arguments: dict[str, tuple[int, Any]] = {}
        self._cut: Union[invariant.Split, None, bool] = False  # False: not cut yet; None: the cut was refused

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One inference: ``passes`` network time steps, outputs averaged
        (accumulated in at least float32, returned in the model's dtypes); a Hugging Face
        cache passed in or returned holds the average of the steps' caches (:mod:`.stateful`)."""
        if self.passes == 1:
            out, = self.steps(*args, **kwargs)
            return out
        total = None
        with PassStates((args, kwargs), self.passes) as states:
            for out in self.steps(*args, **kwargs):
                total = tree_map(lambda t: t.to(torch.promote_types(t.dtype, torch.float32), copy=True), out) \
                    if total is None else tree_map(torch.add, total, out)
                states.add(out)
        return states.settle(tree_map(lambda t, o: (t / self.passes).to(o.dtype), total, out))

    def steps(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """One inference step by step: the network's output at each of its ``passes``
        time steps (rate-coded methods average them; an accuracy-against-T curve
        reads their running mean). Once all have run, a site where more than
        ``FAR_OUTSIDE`` of this call's neurons clipped (inputs beyond what its
        neurons represent) is warned about, once per site."""
        kwargs = self._without_fixed(args, kwargs)
        key = shape_key((args, kwargs))
        failed = self._take_census((args, kwargs)) if key not in self._censuses else None
        self._runs[key] = self._runs.get(key, 0) + batch_size((args, kwargs))
        for neuron in self.neurons.values():
            neuron.reset_state()
        mask = check_mask(kwargs.get(self.token_mask), self.token_mask) if self.token_mask else None
        self.samples += batch_size((args, kwargs))
        self.tokens += int(mask.sum()) if mask is not None else 0
        before = self._clipping()
        if self.passes == 1:
            yield _run(self.model, (args, kwargs), mask)
        else:
            cut = self._split(args, kwargs)
            try:
                for t in range(self.passes):  # each pass on copies of the inputs (and of any cache, :mod:`.stateful`)
                    call = private_states(clone((args, kwargs)))
                    if cut is None:
                        self._uncut = True
                        yield _run(self.model, call, mask)
                        continue
                    if t == 0:
                        cut.start(_run(cut.prefix, call, mask))
                    yield _run(cut.step, call, mask)
            finally:
                if cut is not None:
                    cut.start(())  # no value of this inference outlives it (nor one left half run)
            for neuron in self.neurons.values():  # no membrane (nor autograd graph) outlives the inference
                neuron.reset_state()
        self._warn_clipping(before)
        if failed is not None:  # said once the call itself has run (a bad call raises its own error)
            warnings.warn(f"the census of this model's layers failed on inputs of these shapes ({failed}): its SOPs "
                          "and costs are not available for them", stacklevel=3)

    @property
    def census(self) -> Optional[Census]:
        """The census of the model's layers per sample (:mod:`.census`): of the inputs run since the
        stats were reset, each shape weighted by its samples; before any, of every census taken
        (each shape alike); None before the first census, or where a shape run has none."""
        if self._runs:
            if any(self._censuses[key] is None for key in self._runs):
                return None
            return merged((self._censuses[key], n) for key, n in self._runs.items())
        taken = [c for c in self._censuses.values() if c is not None]
        return merged((c, 1.0) for c in taken) if taken else None

    def _take_census(self, call: tuple[tuple, dict]) -> Optional[str]:
        """Take the census of one call (:mod:`.census`), kept for its shapes: every site exact (no spike
        counted), in eval mode and with the CPU random state restored (a call in training changes
        nothing). Returns why it failed (then None is kept for these shapes), or None."""
        mask = check_mask(call[1].get(self.token_mask), self.token_mask) if self.token_mask else None
        sites = {m.site_name: m for m in self.model.modules()
                 if isinstance(m, ActivationSite) and m.site_name in self.neurons}
        modes = [(m, m.training) for m in self.model.modules()]
        census, failed = None, None
        with self.only(()), torch.random.fork_rng(devices=[]):  # no CPU random draw, no running statistic changes
            self.model.eval()
            try:
                census = take_census(self.model, sites, lambda: _run(self.model, private_states(clone(call)), mask),
                                     batch_size(call))
            except Exception as err:  # noqa: BLE001 (a census is for costs: it never stops a conversion or a call)
                failed = f"{type(err).__name__}: {err}"
            finally:
                for module, training in modes:
                    module.training = training
        self._censuses[shape_key(call)] = census
        return failed

    def _split(self, args: tuple, kwargs: dict) -> Optional[invariant.Split]:
        """The traced graph cut into what depends on no site, computed once per inference, and the
        rest, computed at every pass (:mod:`.invariant`; cut once, again after ``.to()`` and the
        like); None where every pass runs the whole graph: swapped modules, gradients on, a stateful
        argument, a module of the prefix training, or a graph the cut refuses."""
        if not isinstance(self.model, fx.GraphModule) or torch.is_grad_enabled() \
                or any(is_stateful(v) for v in (*args, *kwargs.values())):
            return None
        if getattr(self, "_cut", False) is False:
            self._cut = invariant.split(self.model, lambda node: node.op == "call_module" and
                                        isinstance(self.model.get_submodule(node.target), ActivationSite))
        return self._cut if self._cut is not None and self._cut.usable() else None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ConvertedModel":
        self._cut = False  # the cut's graphs hold the model's tensors as they were: cut again
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cut": False}  # a copy or a pickle cuts its own graph

    def __setstate__(self, state: dict) -> None:
        state = {"_censuses": {}, "_runs": {}, "_uncut": False, **state}  # one pickled before censuses takes them anew
        state.pop("_synapses", None)
        super().__setstate__(state)

    def _without_fixed(self, args: tuple, kwargs: dict) -> dict:
        """The keyword arguments without those traced at their default (a constant now), which a
        call may pass only as that very default (``attention_mask=None``)."""
        for name, (position, default) in self.fixed_arguments.items():
            if (name in kwargs and not _equal(kwargs[name], default)) or len(args) > position:
                raise TypeError(f"argument {name!r} was not in the calibration batches, so the model was traced "
                                f"with its default {default!r} as a constant; to make it an input, give it in "
                                "the calibration batches (a dict batch, or positional inputs)")
        return {k: v for k, v in kwargs.items() if k not in self.fixed_arguments}

    def _clipping(self) -> dict[str, tuple[int, int]]:
        """(clipped, neurons) counted so far, per site (one read of the counts per device)."""
        fold_counts(self.neurons.values())
        return {name: (neuron.stats.clipped, neuron.stats.neurons) for name, neuron in self.neurons.items()}

    def _warn_clipping(self, before: dict[str, tuple[int, int]]) -> None:
        for name, (clipped, neurons) in self._clipping().items():
            c0, n0 = before[name]
            if neurons > n0 and (clipped - c0) / (neurons - n0) > FAR_OUTSIDE and name not in self._warned:
                self._warned.add(name)
                l, r = self.intervals[name]
                warnings.warn(f"site {name}: {(clipped - c0) / (neurons - n0):.0%} of this call's neurons clipped "
                              f"(inputs beyond what they represent, calibrated on [{l:.4g}, {r:.4g}], or, rate "
                              "coded, charge too late to leave as spikes): calibrate on data like these inputs, or "
                              "give the neurons more time steps (warned once per site; spike_stats() counts every "
                              "call)", stacklevel=3)

    @contextlib.contextmanager
    def only(self, names: Iterable[str]) -> Iterator["ConvertedModel"]:
        """Within the block only the sites ``names`` run their neurons; every other site
        computes its exact activation (which sites carry the conversion error)."""
        names = set(names)
        if unknown := sorted(names - set(self.neurons)):
            raise ValueError(f"unknown sites {unknown}; the converted sites are {sorted(self.neurons)}")
        before = {m: m.impl for m in self.model.modules() if isinstance(m, ActivationSite)
                  and m.site_name in self.neurons and m.site_name not in names}
        for site in before:
            site.impl = _Analog(site.spec)
        try:
            yield self
        finally:
            for site, impl in before.items():  # as they were (an outer block's choice too)
                site.impl = impl

    def set_mode(self, mode: str) -> "ConvertedModel":
        """Choose the simulator of every neuron (e.g. PS: "fast" or "stepped")."""
        for name, neuron in self.neurons.items():
            if mode not in neuron.MODES:
                raise ValueError(f"{self.method_name} neurons ({name}) have modes {neuron.MODES}, not {mode!r}")
            neuron.mode = mode
        return self

    def reset_stats(self) -> None:
        self.samples = self.tokens = 0
        self._runs, self._uncut = {}, False
        for neuron in self.neurons.values():
            neuron.reset_stats()

    def spike_stats(self) -> NetworkStats:
        """Neurons, spikes, time steps, FireRate (Eq. 26) and synaptic operations per sample
        (and the real tokens per sample, with a token mask)."""
        census = self.census
        return network_stats(self.neurons, self.samples, census.fanouts() if census is not None else None,
                             self.tokens if self.token_mask else None)

    def cost(self, energy: Union[EnergyModel, str, None] = None, *, spikes: Optional[Mapping[str, float]] = None,
             steps: Optional[int] = None) -> CostReport:
        """What the inferences since the stats were reset cost per sample, beside the ANN's:
        multiply-accumulates, accumulates and memory traffic per layer and site, and their energy
        (:mod:`.cost`; ``energy`` its constants or a preset's name, the 45 nm float32 ones by default).

        With ``spikes`` (each site's spikes per sample) and ``steps``: what a run of ``steps``
        network passes (at most ``passes``) with those spikes costs, for a multi-pass method
        (the count after t steps of an accuracy-against-T curve) rather than the inferences run."""
        energy = EnergyModel.preset(energy) if isinstance(energy, str) else energy or EnergyModel()
        if not isinstance(energy, EnergyModel):
            raise TypeError(f"energy is an EnergyModel or a preset's name, not {type(energy).__name__}")
        if spikes is None:
            if steps is not None:
                raise ValueError("steps goes with spikes: the spikes per site after that many steps")
            stats = self.spike_stats()  # an error before any input has run
            return conversion_cost(self._census_for_cost(), stats.rows, self._spike_costs(), self.passes, energy,
                                   self._prefix_once())
        if self.passes == 1:
            raise ValueError(f"{self.method_name} runs one pass: its cost comes from its inferences (cost())")
        if self.token_mask:
            raise ValueError("a token-masked model's neurons come from its inferences (real tokens only): cost()")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= self.passes:
            raise ValueError(f"steps must be an int from 1 to {self.passes} (the model's passes), got {steps!r}")
        if set(spikes) != set(self.neurons):
            raise ValueError(f"spikes must give every site and no other: missing {sorted(set(self.neurons) - set(spikes))}"
                             f", unknown {sorted(set(spikes) - set(self.neurons))}")
        bad = {k: v for k, v in spikes.items()
               if isinstance(v, bool) or not (isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"spikes per sample must be finite numbers >= 0, got {bad}")
        census = self._census_for_cost()
        rows = [{"site": name, "neurons": census.site_elements[name] / census.samples,
                 "spikes": float(spikes[name]), "time_steps": int(steps)} for name in self.neurons]
        return conversion_cost(census, rows, self._spike_costs(), int(steps), energy, self._prefix_once())

    def _census_for_cost(self) -> Census:
        census = self.census
        if census is None:
            raise ValueError("this model has no census of its layers for the inputs it ran (it has not run, or the "
                             "census failed with a warning): call it once, or take_census(inputs)")
        return census

    def _spike_costs(self) -> dict[str, Any]:
        """Each site's :class:`~.registry.SpikeCost` (its method's, for its neuron)."""
        return {name: get_method(self.method_name).cost(neuron) for name, neuron in self.neurons.items()}

    def _prefix_once(self) -> bool:
        """Does an inference compute what depends on no site once (the cut graph, :mod:`.invariant`), not at
        every pass? Not for swapped modules, nor where the cut was refused, nor after a call since the
        stats were reset that ran every pass whole (with gradients, a stateful argument)."""
        return isinstance(self.model, fx.GraphModule) and self._cut is not None and not self._uncut

    def take_census(self, *args: Any, **kwargs: Any) -> Census:
        """Take the census of the model's layers (:mod:`.census`) on these inputs, called as the
        model is, every site exact (no spike counted); the converter takes it on the first
        calibration batch, and on the first call with inputs of another shape."""
        call = (args, self._without_fixed(args, kwargs))
        failed = self._take_census(call)
        if failed is not None:
            raise RuntimeError(f"the census failed on these inputs: {failed}")
        return self._censuses[shape_key(call)]


def _equal(value: Any, default: Any) -> bool:
    """Is a call's argument the default it was traced at (``1`` for ``1.0``; tensors only as that object)?"""
    if value is default:
        return True
    if torch.is_tensor(value) or torch.is_tensor(default):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError, RuntimeError):
        return False


def _run(model: nn.Module, call: tuple[tuple, dict], mask: Optional[torch.Tensor]) -> Any:
    """One forward pass, with the call's token mask in place (if any)."""
    if mask is None:
        return model(*call[0], **call[1])
    with token_positions(mask):
        return model(*call[0], **call[1])


def analog_twin(converted: ConvertedModel) -> nn.Module:
    """A frozen copy of a converted model that computes the ANN: every site runs
    its exact activation (the reference of :mod:`psnn_lib.through_time`; its sites keep
    their names, so hooks on :class:`ActivationSite` modules see both)."""
    for neuron in converted.neurons.values():
        neuron.reset_state()  # no membrane (nor its autograd graph) is copied
    twin = copy.deepcopy(converted.model).eval().requires_grad_(False)
    for module in twin.modules():
        if isinstance(module, ActivationSite):
            module.impl = _Analog(module.spec)
    return twin


class _Tracer(fx.Tracer):
    """Keeps activation modules (Hugging Face ones too) as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        try:
            if module_activation(m) is not None:
                return True
        except UnsupportedActivation:
            return True
        return super().is_leaf_module(m, qualname)


def _trace_sites(model: nn.Module, problems: list[str], concrete_args: Optional[dict[str, Any]],
                 refused_calls: Counter[str]
                 ) -> tuple[fx.GraphModule, dict[str, ActivationSite], dict[str, fx.Node]]:
    graph = _Tracer().trace(model, concrete_args=concrete_args)
    gm = fx.GraphModule(model, graph, class_name=type(model).__name__)
    holder = nn.ModuleDict()
    gm.add_module("psnn_sites", holder)
    sites, nodes = {}, {}
    for node in list(gm.graph.nodes):
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        try:
            if module is not None:
                spec, source = module_activation(module), f"module {node.target} ({type(module).__name__})"
            else:
                spec, source = call_activation(node), f"call {node.name}"
        except UnsupportedActivation as err:
            problems.append(f"{'module ' + node.target if module is not None else 'call ' + node.name}: {err}")
            if module is None:  # it stays in the graph: the probe will see it run, and not list it again
                refused_calls[node.target if isinstance(node.target, str) else node.target.__name__] += 1
            continue
        if spec is None:
            continue
        site = ActivationSite(node.name, spec, source, is_inplace(node, module))
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


def _swap_sites(model: nn.Module, problems: list[str]) -> dict[str, ActivationSite]:
    sites: dict[str, ActivationSite] = {}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            path = f"{parent_name}.{child_name}" if parent_name else child_name
            try:
                spec = module_activation(child)
            except UnsupportedActivation as err:
                problems.append(f"module {path}: {err}")
                continue
            if spec is not None:
                key = path.replace(".", "_")
                site = ActivationSite(key, spec, f"module {path} ({type(child).__name__}), swapped",
                                      is_inplace(None, child))
                setattr(parent, child_name, site)
                sites[key] = site
                if hasattr(parent, "activation_relu_or_gelu"):  # torch's fused transformer layer
                    parent.activation_relu_or_gelu = 0  # would run its own activation, bypassing the site
    return sites


def _check_interval(interval: Any, where: str) -> Interval:
    try:
        l, r = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: an interval is a pair (l, r) of numbers, got {interval!r}") from None
    if not (math.isfinite(l) and math.isfinite(r) and r > l):
        raise ValueError(f"{where} {interval!r} is empty or not finite: need finite l < r")
    return l, r


def convert(
    model: nn.Module,
    method: str = "ps",
    *,
    calibration: Union[torch.Tensor, Mapping, Iterable, None] = None,
    interval: Union[Interval, Mapping[str, Interval], None] = None,
    observer: Union[str, float] = "minmax",
    max_batches: Optional[int] = None,
    strict: bool = True,
    token_mask: Optional[str] = None,
    progress: bool = True,
    **options: Any,
) -> tuple[ConvertedModel, ConversionReport]:
    """Convert every element-wise activation of ``model`` to spiking neurons.

    ``calibration``: a tensor, a dict of model inputs, or an iterable of
    batches (see :mod:`psnn_lib.converter.inputs`: ``x``, ``(x, y)`` or a
    dict such as a tokenizer's output); each site's interval is its input
    range by ``observer`` ("minmax" or a percentile such as 99.9). Optional
    arguments of ``forward`` that the first batch does not give are traced
    at their defaults. ``interval=(l, r)`` gives every site the same interval
    instead, and a dict ``{site: (l, r)}`` one per site (it must name every
    site to convert; this is how :func:`~psnn_lib.converter.saving.load_converted`
    rebuilds a model); calibration data, when given with it, then only
    measures clipping and checks for leftovers. ``token_mask`` names the keyword
    input that marks a sequence model's real tokens (``"attention_mask"``; see
    :mod:`.tokens`): padding then shapes no interval and no spike count, and
    every call of the converted model must pass it. ``options`` go to the method
    (``K=16`` for ``ps``; each method's options are a dataclass, ``get_method(name).options``).
    The input model is not modified.
    """
    chosen, opts, how, interval = _validate(model, method, options, observer, calibration, interval, token_mask)
    calls = batches(calibration, max_batches) if calibration is not None else None
    first = next(calls, None) if calls is not None else None
    if calls is not None and first is None:
        raise ValueError("the calibration data yielded no batch")
    graph = _trace(model, first)
    problems = list(graph.problems)
    to_build = _accepted(graph, chosen, problems)
    given = (_site_intervals(interval, to_build) if isinstance(interval, Mapping)  # None: calibrated
             else None if interval is None else dict.fromkeys(to_build, interval))
    analog: list[AnalogOp] = []
    samples = 0
    if calls is not None:
        samples = _calibrate(model, graph, itertools.chain([first], calls), progress, problems, analog,
                             token_mask)
    _judge(problems, method, strict)
    report = ConversionReport(method, chosen.spikes, graph.traced, samples, unconverted=problems, kept_analog=analog)
    if calibration is None:
        report.notes.append("no calibration data: leftover activations and analog operations were not probed")
    intervals = _build(graph, to_build, chosen, opts, given, how, token_mask, samples, report, progress)
    if not intervals:
        _note(report, f"no activation site in {type(model).__name__} was converted: the converted model "
                      "computes the original model, nothing spikes")
    return _assemble(model, graph, chosen, opts, intervals, strict, token_mask, first), report


@dataclass
class _Graph:
    """A model's working copy with its activation sites: traced (fx nodes per site, the
    arguments traced at their default) or with its activation modules swapped."""

    work: nn.Module
    sites: dict[str, ActivationSite]
    nodes: dict[str, fx.Node]
    traced: bool
    fixed: dict[str, Any]
    problems: list[str]
    refused_calls: Counter[str]  # functional activations refused by name (in the traced graph), and how often


def _validate(model: Any, method: str, options: dict, observer: Union[str, float], calibration: Any,
              interval: Any, token_mask: Optional[str]) -> tuple[Method, Any, Union[str, float], Any]:
    """Validate: the model, the method and its options, the observer, the interval (before any pass)."""
    _check_model(model)
    chosen = get_method(method)
    opts = chosen.parse(options)
    how = check_how(observer)
    if token_mask is not None and not (isinstance(token_mask, str) and token_mask):
        raise TypeError(f"token_mask names a keyword input (e.g. 'attention_mask'), not {token_mask!r}")
    if calibration is None and interval is None:
        raise ValueError("give calibration data (to measure each site's range) or a global interval=(l, r)")
    if interval is not None and not isinstance(interval, Mapping):
        interval = _check_interval(interval, "interval")
    return chosen, opts, how, interval


def _trace(model: nn.Module, first: Optional[tuple[tuple, dict]]) -> _Graph:
    """Trace: a copy of the model with a site at every activation, by torch.fx (arguments the
    first batch does not give traced at their default), else by swapping activation modules."""
    problems: list[str] = []
    fixed = _absent_defaults(model, first)
    try:
        refused: Counter[str] = Counter()
        work, sites, nodes = _trace_sites(copy.deepcopy(model).eval(), problems, fixed, refused)
        return _Graph(work, sites, nodes, True, fixed or {}, problems, refused)
    except Exception as err:  # any tracing failure: fall back to module swap
        warnings.warn(f"torch.fx could not trace {type(model).__name__} ({type(err).__name__}: {err}); "
                      "swapping activation modules instead", stacklevel=3)
        if first is None:
            raise ValueError("this model does not trace with torch.fx: pass calibration data so that "
                             "the converter can check no functional activation is left") from err
        problems.clear()
        work = copy.deepcopy(model).eval()
        return _Graph(work, _swap_sites(work, problems), {}, False, {}, problems, Counter())


def _accepted(graph: _Graph, chosen: Method, problems: list[str]) -> dict[str, ActivationSite]:
    """The sites the method converts; each one it refuses is added to ``problems`` with why."""
    refused = {name: why for name, site in graph.sites.items() if (why := chosen.accepts(site.spec))}
    problems.extend(f"{graph.sites[n].source}: {graph.sites[n].spec.name}: {why}" for n, why in refused.items())
    return {name: site for name, site in graph.sites.items() if name not in refused}


def _judge(problems: list[str], method: str, strict: bool) -> None:
    """Judge, after calibration: activations left unconverted are an error, or (``strict=False``) a warning."""
    if not problems:
        return
    message = f"{len(problems)} activation(s) not converted to {method!r}: " + "; ".join(problems)
    if strict:
        raise ConversionError(message + " (convert(..., strict=False) keeps them analog, listed in the report)")
    warnings.warn(message, stacklevel=3)


def _build(graph: _Graph, to_build: dict[str, ActivationSite], chosen: Method, opts: Any,
           given: Optional[dict[str, Interval]], how: Union[str, float], token_mask: Optional[str], samples: int,
           report: ConversionReport, progress: bool) -> dict[str, Interval]:
    """Build: a neuron per site on its interval (given, or calibrated by ``how``), a report row
    each; refused sites and sites that saw integers keep their activation. Returns the intervals."""
    device = next((p.device for p in graph.work.parameters()), torch.device("cpu"))
    intervals: dict[str, Interval] = {}
    for name, site in progress_bar(graph.sites.items(), desc=f"building {chosen.name} neurons", enabled=progress):
        obs = site.impl
        if name not in to_build or obs.integer:
            if obs.integer:
                _note(report, f"site {name} ({site.source}) sees integer inputs: not an activation, left as it was")
            site.impl = _Analog(site.spec)
            continue
        if token_mask and site.per_token is False:
            _note(report, f"site {name} ({site.source}): its input is not per token (batch, length, features...): "
                          "every entry counts, padding included")
        l, r = given[name] if given is not None else _calibrated_interval(name, site, obs, how, report)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                site.impl = chosen.build(Site(name, site.spec, (l, r), obs, None if given is not None else how),
                                         opts).to(device)
            except (ValueError, RuntimeError) as err:
                raise ConversionError(f"site {name} ({site.source}, [{l:.6g}, {r:.6g}]): {err}") from err
        for w in caught:  # a method's warning (a coarser PS grid, ...) names its site and is noted
            _note(report, f"site {name}: {w.message}")
        covered = chosen.covers(site.impl) or (l, r)
        site.impl.flat = _flat_ends(site.spec, covered)
        intervals[name] = (l, r)
        report.rows.append(SiteRow(
            name, site.source, site.spec.name, l, r, site.impl.stats.time_steps,
            neurons=obs.count // samples if samples else 0,
            clipped_fraction=_clipped_fraction(obs, covered, site.impl.flat), nonfinite_inputs=obs.nonfinite,
            per_token=site.per_token if token_mask else None, details=chosen.details(site.impl)))
    return intervals


def _assemble(model: nn.Module, graph: _Graph, chosen: Method, opts: Any, intervals: dict[str, Interval],
              strict: bool, token_mask: Optional[str], first: Optional[tuple[tuple, dict]]) -> ConvertedModel:
    """Assemble: the converted model, with its census taken on the first batch (without
    calibration data, on its first call)."""
    kept = {k: v for k, v in graph.sites.items() if k in intervals}
    converted = ConvertedModel(graph.work, kept, chosen, opts, intervals, strict, token_mask)
    converted.fixed_arguments = _positions(model, graph.fixed)
    if first is not None:
        device = next((p.device for p in graph.work.parameters()), torch.device("cpu"))
        failed = converted._take_census(to_device(first, device))
        if failed is not None:
            warnings.warn(f"the census of this model's layers failed on the first calibration batch ({failed}): its "
                          "SOPs and costs are not available for inputs of its shapes", stacklevel=3)
    return converted


def _check_model(model: Any) -> None:
    """A plain ``nn.Module``, not yet converted."""
    if isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise TypeError("a TorchScript model cannot be converted (no hooks, no tracing): convert the "
                        "nn.Module, then script the result if needed")
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert takes a torch.nn.Module, not {type(model).__name__}")
    if isinstance(model, ConvertedModel) or any(isinstance(m, ActivationSite) for m in model.modules()):
        raise ValueError("this model is already converted (it holds spiking sites): convert the original model")


def _positions(model: nn.Module, fixed: dict[str, Any]) -> dict[str, tuple[int, Any]]:
    """Each argument traced at its default: its position in ``forward`` and the default."""
    names = list(inspect.signature(model.forward).parameters) if fixed else []
    return {name: (names.index(name), default) for name, default in fixed.items()}


def _flat_ends(spec: ActivationSpec, covered: Interval) -> tuple[bool, bool]:
    """Whether the activation is flat beyond the low and the high end of the range a neuron
    covers (every channel's, for per-channel ranges): saturating there is exact. Beyond a
    clipped activation's ``bounds``; else where f takes the value of that end at every probe
    ``FLAT_PROBES`` further out (ReLU below 0, ReLU6 above 6, Hardtanh, Hardsigmoid: exactly
    constant; a GELU or sigmoid tail is not)."""
    lo, hi = (float(torch.as_tensor(v).max()) if i == 0 else float(torch.as_tensor(v).min())
              for i, v in enumerate(covered))
    if spec.bounds is not None:
        return lo <= spec.bounds[0], hi >= spec.bounds[1]
    return _constant_beyond(spec.fn, lo, -1.0), _constant_beyond(spec.fn, hi, 1.0)


# how far beyond a neuron's range an activation is probed for being constant there
FLAT_PROBES = (1e-3, 1e-1, 1.0, 1e1, 1e3, 1e6)


def _constant_beyond(fn: Any, end: float, direction: float) -> bool:
    """Does ``fn`` take its value at ``end`` at every probe beyond it (in float64)?"""
    if not math.isfinite(end):
        return True  # nothing lies beyond
    x = torch.tensor([end, *(end + direction * d for d in FLAT_PROBES)], dtype=torch.float64)
    try:
        with torch.no_grad():
            y = torch.as_tensor(fn(x))
    except (RuntimeError, TypeError, ValueError):  # a module that takes float32 only: not probed, counted
        return False
    return bool((y == y[0]).all())


def _clipped_fraction(obs: Observer, covered: Interval, flat: tuple[bool, bool]) -> float:
    """The share of calibration inputs outside the range the neuron represents, except
    beyond an end where the activation is flat anyway (``flat``: nothing is lost there)."""
    lo, hi = covered  # numbers, or per-channel tensors
    return obs.clipped_fraction(-math.inf if flat[0] else lo, math.inf if flat[1] else hi)


def _note(report: ConversionReport, note: str) -> None:
    """What a user should know: a warning, and a note in the report."""
    report.notes.append(note)
    warnings.warn(note, stacklevel=3)


def _absent_defaults(model: nn.Module, call: Optional[tuple[tuple, dict]]) -> Optional[dict[str, Any]]:
    """Arguments of ``model.forward`` with a default that the first calibration call
    does not give (without calibration data: every one): traced at that default (an optional
    ``attention_mask=None``)."""
    call = ((), {}) if call is None else call
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    given = {p.name for p in parameters[:len(call[0])]} | set(call[1])
    absent = {p.name: p.default for p in parameters if p.name not in given and p.default is not p.empty
              and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return absent or None


def _site_intervals(given: Mapping[str, Interval], sites: dict[str, ActivationSite]) -> dict[str, Interval]:
    """Per-site intervals: exactly the model's sites, each a valid interval."""
    missing, unknown = sorted(set(sites) - set(given)), sorted(set(given) - set(sites))
    if missing or unknown:
        raise ValueError(f"interval names sites {sorted(given)}, the model has sites {sorted(sites)}"
                         + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    return {name: _check_interval(given[name], f"site {name}") for name in sites}


def _calibrated_interval(name: str, site: ActivationSite, obs: Observer, how: Union[str, float],
                         report: ConversionReport) -> Interval:
    """The site's interval by ``how`` from its observer (noted when outliers set it)."""
    try:
        l, r = obs.interval(how)
    except RuntimeError as err:
        padding = " (or every token of its calibration inputs was padding)" if site.per_token else ""
        raise ConversionError(f"site {name} ({site.source}): {err}{padding}") from None
    if site.spec.bounds is not None:  # constant outside its bounds: neurons need not cover more
        l, r = max(l, site.spec.bounds[0]), min(r, site.spec.bounds[1])
    if obs.nonfinite:
        warnings.warn(f"site {name}: {obs.nonfinite} NaN or infinite calibration input(s) ignored "
                      "(the report counts them)", stacklevel=4)
    if how == "minmax":
        ratio, (a, b) = obs.outlier_ratio()
        if ratio > OUTLIER_RATIO:
            _note(report, f"site {name}: its min-max interval [{l:.4g}, {r:.4g}] is {ratio:.0f}x wider than "
                          f"the range [{a:.4g}, {b:.4g}] of the central 98% of its calibration inputs: a few "
                          "outliers set it (coarser neurons); consider observer=99.9")
    if r - l < NEAR_CONSTANT:
        _note(report, f"site {name}: its calibration inputs span only {r - l:.3g}: its neurons are nearly constant")
    return l, r


class _Analog(nn.Module):
    """An activation kept as it was: one the method cannot convert (only with
    strict=False), or a site that sees integers (an index clamped at 0)."""

    def __init__(self, spec: ActivationSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spec.fn(x)


# a call in which more than this share of a site's neurons clip is warned about
FAR_OUTSIDE = 0.1
# a calibrated interval narrower than this is noted: its neurons are nearly constant
NEAR_CONSTANT = 1e-6
# the copy with observers may differ from the model by reordered float operations, never more
_SAME_OUTPUT_RTOL = 1e-3


def _calibrate(model: nn.Module, graph: _Graph, calls: Iterable[tuple[tuple, dict]], progress: bool,
               problems: list[str], analog: list[AnalogOp], token_mask: Optional[str]) -> int:
    """One pass over the calibration data (copies: the model may act in place).
    The first batch runs the original model (in eval mode, restored after) under
    a probe that lists its analog non-linearities, then the copy under a probe
    that finds activations left outside the sites, and the two outputs must agree.
    The copy runs with each batch's token mask in place (observers see real tokens only)."""
    device = next((p.device for p in graph.work.parameters()), torch.device("cpu"))
    samples = 0
    with torch.no_grad():
        for i, call in enumerate(progress_bar(calls, desc="calibrating", enabled=progress)):
            args, kwargs = clone(to_device(call, device))
            mask = check_mask(kwargs.get(token_mask), token_mask) if token_mask else None
            try:
                if i == 0:
                    with ActivationProbe(model) as original:
                        reference = _eval_output(model, clone((args, kwargs)))
                    analog.extend(AnalogOp(*key, n) for key, n in original.analog.items())
                    with ActivationProbe(graph.work) as probe:
                        out = _run(graph.work, (args, kwargs), mask)
                    problems.extend(_unlisted(probe.found, graph.refused_calls))
                    if not problems:
                        _check_same(reference, out)
                else:
                    _run(graph.work, (args, kwargs), mask)
            except Exception as err:
                err.add_note(f"psnn_lib.convert: while running calibration batch {i} through the model")
                raise
            samples += batch_size((args, kwargs))
    return samples


def _unlisted(found: dict[tuple[str, str], int], refused: Counter[str]) -> list[str]:
    """The probe's activations outside any site, less the functional calls the trace refused
    already (listed once, by the trace)."""
    left, out = Counter(refused), []
    for (where, name), n in found.items():
        known = min(n, left[name])
        left[name] -= known
        if n > known:
            out.append(f"{where}: {name} (called {n - known}x outside any converted site)")
    return out


def _eval_output(model: nn.Module, call: tuple[tuple, dict]) -> Any:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        return model(*call[0], **call[1])
    finally:
        for m, training in modes.items():
            m.training = training


def _check_same(reference: Any, out: Any) -> None:
    """The copy with observers must compute what the model computes."""
    ref, got = tensors(reference), tensors(out)
    if len(ref) != len(got):
        raise ConversionError(f"the converter's copy of the model returns {len(got)} tensors, the model {len(ref)}")
    for a, b in zip(ref, got):
        if not torch.is_floating_point(a):
            continue
        scale = float(a.detach().abs().nan_to_num(0, 0, 0).max()) if a.numel() else 0.0
        diff = (a.double() - b.double()).abs().nan_to_num(0.0, math.inf, math.inf)
        if a.shape != b.shape or (diff.numel() and float(diff.max()) > _SAME_OUTPUT_RTOL * max(scale, 1e-6)) \
                or not torch.equal(a.isnan(), b.isnan()):
            raise ConversionError(
                "the converter's copy of the model (exact activations, before any neuron) does not compute "
                f"the model's output (largest difference {float(diff.max()) if diff.numel() else math.nan:.3g}): "
                "the model is not deterministic in eval mode, or an operation the converter rewired acts "
                "differently (please report the model)")
