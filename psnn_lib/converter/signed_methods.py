"""Paper 2's neurons as conversion methods: ``signed``, ``ibt``, ``symmetric``, ``unsigned``, ``augmented``.

Each converts the ReLU family (LeakyReLU with any slope alpha in [0, 1],
ReLU, and LeakyReLU with trainable clipping, :mod:`psnn_lib.models.clipping`)
to a :class:`~psnn_lib.neurons.signed.SignedIFNeuron` running ``T`` network
time steps, with the site's calibrated input interval [l, r]:

=============  ===============  ==========================  ===================================
method         P_th             N_th                        negative spike worth
=============  ===============  ==========================  ===================================
``signed``     r                l (the proposed neuron)     alpha l: beta = alpha l / r (Eq. 16)
``ibt``        r                -r / alpha (Eq. 18)         -r: |beta| = 1 (Spiking-YOLO's IBT)
``symmetric``  r                -r                          -alpha r (stReLU-style thresholds)
``unsigned``   r                none                        no negative spikes (plain IF: ReLU)
``augmented``  r                -r / alpha (as ``ibt``)     -r per unit of magnitude (AugMapping)
=============  ===============  ==========================  ===================================

So ``signed`` covers exactly the site's range with one spike per step at
either end, where ``ibt`` needs 1 / alpha times as many steps for a
negative value. With a clipped activation the interval is the learned
clipping range (``ActivationSpec.bounds``): the weight normalisation by the
learned thresholds of paper 2, Sect. 4.1 (``ibt`` and ``symmetric`` refuse a
clipped site whose bound they would overshoot: they cannot clip there). The
report's ``clipped_fraction`` counts inputs outside [N_th, P_th]. Options: ``T`` (time steps),
``v_init`` (initial membranes as a fraction of each threshold),
``kappa`` (surrogate steepness, Eq. 32, used only when training through
time: :mod:`psnn_lib.through_time.calibrate`) and ``channel_wise``.

``augmented`` is AugMapping's neuron (Yu et al. 2022): IBT thresholds, but a
step's spike carries an integer magnitude, the whole thresholds its membrane
holds (option ``max_magnitude``, default None: no bound), so a large input
is passed on in one step instead of many; its spike counts are spike
*events* (one per neuron and step that fires, whatever the magnitude).

``channel_wise=True`` (Spiking-YOLO's channel-wise normalisation, Kim et al.
2020) gives every channel (dimension 1 of the site's input: a convolution's
channels, a linear layer's features) its own thresholds: P_th is the
channel's largest calibration input (the layer's r for a channel never
positive), N_th follows the rule from it (``signed``: the channel's
smallest input, the layer's l for a channel never negative). It needs the
per-channel ranges of calibration data with ``observer="minmax"``: it is an
error with a percentile observer, with intervals given to the converter, and
for :func:`~psnn_lib.converter.saving.save_converted` (the JSON state holds
one interval per site; ``torch.save`` the converted model instead). The
report's P_th is then the largest channel's, N_th the most negative
channel's, ``channels`` their count, and ``clipped_fraction`` counts each
sampled input against its own channel's thresholds. Dimension 1 is the
channel: right for convolutions (batch, channels, ...) and linear layers on
(batch, features); a 3-D input is converted with a warning in the report,
since a sequence model's (batch, length, features) would get one threshold
per position.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

from ..activations import ActivationSpec
from ..neurons.fused import Threshold
from ..neurons.signed import DEFAULT_KAPPA, SignedIFNeuron
from .registry import Method, Site, SpikeCost, checked, number, positive_int, register_method


def _accepts(spec: ActivationSpec) -> Optional[str]:
    if spec.negative_slope is not None and 0 <= spec.negative_slope <= 1:
        return None
    return "signed-spike neurons convert the ReLU family only (LeakyReLU with slope in [0, 1], ReLU)"


@dataclass(frozen=True)
class SignedOptions:
    """Options of ``signed``, ``ibt``, ``symmetric``, ``unsigned`` (module docstring): ``T`` time
    steps, ``v_init`` (initial membranes, a fraction of each threshold in [0, 1)), ``kappa``
    (Eq. 32's surrogate steepness) and ``channel_wise``."""

    T: int = 8
    v_init: float = 0.5
    kappa: float = DEFAULT_KAPPA
    channel_wise: bool = False

    def __post_init__(self) -> None:
        checked(self, "T", positive_int)
        checked(self, "v_init", number)
        checked(self, "kappa", number, positive=True)
        if not 0 <= self.v_init < 1:
            raise ValueError(f"v_init is a fraction of the thresholds in [0, 1), got {self.v_init!r}")
        if not isinstance(self.channel_wise, bool):
            raise ValueError(f"channel_wise is True or False, got {self.channel_wise!r}")


@dataclass(frozen=True)
class AugmentedOptions(SignedOptions):
    """Options of ``augmented``: those of :class:`SignedOptions` and ``max_magnitude``, the
    largest spike (None: no bound)."""

    max_magnitude: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_magnitude is not None:
            checked(self, "max_magnitude", positive_int)


def _negative_threshold(rule: str, l: Threshold, r: Threshold, alpha: float) -> Optional[Threshold]:
    """N_th of a rule from the range [l, r] (numbers, or per-channel tensors)."""
    if alpha == 0 or rule == "unsigned":
        return None  # nothing to represent below zero
    if rule == "signed":
        return l if torch.is_tensor(l) or l < 0 else None
    return -r / alpha if rule == "ibt" else -r


def _channel_range(site: Site) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel [l_c, r_c] for channel-wise thresholds: each channel's min and max within the
    site's interval (a clipped activation's bounds), the layer's l (r) for a channel never
    negative (never positive)."""
    if site.how != "minmax" or site.observer is None:
        raise ValueError("channel_wise thresholds are each channel's range in the calibration data: convert "
                         "with calibration data and observer='minmax' (not a percentile or given intervals)")
    lo, hi = site.observer.channel_interval()
    if site.observer.ndim == 3:
        warnings.warn(f"channel_wise takes dimension 1 of its {tuple(site.observer.channel_lo.shape)[0]}-channel "
                      "3-D input as the channels: right for a Conv1d's (batch, channels, length), wrong for a "
                      "sequence model's (batch, length, features), which gets one threshold per position")
    l, r = site.interval
    return torch.where(lo < 0, lo.clamp(min=l), l), torch.where(hi > 0, hi.clamp(max=r), r)


def _builder(name: str, rule: str):
    """The build function of method ``name``: thresholds by ``rule``; augmented spikes where the
    options have a ``max_magnitude``."""
    def build(site: Site, o: SignedOptions) -> SignedIFNeuron:
        l, r = site.interval
        if not r > 0:
            raise ValueError(f"its calibrated inputs are never positive (r = {r:g}); a positive threshold "
                             "needs r > 0")
        alpha = float(site.spec.negative_slope)
        magnitude = o.max_magnitude if isinstance(o, AugmentedOptions) else 1
        bounds = site.spec.bounds
        if bounds is not None and magnitude != 1:
            raise ValueError(f"method {name!r}: a spike of magnitude above one passes on more than P_th in a step, "
                             "so its neurons would not clip where this clipped activation does (use "
                             "max_magnitude=1, or method 'signed')")
        if o.channel_wise:
            l_c, r_c = _channel_range(site)
            p_th = r_c
            n_th = None if rule == "signed" and not l < 0 else _negative_threshold(rule, l_c, r_c, alpha)
        else:
            p_th, n_th = r, _negative_threshold(rule, l, r, alpha)
        lowest = _extreme(n_th, largest=False)
        if lowest is not None and bounds is not None and lowest < bounds[0] * (1 + 1e-9):
            raise ValueError(f"method {name!r} puts the negative threshold at {lowest:.6g}, below the input "
                             f"{bounds[0]:.6g} where this clipped activation stops falling: its neurons would "
                             "not clip there (use method 'signed', or clip symmetrically)")
        return SignedIFNeuron(p_th, n_th, alpha, int(o.T), float(o.v_init), float(o.kappa),
                              max_magnitude=magnitude)
    return build


def _extreme(value: Optional[Threshold], largest: bool) -> Optional[float]:
    """A threshold as one number: itself, or the largest (smallest) of its channels'."""
    if value is None or not torch.is_tensor(value):
        return value
    return float(value.max() if largest else value.min())


