"""Rate-coded integrate-and-fire conversion of ReLU networks (the baseline).

As SpikingJelly's ann2snn and snn_toolbox: each ReLU becomes an IF neuron
with threshold theta (threshold balancing: theta = the site's calibrated r,
its input maximum or a percentile such as 99.9), reset by subtraction, and
the network runs T time steps with the analog input presented at every
step. A neuron emits a *binary* spike worth theta; the network output is the
mean of the T outputs, so the rate theta * (spikes / T) approximates
clip(x, 0, theta), floored to multiples of theta / T. ReLU6 uses
theta = min(r, 6), which reproduces its clipping exactly.

Spike statistics count each neuron once per input (not once per step),
K = T, and no bias spike (Eq. 26 without its +1). A neuron is counted as
``clipped`` when it ends an inference holding at least one threshold that it
could not emit (its mean input was above theta, or its charge came too late
to leave as spikes; for ReLU6 at theta = 6 that is ReLU6's own clipping).
A NaN (or infinite) input leaves the membrane not finite: the neuron emits no
more spikes and its outputs are NaN for the rest of the inference. The membrane is float64
and the output is rounded to the input's dtype (:mod:`psnn_lib.neurons.precision`).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .fused import fused_step
from .stats import DeviceCounters, FlatEnds


class IFNeuron(DeviceCounters, FlatEnds, nn.Module):
    """Integrate-and-fire, reset by subtraction; one call = one time step (the fused step of
    :mod:`.fused`: one membrane, firing when it reaches theta)."""

    MODES = ("stepped",)
    spikes = "binary spikes worth theta, integrated over T network time steps (rate code)"

    def __init__(self, threshold: float, time_steps: int, v_init: float = 0.0) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"IF threshold must be > 0, got {threshold}")
        self.threshold, self.time_steps, self.v_init = float(threshold), int(time_steps), float(v_init)
        self.mode = "stepped"
        self.reset_stats()
        self.reset_state()

    def extra_repr(self) -> str:
        return f"theta={self.threshold:.4g}, time_steps={self.time_steps}, v_init={self.v_init:g} theta"

    def reset_state(self) -> None:
        """Start a new inference; one that ran its time steps counts its clipped neurons first
        (kept as a tensor: no wait for the device)."""
        if getattr(self, "v", None) is not None and self.t == self.time_steps and not self.flat[1]:
            self.add_clipped((self.v >= self.threshold).sum())
        self.v: Optional[torch.Tensor] = None
        self.t = 0

    def table_bytes(self) -> int:
        """IF neurons hold no tables (the membrane is state, not a table)."""
        return 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.t >= self.time_steps:
            raise RuntimeError(f"IF neuron stepped {self.t + 1} times but time_steps = {self.time_steps}: "
                               "call reset_state()")
        if self.v is None:
            self.v = torch.full(x.shape, self.v_init * self.threshold, dtype=torch.float64, device=x.device)
            self._stats.neurons += x.numel()
        # NaN where v is not finite; the output rounded as to_output rounds
        out = fused_step(x, self.v, None, self.threshold, None, 0.0, self.counts_for(x), at_threshold=True)
        self.t += 1
        return out.to(x.dtype)
