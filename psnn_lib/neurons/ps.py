"""The PS neuron as a torch module, with two simulators (paper 1, Eqs. 1-3).

What is spiking here: every neuron emits *binary* spikes z(t) in {0, 1} at
K time steps, with shared thresholds T(t) and spike weights d(t). Its reset
voltages h_i(t) are a table row chosen by the neuron's input (the input is
snapped to the nearest of the fit's grid points), as in the authors' code:
the per-neuron reset of Eq. 2 is a look-up.

- ``mode="stepped"`` integrates Eqs. 1-3 step by step: membrane v, threshold
  T(t), reset to h_i(t+1) after a spike, output sum_t d(t) z(t) + b.
- ``mode="fast"`` reads the same outputs and spike counts from tables the fit
  computed on its grid: one gather each. Tests prove both give equal
  outputs and equal spike counts, in every dtype.

A neuron holds only the fast path's tables: the output of Eq. 3 per grid
point (float32; a float64 copy is built for the first float64 input) and the
spike count (uint8; one histogram of the inputs' indices counts spikes and
clipped inputs). The reset table h (K x G float64) is rebuilt by refitting
(:meth:`~psnn_lib.ps.fit.PSParams.fit_tables`) when the time-stepped simulator
first runs. Precision follows :mod:`psnn_lib.neurons.precision`.

Inputs outside [l, r] saturate (they are clamped to the end of the grid) and
are counted in ``clipped``. NaN inputs give NaN outputs and no spikes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..ps.fit import PSParams
from ..ps.grid import Snapped, snap
from .precision import tensor_bytes, to_output
from .stats import FlatEnds, SpikeStats

MODES = ("fast", "stepped")
_CPU = torch.device("cpu")


@dataclass
class Trace:
    """Per-step record of ``PSNeuron.simulate`` (time along the first axis)."""

    membrane: torch.Tensor  # v(t) before the spike decision
    spikes: torch.Tensor  # z(t)
    accumulated: torch.Tensor  # b + sum_{tau <= t} d(tau) z(tau)


def _padded(values: torch.Tensor) -> torch.Tensor:
    """Per-grid-point values indexed like :func:`~psnn_lib.ps.grid.snap` (ends repeated)."""
    return torch.cat([values[:1], values, values[-1:]])


class PSNeuron(FlatEnds, nn.Module):
    """A layer of PS neurons for one fitted activation (elementwise).

    ``params`` is not modified; the neuron keeps a copy without the fit's
    large tables (``neuron.params.h`` rebuilds them on first read).
    """

    MODES = MODES
    spikes = "binary spikes z(t) weighted by d(t) = 2^(s+K-t); reset h_i(t) from a table row (look-up)"

    def __init__(self, params: PSParams, mode: str = "fast", record_stats: bool = True) -> None:
        super().__init__()
        fitted = params.fit_tables()
        self.params = params.slim()
        self.mode = mode
        self.record_stats = record_stats
        self.stats = SpikeStats(time_steps=params.K)
        counts = next(t for t in (torch.uint8, torch.int16, torch.int32) if params.K <= torch.iinfo(t).max)
        # tables by (kind, device); plain tensors, not buffers, so Module.half() leaves them exact
        self._tables: dict[tuple[str, torch.device], torch.Tensor] = {
            ("out32", _CPU): _padded(fitted.accumulated + params.b).to(torch.float32),
            ("count", _CPU): _padded(fitted.spike_count).to(counts),
        }

    @property
    def mode(self) -> str:
        """The simulator: "fast" (tables) or "stepped" (Eqs. 1-3)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "fast":  # back to the fast path: free the reset tables the stepped one rebuilt
            for key in [k for k in getattr(self, "_tables", {}) if k[0] == "h"]:
                del self._tables[key]
        self._mode = mode

    def extra_repr(self) -> str:
        p = self.params
        return f"{p.activation}, [{p.l:g}, {p.r:g}], K={p.K}, mode={self.mode}"

    def reset_stats(self) -> None:
        self.stats = SpikeStats(time_steps=self.params.K)

    def reset_state(self) -> None:
        """PS neurons keep no state between inputs (each input is K fresh steps)."""

    def table_bytes(self) -> int:
        """Bytes of the tables this neuron holds now (every device; the fit's once rebuilt)."""
        held = [*self._tables.values(), self.params.d, self.params.T]
        if self.params.tables is not None:
            held += vars(self.params.tables).values()
        return tensor_bytes(held)

    def _table(self, kind: str, device: torch.device) -> torch.Tensor:
        """Table ``kind`` on ``device``: "out32", "count" (padded grid), "out64" (built on
        first use) or "h" (the fit's reset table, rebuilt on first use); copied per device."""
        if (kind, device) not in self._tables:
            if (kind, _CPU) not in self._tables:
                p = self.params
                fitted = p.fit_tables()  # the params keep none of a refit's tables
                self._tables[(kind, _CPU)] = fitted.h if kind == "h" else _padded(fitted.accumulated + p.b)
            self._tables[(kind, device)] = self._tables[(kind, _CPU)].to(device)
        return self._tables[(kind, device)]

    def _snap(self, x: torch.Tensor, reuse: bool) -> Snapped:
        p = self.params
        return snap(x, p.l, p.delta, p.points, reuse=reuse)

    def _record(self, at: Snapped, spikes: Optional[int]) -> None:
        """Add to the counters from one histogram of the indices: neurons, clipped
        inputs (the two end bins) and, unless the simulator counted them, spikes."""
        if not self.record_stats:
            return
        hist = torch.bincount(at.index, minlength=self.params.points + 2)
        if at.nan is not None:  # NaN inputs sit at index 1 and emit nothing
            hist[1] -= int(at.nan.sum())
        if spikes is None:
            spikes = int(hist @ self._table("count", hist.device).to(hist.dtype))
        self.stats.neurons += at.index.numel()
        self.stats.spikes += spikes
        self.stats.clipped += int(hist[0]) * (not self.flat[0]) + int(hist[-1]) * (not self.flat[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            raise TypeError(f"PSNeuron needs a floating-point input, got {x.dtype}")
        if self.mode == "fast":
            return self._fast(x)
        return self.simulate(x).accumulated[-1]

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 3 read from the output table; spikes from the count table and a histogram."""
        at = self._snap(x, reuse=True)
        table = self._table("out64" if x.dtype == torch.float64 else "out32", x.device)
        out = table.index_select(0, at.index)
        self._record(at, None)
        if at.nan is not None:
            out.masked_fill_(at.nan, math.nan)
        return out.to(x.dtype).view(x.shape)

    def _output(self, acc: torch.Tensor, at: Snapped, x: torch.Tensor) -> torch.Tensor:
        """b + sum d z (Eq. 3) in float64, rounded to the output of ``x``'s dtype; NaN where x is."""
        out = to_output(acc + self.params.b, x.dtype)
        return (out if at.nan is None else out.masked_fill(at.nan, math.nan)).view(x.shape)

    def simulate(self, x: torch.Tensor, record: bool = False) -> Trace:
        """Time-stepped membrane dynamics, Eqs. 1-3, in float64.

        v(1) = h_i(1); for t = 1..K: z(t) = Theta(v(t) - T(t)) (Eq. 1),
        v(t+1) = z h_i(t+1) + (1 - z) v(t) (Eq. 2), and the output is
        sum_t d(t) z(t) + b (Eq. 3). An input's dynamics depend on it only
        through its grid point i, so they run once per grid point present (at
        most G rows, however many inputs) and are read back per input. With
        ``record=True`` the trace holds every step; otherwise only the final
        one. A NaN input emits no spike and its membrane reads NaN.
        """
        p = self.params
        at = self._snap(x, reuse=False)
        row = (at.index - 1).clamp_(0, p.points - 1).long()  # grid point of each padded index
        present = torch.bincount(row, minlength=p.points) > 0
        points = present.nonzero().squeeze(1)  # the grid points the inputs snap to
        which = (present.cumsum(0) - 1).index_select(0, row)  # each input's position among them
        h = self._table("h", x.device)
        T, d = p.T.to(x.device), p.d.to(x.device)
        v = h[0].index_select(0, points)
        acc = torch.zeros_like(v)
        fired = torch.zeros_like(v)  # spikes per grid point (exact in float64)
        steps = []
        for t in range(p.K):
            z = v >= T[t]
            acc += z * d[t]
            fired += z
            if record or t + 1 == p.K:
                steps.append((v, z, acc.clone()))
            if t + 1 < p.K:
                v = torch.where(z, h[t + 1].index_select(0, points), v)
        live = which if at.nan is None else which[~at.nan]
        self._record(at, int(torch.bincount(live, minlength=len(points)).to(fired.dtype) @ fired))
        trace = [self._per_input(step, which, at, x) for step in steps]
        return Trace(*(torch.stack(parts) for parts in zip(*trace)))

    def _per_input(self, step: tuple[torch.Tensor, torch.Tensor, torch.Tensor], which: torch.Tensor,
                   at: Snapped, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step's membrane, spikes and output (Eq. 3 so far) per grid point, read back per
        input; a NaN input's membrane is NaN and it does not spike."""
        v, z, acc = (values.index_select(0, which) for values in step)
        if at.nan is not None:
            v, z = v.masked_fill(at.nan, math.nan), z & ~at.nan
        return v.view(x.shape), z.view(x.shape), self._output(acc, at, x)