def _details(neuron: SignedIFNeuron) -> dict:
    """Report columns: the thresholds and beta (per-channel neurons: the extremes, and the channels)."""
    beta = neuron.beta
    out = {"P_th": _extreme(neuron.p_th, True), "N_th": _extreme(neuron.n_th, False),
           "beta": _extreme(beta, False) if torch.is_tensor(beta) else beta}
    if neuron.channels is not None:
        out["channels"] = neuron.channels
    if neuron.max_magnitude != 1:
        out["max_magnitude"] = neuron.max_magnitude
    return out


def _covers(neuron: SignedIFNeuron) -> tuple[Threshold, Threshold]:
    """Inputs the neuron represents (per channel for channel-wise thresholds): [N_th, P_th], or
    m times that with augmented spikes of magnitude up to m (everything when unbounded);
    below 0 nothing without negative spikes (all of it for ReLU, which is flat there)."""
    m = neuron.max_magnitude
    if m is None:
        return -math.inf, math.inf
    hi = neuron.p_th * m
    if neuron.slope == 0:
        return -math.inf, hi
    return (neuron.n_th * m if neuron.n_th is not None else 0.0), hi


def _cost(neuron: SignedIFNeuron) -> SpikeCost:
    """What a signed neuron costs (:class:`SpikeCost`): with negative spikes it is a pair of
    membranes (two updates, two states per step). A spike's value is folded into the receiving
    weights; a negative spike worth as much as a positive one (IBT: -P_th) is a subtraction of
    the same weight, one worth another value a second weight copy whose sum the receiver
    subtracts each step; an augmented spike of magnitude m multiplies its weight by +-m."""
    event = "ac" if neuron.max_magnitude == 1 else "mac"
    negative = torch.as_tensor(neuron.negative_value, dtype=torch.float64)
    if not negative.any():  # no negative spike, or one worth nothing
        return SpikeCost(event=event)
    same = bool(torch.isclose(negative.abs(), torch.as_tensor(neuron.p_th, dtype=torch.float64)).all())
    if same or event == "mac":
        return SpikeCost(event=event, state_values=2, updates=2)
    return SpikeCost(event=event, receiver_acs=1, weight_copies=2, state_values=2, updates=2)


_SPIKES = {"signed": "signed spikes, thresholds at the site's range [l, r] (paper 2)",
           "ibt": "signed spikes, negative threshold r / alpha (IBT, Spiking-YOLO)",
           "symmetric": "signed spikes, thresholds +-r (symmetric, stReLU-style)",
           "unsigned": "binary spikes, negative inputs dropped (plain IF, as for ReLU)"}
for _rule, _what in _SPIKES.items():
    register_method(Method(
        name=_rule,
        build=_builder(_rule, _rule),
        spikes=f"{_what}: {SignedIFNeuron.spikes}",
        options=SignedOptions,
        accepts=_accepts,
        passes=lambda o: int(o.T),
        details=_details,
        covers=_covers,
        cost=_cost,
    ))

register_method(Method(
    name="augmented",
    build=_builder("augmented", "ibt"),
    spikes="augmented signed spikes: one event per neuron and step, of integer magnitude m (+m worth m P_th, "
           "-m worth m alpha |N_th|), IBT thresholds (AugMapping, Yu et al. 2022), over T network time steps",
    options=AugmentedOptions,
    accepts=_accepts,
    passes=lambda o: int(o.T),
    details=_details,
    covers=_covers,
    cost=_cost,
))
