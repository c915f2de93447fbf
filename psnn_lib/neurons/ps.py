"""The PS neuron as a torch module, with two simulators (paper 1, Eqs. 1-3).

What is spiking here: every neuron emits *binary* spikes z(t) in {0, 1} at
K time steps, with shared thresholds T(t) and spike weights d(t). Its reset
voltages h_i(t) are a table row chosen by the neuron's input (the input is
snapped to the nearest of the fit's grid points), as in the authors' code:
the per-neuron reset of Eq. 2 is a look-up.

- ``mode="stepped"`` integrates Eqs. 1-3 step by step: membrane v, threshold
  T(t), reset to h_i(t+1) after a spike, output sum_t d(t) z(t) + b.
- ``mode="fast"`` reads the same outputs and spike counts from tables the fit
  computed on its grid: one gather per tensor. Tests prove both give equal
  outputs and equal spike counts.

Inputs outside [l, r] saturate (they are clamped to the end of the grid) and
are counted in ``clipped``. NaN inputs give NaN outputs and no spikes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..ps.fit import PSParams
from ..ps.grid import snap
from .stats import SpikeStats

MODES = ("fast", "stepped")


@dataclass
class Trace:
    """Per-step record of ``PSNeuron.simulate`` (time along the first axis)."""

    membrane: torch.Tensor  # v(t) before the spike decision
    spikes: torch.Tensor  # z(t)
    accumulated: torch.Tensor  # b + sum_{tau <= t} d(tau) z(tau)


class PSNeuron(nn.Module):
    """A layer of PS neurons for one fitted activation (elementwise)."""

    MODES = MODES
    spikes = "binary spikes z(t) weighted by d(t) = 2^(s+K-t); reset h_i(t) from a table row (look-up)"

    def __init__(self, params: PSParams, mode: str = "fast", record_stats: bool = True) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.params = params
        self.mode = mode
        self.record_stats = record_stats
        self.stats = SpikeStats(K=params.K)
        p = params
        pad = [0] + list(range(p.grid.numel())) + [p.grid.numel() - 1]  # see ps.grid.snap
        self.register_buffer("h", p.h[:, pad].contiguous(), persistent=False)
        self.register_buffer("d", p.d.clone(), persistent=False)
        self.register_buffer("T", p.T.clone(), persistent=False)
        self.register_buffer("acc_table", p.accumulated[pad], persistent=False)
        self.register_buffer("count_table", p.spike_count[pad].to(torch.int32), persistent=False)
        self._tables: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def extra_repr(self) -> str:
        p = self.params
        return f"{p.activation}, [{p.l:g}, {p.r:g}], K={p.K}, mode={self.mode}"

    def reset_stats(self) -> None:
        self.stats = SpikeStats(K=self.params.K)

    def reset_state(self) -> None:
        """PS neurons keep no state between inputs (each input is K fresh steps)."""

    def _index(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Padded table index of each input and the NaN mask (see :func:`~psnn_lib.ps.grid.snap`)."""
        p = self.params
        return snap(x, p.l, p.delta, p.grid.numel())

    def _record(self, idx: torch.Tensor, nan: Optional[torch.Tensor], spikes: Optional[int]) -> None:
        """Add to the counters: neurons, clipped inputs and (fast path) spikes."""
        if not self.record_stats:
            return
        valid = idx if nan is None else idx[~nan]
        hist = torch.bincount(valid, minlength=self.count_table.numel())
        if spikes is None:
            spikes = int(hist @ self.count_table.to(hist.dtype))
        self.stats.neurons += idx.numel()
        self.stats.spikes += spikes
        self.stats.clipped += int(hist[0] + hist[-1])

    def _dtype_tables(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = (like.dtype, like.device)
        if key not in self._tables:
            b = torch.tensor(self.params.b, dtype=like.dtype, device=like.device)
            d = self.d.to(like)
            out = self.acc_table.to(like) + b
            self._tables[key] = (out, d, b)
        return self._tables[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            raise TypeError(f"PSNeuron needs a floating-point input, got {x.dtype}")
        if self.mode == "fast":
            return self._fast(x)
        if not x.numel():
            return x.clone()
        return self.simulate(x).accumulated[-1]

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        idx, nan = self._index(x)
        out = self._dtype_tables(x)[0].index_select(0, idx)
        self._record(idx, nan, None)
        if nan is not None:
            out.masked_fill_(nan, float("nan"))
        return out.view(x.shape)

    def simulate(self, x: torch.Tensor, record: bool = False) -> Trace:
        """Time-stepped membrane dynamics, Eqs. 1-3.

        v(1) = h_i(1); for t = 1..K: z(t) = Theta(v(t) - T(t)) (Eq. 1),
        v(t+1) = z h_i(t+1) + (1 - z) v(t) (Eq. 2), and the output is
        sum_t d(t) z(t) + b (Eq. 3). With ``record=True`` the trace holds
        every step; otherwise only the final one.
        """
        idx, nan = self._index(x)
        _, d, b = self._dtype_tables(x)
        K = self.params.K
        # reset tables h_i(t) of Eq. 2; the membrane stays in float64 like T(t), so
        # every spike decision is the fit's own, whatever the input dtype
        h, T = self.h.to(x.device), self.T.to(x.device)
        v = h[0].index_select(0, idx)
        acc = torch.zeros(idx.numel(), dtype=x.dtype, device=x.device)
        spikes = 0
        mems, zs, accs = [], [], []
        for t in range(K):
            z = v >= T[t]
            if nan is not None:
                z &= ~nan
            acc += z.to(x.dtype) * d[t]
            spikes += int(z.sum())
            if record:
                mems.append(v.view(x.shape).clone())
                zs.append(z.view(x.shape))
                accs.append((acc + b).view(x.shape))
            if t + 1 < K:
                v = torch.where(z, h[t + 1].index_select(0, idx), v)
        self._record(idx, nan, spikes)
        out = (acc + b).view(x.shape)
        if not record:
            if nan is not None:
                out.masked_fill_(nan.view(x.shape), float("nan"))
            return Trace(v.view(x.shape)[None], z.view(x.shape)[None], out[None])
        acc_all = torch.stack(accs)
        if nan is not None:
            acc_all[:, nan.view(x.shape)] = float("nan")
        return Trace(torch.stack(mems), torch.stack(zs), acc_all)
