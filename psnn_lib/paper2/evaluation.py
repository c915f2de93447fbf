"""How paper 2's networks are measured: accuracy against T, the time-step rule, firing rates,
activation tails.

One rule for "time steps" (Tables 1 and 5) applied to every method: the
smallest T at which the SNN's accuracy comes within ``STEP_RULE_POINTS``
of its own ANN's (the loss the paper accepts for its own method: 92.72 ->
92.62). An accuracy-against-T curve comes from one run of T_max steps
(the running mean of the outputs of :meth:`ConvertedModel.steps`), and
so do the spikes per image after each step.

SNNs run ``SNN_BATCH`` images at a time: the float64 membranes of a larger
batch fall out of the CPU's caches (Net4 at 500 images a batch runs a step
about 3x slower per image than at 100).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from ..converter.engine import ConvertedModel
from ..progress import progress_bar

STEP_RULE_POINTS = 0.1
SNN_BATCH = 100


@torch.no_grad()
def accuracy_by_step(snn: ConvertedModel, x: torch.Tensor, y: torch.Tensor, batch_size: int = SNN_BATCH,
                     progress: bool = False) -> tuple[list[float], list[float]]:
    """Top-1 accuracy (%) and spikes per image (both signs) after t = 1..T steps
    (T = the model's ``passes``): what a run of exactly t steps gives."""
    correct = torch.zeros(snn.passes, dtype=torch.long)
    spikes = torch.zeros(snn.passes, dtype=torch.float64)
    snn.reset_stats()
    for i in progress_bar(range(0, len(x), batch_size), desc="SNN steps", enabled=progress):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        total, before = None, 0
        for t, out in enumerate(snn.steps(xb)):
            total = out.double() if total is None else total + out
            correct[t] += int((total.argmax(-1) == yb).sum())
            fired = sum(neuron.stats.spikes for neuron in snn.neurons.values())
            spikes[t:] += fired - before
            before = fired
        snn.reset_stats()
    return (100.0 * correct.double() / len(x)).tolist(), (spikes / len(x)).tolist()


def steps_to_reach(curve: list[float], level: float) -> Optional[int]:
    """The smallest T (1-based) whose accuracy is >= ``level``, or None within the curve."""
    return next((t + 1 for t, acc in enumerate(curve) if acc >= level - 1e-9), None)


def time_steps(curve: list[float], ann_accuracy: float) -> Optional[int]:
    """The time-step rule (module docstring)."""
    return steps_to_reach(curve, ann_accuracy - STEP_RULE_POINTS)


@torch.no_grad()
def firing_rates(snn: ConvertedModel, x: torch.Tensor, batch_size: int = SNN_BATCH) -> list[dict]:
    """Per site: spikes per neuron and time step (all spikes, positive and negative),
    the negative share, and the mean signed rate of Eq. 15."""
    snn.reset_stats()
    for i in range(0, len(x), batch_size):
        snn(x[i:i + batch_size])
    rows = []
    for name, neuron in snn.neurons.items():
        st = neuron.stats
        per = st.neurons * st.K
        rows.append({"site": name, "firing rate": st.spikes / per, "negative share": st.negative / max(st.spikes, 1),
                     "signed rate (Eq. 15)": (st.spikes - 2 * st.negative) / per})
    snn.reset_stats()
    return rows


@torch.no_grad()
def activation_samples(model: nn.Module, modules: list[str], x: torch.Tensor) -> dict[str, np.ndarray]:
    """The outputs of the named activation modules on ``x``, per neuron: (samples, neurons)."""
    found: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
    hooks = [model.get_submodule(m).register_forward_hook(
        lambda _m, _i, out, key=m: found[key].append(out.flatten(1))) for m in modules]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return {m: torch.cat(v).numpy() for m, v in found.items()}


def tail_ratio(values: np.ndarray) -> np.ndarray:
    """Per neuron: the largest |activation| over its 99th percentile of |activation| (a long tail is >> 1)."""
    mags = np.abs(values)
    return mags.max(0) / np.maximum(np.percentile(mags, 99, axis=0), 1e-12)
