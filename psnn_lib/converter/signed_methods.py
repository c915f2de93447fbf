"""Paper 2's neurons as conversion methods: ``signed``, ``ibt``, ``symmetric``, ``unsigned``.

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
=============  ===============  ==========================  ===================================

So ``signed`` covers exactly the site's range with one spike per step at
either end, where ``ibt`` needs 1 / alpha times as many steps for a
negative value. With a clipped activation the interval is the learned
clipping range (``ActivationSpec.bounds``): the weight normalisation by the
learned thresholds of paper 2, Sect. 4.1 (``ibt`` and ``symmetric`` refuse a
clipped site whose bound they would overshoot: they cannot clip there). The
report's ``clipped_fraction`` counts inputs outside [N_th, P_th]. Options: ``T`` (time steps),
``v_init`` (initial membranes as a fraction of each threshold) and
``kappa`` (surrogate steepness, Eq. 32, used only when training through
time: :mod:`psnn_lib.converter.through_time`).
"""
from __future__ import annotations

import math
from typing import Optional

from ..activations import ActivationSpec
from ..neurons.signed import DEFAULT_KAPPA, SignedIFNeuron
from .methods import Method, Site, number, positive_int, register_method


def _accepts(spec: ActivationSpec) -> Optional[str]:
    if spec.negative_slope is not None and 0 <= spec.negative_slope <= 1:
        return None
    return "signed-spike neurons convert the ReLU family only (LeakyReLU with slope in [0, 1], ReLU)"


def _check(o: dict) -> None:
    positive_int("T", o["T"])
    number("v_init", o["v_init"])
    number("kappa", o["kappa"], positive=True)
    if not 0 <= o["v_init"] < 1:
        raise ValueError(f"v_init is a fraction of the thresholds in [0, 1), got {o['v_init']!r}")


def _negative_threshold(rule: str, l: float, r: float, alpha: float) -> Optional[float]:
    if alpha == 0 or rule == "unsigned":
        return None  # nothing to represent below zero
    if rule == "signed":
        return l if l < 0 else None
    return -r / alpha if rule == "ibt" else -r


def _builder(rule: str):
    def build(site: Site, o: dict) -> SignedIFNeuron:
        l, r = site.interval
        if not r > 0:
            raise ValueError(f"its calibrated inputs are never positive (r = {r:g}); a positive threshold "
                             "needs r > 0")
        alpha = float(site.spec.negative_slope)
        n_th = _negative_threshold(rule, l, r, alpha)
        bounds = site.spec.bounds
        if n_th is not None and bounds is not None and n_th < bounds[0] * (1 + 1e-9):
            raise ValueError(f"method {rule!r} puts the negative threshold at {n_th:.6g}, below the input "
                             f"{bounds[0]:.6g} where this clipped activation stops falling: its neurons would "
                             "not clip there (use method 'signed', or clip symmetrically)")
        return SignedIFNeuron(r, n_th, alpha, int(o["T"]), float(o["v_init"]), float(o["kappa"]))
    return build


def _covers(neuron: SignedIFNeuron) -> tuple[float, float]:
    """Inputs the neuron represents: [N_th, P_th]; below 0 nothing without negative spikes
    (all of it for ReLU, which is flat there)."""
    if neuron.slope == 0:
        return -math.inf, neuron.p_th
    return (neuron.n_th if neuron.n_th is not None else 0.0), neuron.p_th


_SPIKES = {"signed": "signed spikes, thresholds at the site's range [l, r] (paper 2)",
           "ibt": "signed spikes, negative threshold r / alpha (IBT, Spiking-YOLO)",
           "symmetric": "signed spikes, thresholds +-r (symmetric, stReLU-style)",
           "unsigned": "binary spikes, negative inputs dropped (plain IF, as for ReLU)"}

for _rule, _what in _SPIKES.items():
    register_method(Method(
        name=_rule,
        build=_builder(_rule),
        spikes=f"{_what}: {SignedIFNeuron.spikes}",
        defaults={"T": 8, "v_init": 0.5, "kappa": DEFAULT_KAPPA},
        accepts=_accepts,
        passes=lambda o: int(o["T"]),
        check=_check,
        details=lambda neuron: {"P_th": neuron.p_th, "N_th": neuron.n_th, "beta": neuron.beta},
        covers=_covers,
    ))
