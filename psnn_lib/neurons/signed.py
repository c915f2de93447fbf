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

A neuron is counted as ``clipped`` when it ends an inference of T steps with
a membrane holding more than one threshold that it could not emit (above
P_th, or below N_th, after its ``v_shift`` is taken off): its mean input lay
beyond what T spikes carry, or came too late to leave as spikes. Augmented
spikes without a bound never clip. A NaN (or infinite) input leaves the
membranes not finite: the neuron emits no more spikes and its outputs are NaN
for the rest of the inference (never a silent 0).

Spikes are Heaviside steps in inference; when gradients are on (joint
calibration through time, Sect. 4.2) their derivative is the sigmoid
surrogate of Eq. 32 with steepness ``kappa``, on the membrane distance to
threshold in units of the threshold; the reset passes no gradient (as
SpikingJelly's ``detach_reset``). The membranes are float64 and the
output is rounded to the input's dtype (:mod:`.precision`).

Two implementations of one step, chosen per call: with gradients on and an
input that needs them, :func:`signed_step` (differentiable, for training
through time); otherwise :func:`.fused.fused_step` (shared with the rate-coded IF
neuron), the same operations in place on the membranes (no temporaries of the
membrane's size but the spike masks, and per-channel thresholds expanded once per
inference) with the spike counts kept as tensors, so that no step waits for the device. Both
give the same spikes, membranes and outputs bit for bit (``tests/test_signed.py``).

Three generalisations, each off by default:

- *Per-channel thresholds* (Spiking-YOLO's channel-wise normalisation,
  Kim et al. 2020): ``positive_threshold`` and ``negative_threshold``
  given as 1-D tensors, one value per channel (dimension 1 of the input).
- *Augmented spikes* (AugMapping, Yu et al. 2022): with
  ``max_magnitude`` other than 1, a step emits one spike event whose magnitude
  m is the number of whole thresholds the membrane holds (m = ceil(v / P_th) - 1,
  the count of k >= 1 with v > k P_th, at most ``max_magnitude``; None: no
  bound), worth m P_th, and the membrane resets by m P_th (the negative side
  alike). A magnitude-m spike is m binary spikes of one step fired at once;
  ``stats`` counts events. Inference only: augmented spikes have no surrogate
  gradient here, and a backward pass through them raises.
- *Shifted initial membranes*: ``v_shift`` (a number or one per channel, in
  the output's units) moves both initial membranes, after ``v_init``, so that
  either side's rate moves by about ``v_shift / T``: the positive membrane by
  ``v_shift`` (a spike worth P_th per P_th of membrane), the negative one by
  ``v_shift / alpha`` (a spike worth alpha |N_th| per |N_th|; none for
  alpha = 0). :meth:`SignedIFNeuron.shift_membranes` adds to it; the two-stage
  baseline sets it layer by layer (:mod:`psnn_lib.through_time.membranes`).
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import torch
from torch import nn

from .fused import Threshold, check_shape, fused_step
from .gradients import no_gradient
from .precision import to_output
from .stats import DeviceCounters, FlatEnds

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


def signed_step(x: torch.Tensor, v_p: torch.Tensor, v_n: torch.Tensor, p_th: Threshold, n_th: Optional[Threshold],
                kappa: float = DEFAULT_KAPPA) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One time step of the neuron pair (Eqs. 19-20): (p, n, v_p, v_n) with p, n in {0, 1}
    (n counts negative spikes: the signed spike is p - n). ``n_th=None``: no negative neuron. The
    thresholds are numbers or tensors that broadcast over ``x`` (per-channel thresholds)."""
    v_p = v_p + x
    p = spike((v_p - p_th) / p_th, kappa)
    v_p = v_p - p.detach() * p_th
    if n_th is None:
        return p, torch.zeros_like(p), v_p, v_n
    v_n = v_n + x
    n = spike((n_th - v_n) / -n_th, kappa)
    v_n = v_n - n.detach() * n_th
    return p, n, v_p, v_n


def _per_channel(value: Union[float, torch.Tensor, None], what: str, sign: int) -> Union[float, torch.Tensor, None]:
    """A threshold as a float, or a 1-D float64 tensor (one per channel); finite, of the sign asked."""
    if value is None:
        return None
    if torch.is_tensor(value) and value.dim() == 0:
        value = float(value)
    if torch.is_tensor(value):
        t = value.detach().to(torch.float64).cpu()
        if t.dim() != 1 or t.numel() == 0:
            raise ValueError(f"per-channel {what} thresholds are a 1-D tensor (one per channel), got shape "
                             f"{tuple(t.shape)}")
        if not (torch.isfinite(t).all() and (t * sign > 0).all()):
            raise ValueError(f"the {what} threshold of every channel must be finite and {'>' if sign > 0 else '<'} 0")
        return t
    if not (math.isfinite(value) and value * sign > 0):
        raise ValueError(f"the {what} threshold must be {'> 0' if sign > 0 else '< 0 (or None)'}, got {value!r}")
    return float(value)


class SignedIFNeuron(DeviceCounters, FlatEnds, nn.Module):
    """The neuron pair of Eqs. 19-20; one call is one time step, ``time_steps`` (paper 2's T) per inference.

    Thresholds are numbers, or 1-D tensors with one value per channel (dimension 1 of the
    input: channel-wise normalisation); ``max_magnitude`` other than 1 makes the spikes
    augmented; ``v_shift`` shifts both initial membranes (module docstring)."""

    MODES = ("stepped",)
    spikes = ("signed spikes in {-1, 0, +1} (+1 worth P_th, -1 worth alpha |N_th|), "
              "integrated over T network time steps (rate code)")

    def __init__(self, positive_threshold: Union[float, torch.Tensor],
                 negative_threshold: Union[float, torch.Tensor, None], negative_slope: float,
                 time_steps: int, v_init: float = 0.5, kappa: float = DEFAULT_KAPPA, max_magnitude: Optional[int] = 1,
                 v_shift: Union[float, torch.Tensor] = 0.0) -> None:
        super().__init__()
        self.p_th = _per_channel(positive_threshold, "positive", 1)
        self.n_th = _per_channel(negative_threshold, "negative", -1)
        if not 0 <= negative_slope <= 1:
            raise ValueError(f"negative_slope must be in [0, 1], got {negative_slope!r}")
        if max_magnitude is not None and (isinstance(max_magnitude, bool) or
                                          not isinstance(max_magnitude, numbers.Integral) or max_magnitude < 1):
            raise ValueError(f"max_magnitude is a positive int (1: binary spikes) or None, got {max_magnitude!r}")
        self.slope, self.time_steps = float(negative_slope), int(time_steps)
        self.v_init, self.kappa = float(v_init), kappa
        self.max_magnitude = None if max_magnitude is None else int(max_magnitude)
        self.v_shift: Union[float, torch.Tensor] = 0.0
        self.channels: Optional[int] = None
        self.mode = "stepped"
        self.reset_stats()
        self.shift_membranes(v_shift)

    def shift_membranes(self, shift: Union[float, torch.Tensor]) -> None:
        """Add ``shift`` (a number, or a 1-D tensor with one value per channel, in the output's
        units) to ``v_shift``, the offset of the initial membranes (module docstring); resets
        the state."""
        if torch.is_tensor(shift) and shift.dim() == 0:
            shift = float(shift)
        if torch.is_tensor(shift):
            shift = shift.detach().to(torch.float64).cpu()
            if shift.dim() != 1 or not torch.isfinite(shift).all():
                raise ValueError(f"a per-channel membrane shift is a finite 1-D tensor, got shape {tuple(shift.shape)}")
        elif not math.isfinite(shift):
            raise ValueError(f"the membrane shift must be finite, got {shift!r}")
        sizes = {t.numel() for t in (self.p_th, self.n_th, self.v_shift, shift) if torch.is_tensor(t)}
        if len(sizes) > 1:
            raise ValueError(f"per-channel values of different lengths {sorted(sizes)}")
        v_shift = self.v_shift + shift
        self.v_shift = v_shift if torch.is_tensor(v_shift) else float(v_shift)
        self.channels = sizes.pop() if sizes else None
        self.reset_state()

    @property
    def beta(self) -> Union[float, torch.Tensor]:
        """Eq. 16: the value of a negative spike over that of a positive one (alpha N_th / P_th)."""
        return 0.0 if self.n_th is None else self.slope * self.n_th / self.p_th

    @property
    def negative_value(self) -> Union[float, torch.Tensor]:
        """What one negative spike is worth in the activation's units (alpha N_th < 0)."""
        return 0.0 if self.n_th is None else self.slope * self.n_th

    def extra_repr(self) -> str:
        def show(v: Union[float, torch.Tensor, None]) -> str:
            if v is None:
                return "none"
            return f"{float(v.min()):.4g}..{float(v.max()):.4g} per channel" if torch.is_tensor(v) else f"{v:.4g}"
        bound = "unbounded" if self.max_magnitude is None else f"<= {self.max_magnitude}"
        augmented = "" if self.max_magnitude == 1 else f", augmented spikes (magnitude {bound})"
        shifted = "" if not torch.is_tensor(self.v_shift) and self.v_shift == 0 else f", v_shift={show(self.v_shift)}"
        return f"P_th={show(self.p_th)}, N_th={show(self.n_th)}, alpha={self.slope:g}, beta={show(self.beta)}, " \
               f"time_steps={self.time_steps}, v_init={self.v_init:g}{shifted}{augmented}"

    def shaped(self, value: Union[float, torch.Tensor], x: torch.Tensor) -> Union[float, torch.Tensor]:
        """A number as it is; a per-channel value as float64 on x's device, shaped to broadcast
        over x (channels on dimension 1)."""
        if not torch.is_tensor(value):
            return value
        if x.dim() < 2 or x.shape[1] != value.numel():
            raise ValueError(f"per-channel values for {value.numel()} channels, but the input has shape "
                             f"{tuple(x.shape)} (channels on dimension 1)")
        return value.to(x.device).view(1, -1, *([1] * (x.dim() - 2)))

    def reset_state(self) -> None:
        """Start a new inference; one that ran its time steps counts its clipped neurons first
        (kept as a tensor: no wait for the device)."""
        if getattr(self, "v_p", None) is not None and self.t == self.time_steps:
            with torch.no_grad():
                shift_p, shift_n = self._shifts(self.v_p)
                held = torch.zeros(self.v_p.shape, dtype=torch.bool, device=self.v_p.device)
                if not self.flat[1]:
                    held |= self.v_p - shift_p > self.shaped(self.p_th, self.v_p)
                if self.n_th is not None and not self.flat[0]:
                    held |= self.v_n - shift_n < self.shaped(self.n_th, self.v_n)
                clipped = held.sum()
            self.add_clipped(clipped)
        self.v_p: Optional[torch.Tensor] = None
        self.v_n: Optional[torch.Tensor] = None
        self._full: Optional[tuple] = None  # per-element thresholds of a fused step (per-channel neurons)
        self.t = 0

    def table_bytes(self) -> int:
        """Signed neurons hold no tables."""
        return 0

    def _shifts(self, x: torch.Tensor) -> tuple[Threshold, Threshold]:
        """What ``v_shift`` adds to the positive and the negative initial membrane (over alpha
        for the negative one), shaped for ``x``."""
        shift = self.shaped(self.v_shift, x)
        return shift, shift * (1.0 / self.slope if self.n_th is not None and self.slope > 0 else 0.0)

    def _start(self, x: torch.Tensor) -> None:
        """Membranes at v_init times each threshold, plus their ``v_shift``."""
        def membrane(threshold: Optional[Threshold], shift: Threshold) -> torch.Tensor:
            v = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
            if threshold is not None:
                v += self.v_init * self.shaped(threshold, x)
            return v + shift
        shift_p, shift_n = self._shifts(x)
        self.v_p, self.v_n = membrane(self.p_th, shift_p), membrane(self.n_th, shift_n)
        self._stats.neurons += x.numel()

    def _fused_thresholds(self, x: torch.Tensor) -> tuple:
        """P_th, N_th and a negative spike's value for a fused step: numbers, or per-element tensors
        (made once per inference)."""
        if self.channels is None:
            return self.p_th, self.n_th, self.negative_value
        if self._full is None:
            def full(v: Union[float, torch.Tensor]) -> torch.Tensor:
                if torch.is_tensor(v):
                    return self.shaped(v, x).expand(x.shape).contiguous()
                return torch.full(x.shape, v, dtype=torch.float64, device=x.device)
            self._full = tuple(None if v is None else full(v) for v in (self.p_th, self.n_th, self.negative_value))
        return self._full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.t >= self.time_steps:
            raise RuntimeError(f"signed neuron stepped {self.t + 1} times but time_steps = {self.time_steps}: "
                               "call reset_state()")
        if self.v_p is None:
            self._start(x)
        check_shape(x, self.v_p)
        differentiable = torch.is_grad_enabled() and (x.requires_grad or self.v_p.requires_grad)
        if not differentiable or self.max_magnitude != 1:
            out = fused_step(x, self.v_p, self.v_n, *self._fused_thresholds(x), self.counts_for(x),
                             self.max_magnitude).to(x.dtype)
            self.t += 1
            return no_gradient(x, out, "augmented spikes have no surrogate gradient: no backward pass "
                                       "through them (training through time needs binary signed spikes, "
                                       "max_magnitude=1)") if differentiable else out
        p_th, n_th = self.shaped(self.p_th, x), None if self.n_th is None else self.shaped(self.n_th, x)
        p, n, self.v_p, self.v_n = signed_step(x.to(torch.float64), self.v_p, self.v_n, p_th, n_th, self.kappa)
        self.t += 1
        self._stats.spikes += int(p.detach().sum()) + int(n.detach().sum())
        self._stats.negative += int(n.detach().sum())
        # + 0, or NaN where a membrane is not finite (as the fused step)
        return to_output(p * p_th + n * self.shaped(self.negative_value, x) + (self.v_p - self.v_p).detach(), x.dtype)
