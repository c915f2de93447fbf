"""FS neurons (Stöckl & Maass 2021): the few-spikes method PS improves on.

An FS neuron runs K steps on its input x: v(1) = x, z(t) = Theta(v(t) - T(t)),
v(t+1) = v(t) - h(t) z(t), output sum_t d(t) z(t). It emits *binary* spikes;
h, d, T are shared by all neurons of one activation and are trained once per
(activation, K) on [-10, 10] (``fs_train``); the trained table ships inside
the package (``psnn_lib/neurons/fs_params.json``). ReLU is analytic: h = d = T = alpha 2^-t, with alpha
the site's calibrated r (the FS paper fixes alpha = 25; pass ``alpha=25`` to
do so). ReLU6 uses alpha = min(r, 6).

There is one simulator (``mode="stepped"``): the K-step loop is already a
few elementwise operations, in float64 with the output rounded to the
input's dtype (:mod:`psnn_lib.neurons.precision`). Inputs outside the range
the parameters were trained on are counted as ``clipped`` (FS does not clamp
them; its output there is whatever the dynamics give).
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..paths import package_file
from .precision import tensor_bytes, to_output
from .stats import DeviceCounters, FlatEnds, SpikeStats


@dataclass
class FSParams:
    """Per-step reset h(t), output weight d(t), threshold T(t) of an FS neuron."""

    activation: str
    K: int
    h: list[float]
    d: list[float]
    T: list[float]
    loss: float
    l: float = -10.0
    r: float = 10.0


def _heaviside(v: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    return (v >= T).to(v.dtype)


def fs_forward(x: torch.Tensor, h: torch.Tensor, d: torch.Tensor, T: torch.Tensor,
               fire: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _heaviside
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """FS dynamics: v(1) = x; z(t) = fire(v(t), T(t)) (Theta(v - T) by default);
    v(t+1) = v(t) - h(t) z(t); output sum_t d(t) z(t). Parameters broadcast
    against x (batched restarts: shape (R, K, 1) against x of shape (N,)).
    Returns (output, spike count)."""
    v, out, count = x, torch.zeros_like(x), torch.zeros_like(x)
    for t in range(h.shape[-2] if h.dim() > 1 else h.shape[0]):
        ht, dt, Tt = (p[..., t, :] if p.dim() > 1 else p[t] for p in (h, d, T))
        z = fire(v, Tt)
        out = out + dt * z
        count = count + z
        v = v - ht * z
    return out, count


PACKAGED_TABLE = "fs_params.json"  # inside psnn_lib.neurons


@functools.lru_cache(maxsize=8)
def load_table(path: Optional[str] = None) -> dict:
    """An FS parameter table, read once per file: ``path``, or the one that
    ships inside the package (read with importlib.resources) when None."""
    if path is None:
        return json.loads(package_file("psnn_lib.neurons", PACKAGED_TABLE).read_text())
    return json.loads(Path(path).read_text())


def lookup(table: dict, name: str, K: int) -> Optional[FSParams]:
    entry = table["params"].get(name, {}).get(str(K))
    return FSParams(**entry) if entry else None


class FSNeuron(DeviceCounters, FlatEnds, nn.Module):
    """A layer of FS neurons with shared h(t), d(t), T(t)."""

    MODES = ("stepped",)
    spikes = "binary spikes z(t) weighted by trained d(t)"

    def __init__(self, params: FSParams) -> None:
        super().__init__()
        self.params = params
        self.mode = "stepped"
        # float64 tensors, not buffers, so Module.half() leaves them exact
        self.h, self.d, self.T = (torch.tensor(getattr(params, key), dtype=torch.float64) for key in ("h", "d", "T"))
        self.stats = SpikeStats(time_steps=params.K, bias_spike=False)

    def extra_repr(self) -> str:
        return f"{self.params.activation}, K={self.params.K}, trained on [{self.params.l:g}, {self.params.r:g}]"

    def reset_stats(self) -> None:
        self.stats = SpikeStats(time_steps=self.params.K, bias_spike=False)

    def reset_state(self) -> None:
        """FS neurons keep no state between inputs."""

    def table_bytes(self) -> int:
        """Bytes of the tables this neuron holds: h(t), d(t), T(t)."""
        return tensor_bytes([self.h, self.d, self.T])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.to(torch.float64)
        out, count = fs_forward(v, *(p.to(x.device) for p in (self.h, self.d, self.T)))
        self._stats.neurons += x.numel()
        self.counts_for(x)[0] += count.sum()  # kept on the device until stats is read
        self.add_clipped((v < self.params.l).sum() * (not self.flat[0]) + (v > self.params.r).sum() * (not self.flat[1]))
        return to_output(out.masked_fill(v.isnan(), math.nan), x.dtype)  # NaN in, NaN out (never a silent 0)


def relu_params(alpha: float, K: int, name: str = "relu") -> FSParams:
    """Analytic FS ReLU: h = d = T = alpha 2^-t, t = 1..K (exact binary floor on [0, alpha))."""
    w = [alpha * 2.0 ** -t for t in range(1, K + 1)]
    return FSParams(name, K, w, list(w), list(w), loss=float("nan"), l=-math.inf, r=alpha)
