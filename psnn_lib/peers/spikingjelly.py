"""SpikingJelly 2.0's rate-coded ANN-to-SNN conversion, as a user would call it.

``spikingjelly.activation_based.ann2snn.Converter`` with its ``RateCodingRecipe``
(Fang et al., 2023) traces the model with ``torch.fx``, fuses each
convolution with its batch norm, records the input of every ``nn.ReLU`` on the
calibration batches (``mode="99.9%"``: the 99.9th percentile of each batch,
averaged over batches with momentum 0.1) and replaces the ReLU by
``scale(1/theta) -> IFNode -> scale(theta)``: an integrate-and-fire neuron with
threshold 1 that resets by subtraction and starts from v = 0. Presented with the
analog image at every step, the network's output after T steps, averaged, is its
rate estimate of the ANN's logits: each IF neuron's mean output
theta * (spikes / T) approximates clip(x, 0, theta) in steps of theta / T, where a
PS neuron's K spikes weighted by d(t) = 2^(s+K-t) (paper 1, Eq. 3) resolve its
range in steps of 2^s (Eq. 18): latency linear in the precision for rate coding,
logarithmic for PS.

Only ``nn.ReLU`` modules are converted; SpikingJelly refuses a network with any
other activation (a ``ReLU6``, an ``F.relu`` call, a GELU) rather than leave it
analog.

Its own energy estimate (:func:`energy`) is SpikingJelly's simple energy model
(``activation_based.op_counter.simple_energy``): MACs at 4.6 pJ and ACs at 0.9 pJ
(45 nm, 32-bit float, Horowitz 2014), its counters working on the torch operations it sees:
an operation on a binary tensor is an AC per non-zero input (a synaptic operation), on any
other tensor a dense MAC, so the spikes of its own conversion, multiplied by theta before
the next layer, count as dense MACs; memory: one weight read per operation and one read
and one write of each neuron's state per step, at 24.96 pJ per byte.

Install: ``pip install --no-deps spikingjelly==2.0.0 loguru==0.7.3``
(pinned in ``requirements-data.txt``).
"""
from __future__ import annotations

import copy
from typing import Iterable, Sequence

import torch
from torch import nn

INSTALL = "pip install --no-deps spikingjelly==2.0.0 loguru==0.7.3"


def _spikingjelly():
    """SpikingJelly's ``activation_based`` package, or an ImportError naming the install command."""
    try:
        from spikingjelly import activation_based
        from spikingjelly.activation_based import ann2snn, functional  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the SpikingJelly peer needs SpikingJelly 2.0: {INSTALL} "
                          "(requirements-data.txt pins it; 'make' installs it)") from err
    return activation_based


def convert(model: nn.Module, calibration: Iterable[torch.Tensor], percentile: float = 99.9) -> nn.Module:
    """SpikingJelly's rate-coded SNN of ``model`` (a copy), thresholds at the ``percentile`` of
    each ReLU's input on the ``calibration`` batches."""
    sj = _spikingjelly()
    recipe = sj.ann2snn.RateCodingRecipe(list(calibration), mode=f"{percentile}%")
    return sj.ann2snn.Converter(recipe).convert(copy.deepcopy(model)).eval()


def _time_steps(steps: Sequence[int]) -> list[int]:
    """The distinct time steps asked for, in order; each must be >= 1."""
    wanted = sorted(set(int(t) for t in steps))
    if not wanted or wanted[0] < 1:
        raise ValueError(f"time steps must be >= 1, got {list(steps)}")
    return wanted


@torch.no_grad()
def outputs(snn: nn.Module, x: torch.Tensor, steps: Sequence[int], batch_size: int = 250
            ) -> dict[int, torch.Tensor]:
    """The SNN's mean output over its first T steps, for each T in ``steps``, from one run of
    max(steps) steps per batch (the analog image presented at every step; the network's
    state reset before every batch, so no sample sees another's membrane potentials)."""
    functional = _spikingjelly().functional
    wanted = _time_steps(steps)
    parts: dict[int, list[torch.Tensor]] = {t: [] for t in wanted}
    for i in range(0, len(x), batch_size):
        functional.reset_net(snn)
        xb, total = x[i:i + batch_size], 0.0
        for t in range(1, wanted[-1] + 1):
            total = total + snn(xb)
            if t in parts:
                parts[t].append((total / t).float().cpu())
    functional.reset_net(snn)
    return {t: torch.cat(p) for t, p in parts.items()}


@torch.no_grad()
def energy(model: nn.Module, x: torch.Tensor, steps: Sequence[int] = (1,)) -> dict[int, dict[str, float]]:
    """SpikingJelly's simple energy model on ``model`` (an SNN of its own, its state reset before
    and after, or an ANN with ``steps=(1,)``) run on ``x`` for each T of ``steps`` (one run of the
    largest, its counters read at each), per sample: its counts (``mac``, ``ac``, ``synop``,
    ``weight_read_bytes``, ``neuron_state_read_bytes``, ...), its MACs in convolutions and matrix
    products alone (``mac_weight_layers``: it also counts batch norm's as MACs) and energies in pJ
    (``pj_ops``: MACs and ACs; ``pj_total``: with memory), by T."""
    sj = _spikingjelly()
    from spikingjelly.activation_based.op_counter.simple_energy import SimpleEnergyProfiler
    from spikingjelly.logger import logger

    wanted = _time_steps(steps)
    aten = torch.ops.aten
    products = (aten.convolution.default, aten.addmm.default, aten.mm.default, aten.bmm.default)
    profiler, out = SimpleEnergyProfiler(), {}
    profiler.bind_model(model)
    sj.functional.reset_net(model)
    logger.disable("spikingjelly")  # its summary line is not a result
    try:
        with profiler:
            for t in range(1, wanted[-1] + 1):
                model(x)
                if t in wanted:
                    report = profiler.get_report()
                    layers = sum(n for op, n in profiler.mac_counter.get_counts().get("Global", {}).items()
                                 if op in products)
                    out[t] = {**{k: v / len(x) for k, v in report.counts.items()}, "mac_weight_layers": layers / len(x),
                              "pj_ops": report.energy_compute_pj / len(x), "pj_total": report.energy_total_pj / len(x)}
    finally:
        logger.enable("spikingjelly")
        sj.functional.reset_net(model)
    return out
