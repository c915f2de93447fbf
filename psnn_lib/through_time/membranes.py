"""Initial-membrane calibration: the first stage of the two-stage baseline (Wang et al. 2025).

Paper 2 describes the two-stage method in one sentence: "the initial
membrane potential is calibrated first, and then each layer is calibrated
with back-propagation-through-time". Our reading of that first stage: the
layers in the order they run, each after the layers before it are shifted,
get a per-channel shift of the initial membranes
(:meth:`~psnn_lib.neurons.signed.SignedIFNeuron.shift_membranes`) of
T times the channel's mean error, ANN activation minus SNN rate, over the
calibration images (channels: dimension 1 of the site's input). A positive
membrane that starts higher by delta emits about delta / P_th more spikes of
worth P_th in T steps, and a negative one started higher by delta / alpha
about delta / |N_th| fewer of worth alpha |N_th|: either way the rate moves
by delta / T, so the channel's mean error is cancelled to first order. Where
the first order fails (a channel whose neurons saturate, or start at half
their threshold so that a shift flips many at once) the shift can overshoot:
a channel whose mean error grew in magnitude with its shift gets its shift
undone (the record counts them). The
second stage is :func:`~.through_time.layerwise_calibration`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..progress import progress_bar
from ..converter.engine import ConvertedModel
from ..converter.registry import positive_int
from .calibrate import CalibrationHistory, _Calibrator, _check_data


def _channel_mean(name: str, x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but 1 (the channels), in float64."""
    if x.dim() < 2:
        raise ValueError(f"site {name}: its input of shape {tuple(x.shape)} has no channel dimension (dimension 1)")
    return x.double().transpose(0, 1).reshape(x.shape[1], -1).mean(1)


@torch.no_grad()
def membrane_calibration(snn: ConvertedModel, x: torch.Tensor, *, batch_size: int = 256,
                         reference: Optional[nn.Module] = None, progress: bool = True) -> CalibrationHistory:
    """Shift the initial membranes of ``snn``'s signed neurons (in place), layer by layer, by T
    times each channel's mean error on inputs ``x`` against ``reference`` (default: the ANN of
    its weights now); a channel whose error grew keeps no shift. Returns each layer's mean absolute
    per-channel error before and after its shift and how many of its channels kept none
    (``epochs[0]``: ``"before"``, ``"after"``, ``"undone"``, one value per site in ``layers``)."""
    _check_data(x)
    positive_int("batch_size", batch_size)
    cal = _Calibrator(snn, reference)
    try:
        layers = cal.layers(x)[:-1]  # the sites in the order they run (not the output)
        ann = _channel_means(cal.twin, cal.ann_maps, x, batch_size, 1)  # the reference is frozen: once
        before, after, undone = [], [], []

        def errors() -> dict[str, torch.Tensor]:
            return _errors(ann, _channel_means(cal.snn, cal.snn_maps, x, batch_size, snn.passes))

        now = errors()
        for name in progress_bar(layers, desc="initial-membrane calibration", enabled=progress):
            before.append(float(now[name].abs().mean()))
            neuron, shift = snn.neurons[name], snn.passes * now[name]
            unshifted = neuron.v_shift
            neuron.shift_membranes(shift)
            shifted = errors()  # every later layer now sees the shifted one
            worse = shifted[name].abs() > now[name].abs()
            if worse.any():  # overshot: those channels keep their old membranes, and so their errors
                neuron.v_shift = unshifted  # exactly as before (adding -shift back could round)
                neuron.shift_membranes(torch.where(worse, 0.0, shift))
                shifted = errors()
            now = shifted
            after.append(float(now[name].abs().mean()))
            undone.append(int(worse.sum()))
    finally:
        cal.close()
    history = CalibrationHistory(layers)
    history.epochs.append({"before": before, "after": after, "undone": undone})
    return history


def _channel_means(model: nn.Module, maps, x: torch.Tensor, batch_size: int, passes: int) -> dict[str, torch.Tensor]:
    """Per site and channel: the mean output of ``model`` per inference (summed over its
    ``passes`` steps by the hooks ``maps``, divided by them) over ``x``."""
    totals: dict[str, torch.Tensor] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        model(xb)
        for name, out in maps.take().items():
            part = _channel_mean(name, out / passes) * len(xb)
            totals[name] = totals[name] + part if name in totals else part
    return {name: t.cpu() / len(x) for name, t in totals.items()}


def _errors(ann: dict[str, torch.Tensor], snn: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: ann[name] - snn[name] for name in ann}
