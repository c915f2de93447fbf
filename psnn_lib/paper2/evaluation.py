"""How paper 2's networks are measured: accuracy against T with paired standard errors, the
time-step rule, firing rates, activation tails.

An accuracy-against-T curve comes from one run of T_max steps (the running
mean of the outputs of :meth:`ConvertedModel.steps`): :class:`StepCurve` holds,
per step t and test image, whether the SNN run for exactly t steps classifies
it right, and each site's spikes per image after t steps (what the SNN run for
t steps costs: :meth:`ConvertedModel.cost` with ``spikes`` and ``steps``). Beside every SNN accuracy
stands the paired standard error of SNN minus ANN on the same images
(:func:`paired_se`), beside every ANN accuracy its binomial standard error.

One rule for "time steps" (Tables 1 and 5), fixed before the curves were
looked at (:func:`settled_steps`): the smallest T from which the SNN *stays*,
at every step up to the T_max run, within the allowance of its own ANN; the
allowance is the row's own printed ANN-SNN gap plus one paired standard
error at that step. A noisy curve cannot pass it by one lucky step.

SNNs run ``SNN_BATCH`` images at a time (the fused signed step keeps its
temporaries in the CPU's cache whatever the batch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..converter.engine import ConvertedModel
from ..progress import progress_bar

SNN_BATCH = 256


@dataclass
class StepCurve:
    """``correct[t, i]``: image i right after t + 1 steps; ``site_spikes[site][t]``: that site's
    spikes per image then (both signs)."""

    correct: torch.Tensor
    site_spikes: dict[str, list[float]]

    @property
    def spikes(self) -> list[float]:
        """Spikes per image after t = 1..T steps, every site together."""
        return [float(sum(at)) for at in zip(*self.site_spikes.values())] or [0.0] * len(self.correct)

    def spikes_at(self, T: int) -> dict[str, float]:
        """Each site's spikes per image after T steps."""
        return {site: counts[T - 1] for site, counts in self.site_spikes.items()}

    @property
    def accuracy(self) -> list[float]:
        """Top-1 accuracy (%) after t = 1..T steps."""
        return (100.0 * self.correct.double().mean(1)).tolist()

    def paired_se(self, ann_correct: torch.Tensor) -> list[float]:
        """The paired standard error (points) of SNN minus ANN after each step."""
        return [paired_se(c, ann_correct) for c in self.correct]


def binomial_se(correct: torch.Tensor) -> float:
    """Standard error (points) of an accuracy over ``len(correct)`` images."""
    n = len(correct)
    p = float(correct.double().mean())
    return 100.0 * math.sqrt(p * (1 - p) / n) if n > 1 else math.nan


def paired_se(snn_correct: torch.Tensor, ann_correct: torch.Tensor) -> float:
    """Standard error (points) of the mean of SNN-right minus ANN-right over the same images."""
    if snn_correct.shape != ann_correct.shape:
        raise ValueError(f"paired images differ: {tuple(snn_correct.shape)} vs {tuple(ann_correct.shape)}")
    d = snn_correct.double() - ann_correct.double()
    return 100.0 * float(d.std()) / math.sqrt(len(d)) if len(d) > 1 else math.nan


def settled_steps(curve: StepCurve, ann_correct: torch.Tensor, gap: float) -> Optional[int]:
    """The time-step rule (module docstring): the smallest T with acc(t) >= ANN - gap - SE(t)
    for every t in [T, T_max]; None when the last step fails."""
    ann = 100.0 * float(ann_correct.double().mean())
    ok = [a >= ann - gap - se - 1e-9 for a, se in zip(curve.accuracy, curve.paired_se(ann_correct))]
    if not ok or not ok[-1]:
        return None
    T = len(ok)
    while T > 1 and ok[T - 2]:
        T -= 1
    return T


def device_of(model: nn.Module) -> torch.device:
    """Where a model's parameters are (the CPU for one without any): its inputs go there."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def accuracy_by_step(snn: ConvertedModel, x: torch.Tensor, y: torch.Tensor, batch_size: int = SNN_BATCH,
                     progress: bool = False) -> StepCurve:
    """Which images are right, and spikes per image (both signs), after t = 1..T steps
    (T = the model's ``passes``) of an SNN of signed-spike neurons: what a run of exactly t
    steps gives."""
    if not snn.neurons:
        raise ValueError("this model has no converted site: nothing spikes")
    correct = torch.zeros(snn.passes, len(x), dtype=torch.bool)
    spikes = torch.zeros(snn.passes, len(snn.neurons), dtype=torch.float64)
    snn.reset_stats()
    for i in progress_bar(range(0, len(x), batch_size), desc="SNN steps", enabled=progress):
        xb, yb = x[i:i + batch_size].to(device_of(snn)), y[i:i + batch_size]
        total, right, fired = None, [], []
        for out in snn.steps(xb):
            total = out.double() if total is None else total + out
            right.append(total.argmax(-1) == yb.to(total.device))
            fired.append(torch.stack([neuron.spike_total().to(total.device) for neuron in snn.neurons.values()]))
        correct[:, i:i + batch_size] = torch.stack(right).cpu()  # one read per batch, not per step
        spikes += torch.stack(fired).cpu().double()  # each site's spikes after t steps
        snn.reset_stats()
    per_image = (spikes / len(x)).T.tolist()
    return StepCurve(correct, dict(zip(snn.neurons, per_image)))


@torch.no_grad()
def firing_rates(snn: ConvertedModel, x: torch.Tensor, batch_size: int = SNN_BATCH) -> list[dict]:
    """Per site: spikes per neuron and time step (all spikes, positive and negative),
    the negative share, and the mean signed rate of Eq. 15."""
    snn.reset_stats()
    for i in range(0, len(x), batch_size):
        snn(x[i:i + batch_size].to(device_of(snn)))
    rows = []
    for name, neuron in snn.neurons.items():
        st = neuron.stats
        per = st.neurons * st.time_steps
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
        model.eval()(x.to(device_of(model)))
    finally:
        for h in hooks:
            h.remove()
    return {m: torch.cat(v).cpu().numpy() for m, v in found.items()}


def tail_ratio(values: np.ndarray) -> np.ndarray:
    """Per neuron: the largest |activation| over its 99th percentile of |activation| (a long tail is >> 1)."""
    mags = np.abs(values)
    return mags.max(0) / np.maximum(np.percentile(mags, 99, axis=0), 1e-12)
