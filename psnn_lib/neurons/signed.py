"""Neurons with positive and negative spikes for Leaky ReLU networks (paper 2, Sect. 3.2).

A signed neuron emits +1 when its membrane rises above the positive
threshold P_th (Eq. 11) and -1 when it falls below the negative threshold
N_th < 0 (Eq. 12), and resets by subtraction (Eq. 13). As in the paper's
implementation it is a *pair* of integrate-and-fire membranes (Eqs. 19-20)
that both integrate the layer's input x(t): the positive one fires +1 and
resets by P_th, the negative one fires -1 and resets by |N_th| (towards zero:
Eq. 13 written with n = -1 and N_th < 0 would push it further away; see the
book's table of decisions). Started at v_init * P_th and v_init * N_th, the
two never fire in the same step, so a step's output is one signed spike
s(t) in {-1, 0, +1}.

A positive spike is worth P_th of the activation, a negative spike
alpha * |N_th|: their ratio is the beta of Eq. 16, and over T steps the rate
of Eq. 15 times these values approximates the Leaky ReLU clipped to
[alpha * N_th, P_th] (Eq. 17), to one spike's worth. Thresholds are in the
units of the neuron's input (the converter normalises no weights: a spike
*carries* its value, which is the same as dividing the next layer's weights).

The baselines are the same neuron with other thresholds (chosen by the
converter's methods): the IBT neuron of Spiking-YOLO (N_th = -P_th / alpha,
Eq. 18, so |beta| = 1), a symmetric-threshold neuron (N_th = -P_th) and the
plain IF neuron (no negative spikes: ``negative_threshold=None``).

Spikes are Heaviside steps in inference; when gradients are on (joint
calibration through time, Sect. 4.2) their derivative is the sigmoid
surrogate of Eq. 32 with steepness ``kappa``, on the membrane distance to
threshold in units of the threshold; the reset passes no gradient (as
SpikingJelly's ``detach_reset``). The membranes are float64 and the
output is rounded to the input's dtype (:mod:`.precision`).

Two implementations of one step, chosen per call: with gradients on and an
input that needs them, :func:`signed_step` (differentiable, for training
through time); otherwise :func:`fused_step`, the same operations in place on
the membranes (no temporaries of the membrane's size but the spike masks) with
the spike counts kept as tensors, so that no step waits for the device. Both
give the same spikes, membranes and outputs bit for bit (``tests/test_signed.py``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .precision import to_output
from .stats import SpikeStats

DEFAULT_KAPPA = 6.7  # Sect. 5.1


class SigmoidSurrogateSpike(torch.autograd.Function):
    """Heaviside(u) forward; derivative of Eq. 32's g(u) = 1 / (1 + exp(-kappa u)) backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, kappa: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.kappa = kappa
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        g = torch.sigmoid(ctx.kappa * u)
        return grad * ctx.kappa * g * (1 - g), None


def spike(u: torch.Tensor, kappa: float) -> torch.Tensor:
    """1 where u > 0 (Eqs. 11-12); surrogate gradient when gradients are on."""
    if torch.is_grad_enabled() and u.requires_grad:
        return SigmoidSurrogateSpike.apply(u, kappa)
    return (u > 0).to(u.dtype)


