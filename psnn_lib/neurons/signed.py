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
        x64 = x.to(torch.float64)
        if self.v_p is None:
            self.v_p = torch.full_like(x64, self.v_init * self.p_th)
            self.v_n = torch.full_like(x64, self.v_init * (self.n_th or 0.0))
            self.stats.neurons += x.numel()
        p, n, self.v_p, self.v_n = signed_step(x64, self.v_p, self.v_n, self.p_th, self.n_th, self.kappa)
        positive, negative = int(p.detach().sum()), int(n.detach().sum())
        self.stats.spikes += positive + negative
        self.stats.negative += negative
        self.t += 1
        return to_output(p * self.p_th + n * self.negative_value, x.dtype)
