"""The PS neuron as a torch module, with two simulators (paper 1, Eqs. 1-3).

What is spiking here: every neuron emits *binary* spikes z(t) in {0, 1} at
K time steps, with shared thresholds T(t) and spike weights d(t). Its reset
voltages h_i(t) are a table row chosen by the neuron's input (the input is
snapped to the nearest of the fit's grid points), as in the authors' code:
the per-neuron reset of Eq. 2 is a look-up.

- ``mode="stepped"`` integrates Eqs. 1-3 step by step: membrane v, threshold
  T(t), reset to h_i(t+1) after a spike, output sum_t d(t) z(t) + b; once per
  grid point the inputs snap to, read back per input. On a CPU one compiled
  pass (:mod:`psnn_lib.kernels.ps_steps`), elsewhere its torch twin.
- ``mode="fast"`` reads the same outputs and spike counts from tables the fit
  computed on its grid: one gather. On a CPU one compiled pass snaps, reads
  and counts (:mod:`psnn_lib.kernels.ps_fast`); elsewhere, or without a C
  compiler, its torch twin does the same in whole-tensor operations. Tests
  prove the three give equal outputs and equal counts, in every dtype.

A neuron holds only the fast path's table: per grid point the float32 output of
Eq. 3 (its bits) and the spike count packed in one int64, so that one gather
serves both (a float64 copy of the outputs is built for the first float64
input). Spikes and clipped inputs are sums over the gathered entries and the
end indices, kept on the input's device (no step waits for it). The reset
table h (K x G float64) is rebuilt by refitting
(:meth:`~psnn_lib.ps.fit.PSParams.fit_tables`) when the time-stepped simulator
first runs. Precision follows :mod:`psnn_lib.neurons.precision`.

Inputs outside [l, r] saturate (they are clamped to the end of the grid) and
are counted in ``clipped``. NaN inputs give NaN outputs and no spikes.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Union

import torch
from torch import nn

from ..kernels import ps_fast, ps_steps
from ..ps.fit import PSParams
from ..ps.grid import Snapped, snap, snap_affine
from .precision import tensor_bytes, to_output
from .stats import DeviceCounters, FlatEnds, SpikeStats

MODES = ("fast", "stepped")
_HIGH_WORD = 1 if sys.byteorder == "little" else 0  # where an int64's high 32 bits sit among its two int32
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


def _packed(outputs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per padded index the float32 output's bits (low 32 bits) and the spike count (high 32)."""
    bits = outputs.to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return bits | (counts.to(torch.int64) << 32)