def signed_step(x: torch.Tensor, v_p: torch.Tensor, v_n: torch.Tensor, p_th: float, n_th: Optional[float],
                kappa: float = DEFAULT_KAPPA) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One time step of the neuron pair (Eqs. 19-20): (p, n, v_p, v_n) with p, n in {0, 1}
    (n counts negative spikes: the signed spike is p - n). ``n_th=None``: no negative neuron."""
    v_p = v_p + x
    p = spike((v_p - p_th) / p_th, kappa)
    v_p = v_p - p.detach() * p_th
    if n_th is None:
        return p, torch.zeros_like(p), v_p, v_n
    v_n = v_n + x
    n = spike((n_th - v_n) / -n_th, kappa)
    v_n = v_n - n.detach() * n_th
    return p, n, v_p, v_n


CHUNK = 1 << 16  # elements a fused step updates at a time on a CPU: its temporaries stay in cache


@torch.no_grad()
def fused_step(x: torch.Tensor, v_p: torch.Tensor, v_n: torch.Tensor, p_th: float, n_th: Optional[float],
               negative_value: float, counts: torch.Tensor) -> torch.Tensor:
    """One inference step of the neuron pair in place: the membranes ``v_p``, ``v_n`` (float64,
    contiguous, of ``x``'s shape) integrate ``x`` and reset, ``counts`` (float64: positive,
    negative; exact below 2^53) adds the step's spikes; returns the step's output (float64 for
    float64 inputs, else float32, as :func:`.to_output` rounds). On a CPU ``CHUNK`` elements at
    a time (on a GPU all at once), every operation in float64 (no casts); the same spikes and
    values as :func:`signed_step`:
    (v - P_th) / P_th > 0 is v > P_th, (N_th - v) / -N_th > 0 is v < N_th, and the output
    p P_th + n (alpha N_th) is summed in the same order."""
    out = torch.empty(x.shape, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32,
                      device=x.device)
    chunk = CHUNK if x.device.type == "cpu" else max(x.numel(), 1)
    spiked = torch.empty(min(chunk, x.numel()), dtype=torch.float64, device=x.device)  # 1.0 where a spike
    sums = []
    parts = zip(x.reshape(-1).split(chunk), v_p.view(-1).split(chunk), v_n.view(-1).split(chunk),
                out.view(-1).split(chunk))
    for xc, vp, vn, oc in parts:
        xc, fired = xc.to(torch.float64), spiked[:len(xc)]
        vp.add_(xc)
        torch.gt(vp, p_th, out=fired)
        vp.sub_(fired, alpha=p_th)
        positive = fired.sum()
        value = fired * p_th
        if n_th is None:
            sums.append(torch.stack([positive, torch.zeros_like(positive)]))
        else:
            vn.add_(xc)
            torch.lt(vn, n_th, out=fired)
            vn.sub_(fired, alpha=n_th)
            sums.append(torch.stack([positive, fired.sum()]))
            value.add_(fired, alpha=negative_value)
        oc.copy_(value)
    if sums:
        counts += torch.stack(sums).sum(0)
    return out


class SignedIFNeuron(nn.Module):
    """The neuron pair of Eqs. 19-20; one call is one time step, T steps per inference."""

    MODES = ("stepped",)
    spikes = ("signed spikes in {-1, 0, +1} (+1 worth P_th, -1 worth alpha |N_th|), "
              "integrated over T network time steps (rate code)")

    def __init__(self, positive_threshold: float, negative_threshold: Optional[float], negative_slope: float,
                 T: int, v_init: float = 0.5, kappa: float = DEFAULT_KAPPA) -> None:
        super().__init__()
        if not (math.isfinite(positive_threshold) and positive_threshold > 0):
            raise ValueError(f"the positive threshold must be > 0, got {positive_threshold!r}")
        if negative_threshold is not None and not (math.isfinite(negative_threshold) and negative_threshold < 0):
            raise ValueError(f"the negative threshold must be < 0 (or None), got {negative_threshold!r}")
        if not 0 <= negative_slope <= 1:
            raise ValueError(f"negative_slope must be in [0, 1], got {negative_slope!r}")
        self.p_th, self.n_th = float(positive_threshold), negative_threshold
        self.slope, self.T, self.v_init, self.kappa = float(negative_slope), int(T), float(v_init), kappa
        self.mode = "stepped"
        self.reset_stats()
        self.reset_state()

    @property
    def beta(self) -> float:
        """Eq. 16: the value of a negative spike over that of a positive one (alpha N_th / P_th)."""
        return 0.0 if self.n_th is None else self.slope * self.n_th / self.p_th

    @property
    def negative_value(self) -> float:
        """What one negative spike is worth in the activation's units (alpha N_th < 0)."""
        return 0.0 if self.n_th is None else self.slope * self.n_th

    def extra_repr(self) -> str:
        n = "none" if self.n_th is None else f"{self.n_th:.4g}"
        return f"P_th={self.p_th:.4g}, N_th={n}, alpha={self.slope:g}, beta={self.beta:.4g}, T={self.T}, " \
               f"v_init={self.v_init:g}"

    @property
    def stats(self) -> SpikeStats:
        """The spike counters, with the counts of the fused steps since the last read."""
        if self._counts is not None:
            positive, negative = (int(c) for c in self._counts.tolist())
            self._stats.spikes += positive + negative
            self._stats.negative += negative
            self._counts = None
        return self._stats

    @stats.setter
    def stats(self, value: SpikeStats) -> None:
        self._stats, self._counts = value, None

    def spike_total(self) -> torch.Tensor:
        """Spikes of both signs counted so far, as a float64 tensor (read without waiting for the
        device)."""
        if self._counts is None:
            return torch.tensor(self._stats.spikes, dtype=torch.float64)
        return self._counts.sum() + self._stats.spikes

    def reset_stats(self) -> None:
        self.stats = SpikeStats(K=self.T, bias_spike=False)

    def reset_state(self) -> None:
        self.v_p: Optional[torch.Tensor] = None
        self.v_n: Optional[torch.Tensor] = None
        self.t = 0

    def table_bytes(self) -> int:
        """Signed neurons hold no tables."""
        return 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.t >= self.T:
            raise RuntimeError(f"signed neuron stepped {self.t + 1} times but T = {self.T}: call reset_state()")
        if self.v_p is None:
            self.v_p = torch.full(x.shape, self.v_init * self.p_th, dtype=torch.float64, device=x.device)
            self.v_n = torch.full(x.shape, self.v_init * (self.n_th or 0.0), dtype=torch.float64, device=x.device)
            self._stats.neurons += x.numel()
        self.t += 1
        if not (torch.is_grad_enabled() and (x.requires_grad or self.v_p.requires_grad)):
            if self._counts is not None and (self._counts.device != x.device or
                                             self._counts.is_inference() != torch.is_inference_mode_enabled()):
                self.stats  # noqa: B018 (folds the counts kept on another device, or in inference mode)
            if self._counts is None:
                self._counts = torch.zeros(2, dtype=torch.float64, device=x.device)
            return fused_step(x, self.v_p, self.v_n, self.p_th, self.n_th, self.negative_value,
                              self._counts).to(x.dtype)
        p, n, self.v_p, self.v_n = signed_step(x.to(torch.float64), self.v_p, self.v_n, self.p_th, self.n_th,
                                               self.kappa)
        self._stats.spikes += int(p.detach().sum()) + int(n.detach().sum())
        self._stats.negative += int(n.detach().sum())
        return to_output(p * self.p_th + n * self.negative_value, x.dtype)