class PSNeuron(DeviceCounters, FlatEnds, nn.Module):
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
        self.reset_stats()
        # tables by (kind, device); plain tensors, not buffers, so Module.half() leaves them exact
        self._tables: dict[tuple[str, torch.device], torch.Tensor] = {
            ("packed", _CPU): _packed(_padded(fitted.accumulated + params.b), _padded(fitted.spike_count)),
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
        """Table ``kind`` on ``device``: "packed" (padded grid: float32 output bits and spike
        count), "out64" (built on first use) or "h" (the fit's reset table, rebuilt on first
        use); copied per device."""
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

    def _add(self, neurons: int, spikes: Union[int, torch.Tensor], low: Union[int, torch.Tensor],
             high: Union[int, torch.Tensor]) -> None:
        """Add one call's counts: its ``neurons``, their ``spikes``, and the inputs beyond either
        end of the grid (index 0 or the last: clipped, unless the activation is flat there).
        Tensors stay on their device until ``stats`` is read."""
        if not self.record_stats:
            return
        self._stats.neurons += neurons
        clipped = low * (not self.flat[0]) + high * (not self.flat[1])
        if torch.is_tensor(spikes):
            self.counts_for(spikes)[0] += spikes
            self.add_clipped(clipped)
        else:
            self._stats.spikes += spikes
            self._stats.clipped += clipped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            raise TypeError(f"PSNeuron needs a floating-point input, got {x.dtype}")
        if self.mode == "fast":
            return self._fast(x)
        at, which, steps = self._per_point(x, record=False)
        return self._output(steps[-1][2], which, at, x)

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 3 read from the table: the compiled pass on a CPU where it is available, else
        its torch twin."""
        if x.device.type == "cpu" and ps_fast.available():
            return self._fast_compiled(x)
        return self._fast_torch(x)

    def _fast_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """:func:`psnn_lib.kernels.ps_fast.ps_fast` on a CPU input (float16 and bfloat16 inputs
        go in as float32, which holds them exactly)."""
        src = x.detach().reshape(-1)
        src = (src if src.dtype in (torch.float32, torch.float64) else src.to(torch.float32)).contiguous()
        p = self.params
        out64 = self._table("out64", x.device) if src.dtype == torch.float64 else None
        out, totals = ps_fast.ps_fast(src, *snap_affine(p.l, p.delta), p.points + 1, self._table("packed", x.device),
                                      out64)
        self._add(x.numel(), totals.spikes, totals.low, totals.high)
        return out.to(x.dtype).view(x.shape)

    def _fast_torch(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled pass in whole-tensor operations, on any device, with no wait for it:
        one gather of the packed table, the counts as sums."""
        at = self._snap(x, reuse=True)
        packed = self._table("packed", x.device)
        hit = packed.index_select(0, at.index)
        if x.dtype == torch.float64:
            out = self._table("out64", x.device).index_select(0, at.index)
        else:
            out = hit.to(torch.int32).view(torch.float32)  # the low 32 bits (two's complement wrap)
        out.masked_fill_(at.nan, math.nan)
        if self.record_stats:
            counts = hit.view(torch.int32)[_HIGH_WORD::2]  # the high 32 bits: the spike counts
            nans = torch.count_nonzero(at.nan)  # NaN inputs sit at index 1 and emit nothing
            spikes = counts.sum(dtype=torch.int64) - nans * (packed[1] >> 32)
            self._add(x.numel(), spikes, torch.count_nonzero(at.index == 0),
                      torch.count_nonzero(at.index == self.params.points + 1))
        return out.to(x.dtype).view(x.shape)

    def _output(self, acc: torch.Tensor, which: torch.Tensor, at: Snapped, x: torch.Tensor) -> torch.Tensor:
        """b + sum d z (Eq. 3) per grid point in float64, rounded to the output of ``x``'s dtype
        and read back per input; NaN where x is."""
        out = to_output(acc + self.params.b, x.dtype).index_select(0, which)
        return out.masked_fill_(at.nan, math.nan).view(x.shape)

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
        at, which, steps = self._per_point(x, record)
        trace = [self._per_input(step, which, at, x) for step in steps]
        return Trace(*(torch.stack(parts) for parts in zip(*trace)))

    def _per_point(self, x: torch.Tensor, record: bool) -> tuple[Snapped, torch.Tensor, list[tuple]]:
        """Eqs. 1-3 once per grid point the inputs snap to (compiled on a CPU where available, else
        the torch twin), and the counts: the snap (its ``index`` a buffer the next snap
        overwrites), each input's position among those points, and per step (every step with
        ``record``, else the last) the points' membrane, spikes and Eq. 3 so far."""
        p = self.params
        at = self._snap(x, reuse=True)
        h = self._table("h", x.device)
        if x.device.type == "cpu" and ps_steps.available():
            run = ps_steps.ps_steps(at.index, at.nan, h, p.T, p.d, record)
        else:
            run = self._steps_torch(at, h, record)
        self._add(at.index.numel(), run.spikes, run.low, run.high)
        steps = list(zip(run.v, run.z, run.acc)) if record else [(run.v, run.z, run.acc)]
        return at, run.which, steps

    def _steps_torch(self, at: Snapped, h: torch.Tensor, record: bool) -> ps_steps.Steps:
        """:func:`psnn_lib.kernels.ps_steps.ps_steps` in whole-tensor operations, on any device:
        the same membranes, spikes, outputs and counts bit for bit."""
        p = self.params
        hist = torch.bincount(at.index, minlength=p.points + 2)  # inputs per padded index
        per_point = hist[1:-1].clone()
        per_point[0] += hist[0]  # the ends saturate to the end points
        per_point[-1] += hist[-1]
        present = per_point > 0
        points = present.nonzero().squeeze(1)  # the grid points the inputs snap to
        row = (at.index - 1).clamp_(0, p.points - 1)  # grid point of each padded index
        which = (present.cumsum(0) - 1).index_select(0, row)  # each input's position among the points
        resets = h.index_select(1, points)  # v(1), then h(t+1), of each point
        Ts, ds = p.T.tolist(), p.d.tolist()
        z = torch.empty(resets.shape, dtype=torch.bool, device=resets.device)
        v, acc = (torch.empty_like(resets) for _ in range(2)) if record else (None, None)
        now, total = resets[0], torch.zeros_like(resets[0])
        for t in range(p.K):
            if record:
                v[t] = now
            spiked = torch.ge(now, Ts[t], out=z[t])  # Eq. 1
            total.add_(spiked, alpha=ds[t])  # Eq. 3 so far: d(t) z(t) is exact, then one rounding
            if record:
                acc[t] = total
            if t + 1 < p.K:
                now = torch.where(spiked, resets[t + 1], now)  # Eq. 2
        fired = z.sum(0)
        nans = int(torch.count_nonzero(at.nan))  # at index 1: grid point 0, the first present
        spikes = int((per_point.index_select(0, points) * fired).sum()) - (nans and nans * int(fired[0]))
        if not record:
            v, z, acc = now, z[-1], total
        return ps_steps.Steps(which, v, z, acc, spikes, int(hist[0]), int(hist[-1]))

    def _per_input(self, step: tuple[torch.Tensor, torch.Tensor, torch.Tensor], which: torch.Tensor,
                   at: Snapped, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step's membrane, spikes and output (Eq. 3 so far) per grid point, read back per
        input; a NaN input's membrane is NaN and it does not spike."""
        v, z = (values.index_select(0, which) for values in step[:2])
        v, z = v.masked_fill(at.nan, math.nan), z & ~at.nan
        return v.view(x.shape), z.view(x.shape), self._output(step[2], which, at, x)
