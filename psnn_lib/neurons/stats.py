"""Spike counters shared by every neuron of the library (paper 1, Eq. 26)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class SpikeStats:
    """Counters for Eq. 26: FireRate = (spikes / neurons + 1) / K, K the neuron's ``time_steps``.

    Every neuron type of the library keeps one (PS, FS, rate-coded IF, signed),
    so converted networks report spikes the same way. ``spikes`` counts every
    spike; ``negative`` those of them that are negative (signed neurons, paper 2).
    ``bias_spike`` is the +1
    of Eq. 26: the PS shift b counted as one spike per neuron; neurons with no
    shift (FS, IF) leave it out.
    """

    neurons: int = 0
    spikes: int = 0
    negative: int = 0
    clipped: int = 0
    time_steps: int = 0
    bias_spike: bool = True

    @property
    def fire_rate(self) -> float:
        """Eq. 26 (without the +1 when ``bias_spike`` is False)."""
        if not self.neurons:
            return float("nan")
        return (self.spikes / self.neurons + self.bias_spike) / self.time_steps

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.neurons if self.neurons else 0.0


class FlatEnds:
    """What every neuron's clipping counter leaves out: ``flat`` = (below, above), True where
    inputs beyond that end of the neuron's range lie where its activation is flat (a clipped
    activation's bounds), so that saturating there is exact, not clipping. The converter sets
    it per site; (False, False) by default."""

    flat: tuple[bool, bool] = (False, False)


class DeviceCounters:
    """Spike counters that a fused step keeps as a tensor on the neuron's device (positive,
    negative), and clipped neurons counted as a tensor at the end of an inference: no step waits
    for the device. They are folded into ``stats`` (a :class:`SpikeStats`) when it is read. The
    neuron has ``time_steps``; no bias spike (Eq. 26 without its +1)."""

    time_steps: int
    _stats: SpikeStats
    _counts: Optional[torch.Tensor]
    _clipped: Optional[torch.Tensor]

    def reset_stats(self) -> None:
        self.stats = SpikeStats(time_steps=self.time_steps, bias_spike=False)

    @property
    def stats(self) -> SpikeStats:
        """The spike counters, with the counts of the fused steps and the clipped neurons since
        the last read."""
        pending = self._pending()
        if pending is not None:
            self._fold(pending.tolist())
        return self._stats

    def _pending(self) -> Optional[torch.Tensor]:
        """The counts not yet folded, (positive, negative, clipped) as float64 on their device
        (exact below 2^53), or None."""
        if self._counts is None and self._clipped is None:
            return None
        device = (self._counts if self._counts is not None else self._clipped).device
        counts = self._counts if self._counts is not None else torch.zeros(2, dtype=torch.float64, device=device)
        clipped = self._clipped if self._clipped is not None else torch.zeros((), device=device)
        return torch.cat([counts, clipped.reshape(1).to(device=device, dtype=torch.float64)])

    def _fold(self, pending: list[float]) -> None:
        positive, negative, clipped = (int(c) for c in pending)
        self._stats.spikes += positive + negative
        self._stats.negative += negative
        self._stats.clipped += clipped
        self._counts = self._clipped = None

    @stats.setter
    def stats(self, value: SpikeStats) -> None:
        self._stats, self._counts, self._clipped = value, None, None

    def counts_for(self, x: torch.Tensor) -> torch.Tensor:
        """The (positive, negative) counter tensor a fused step on ``x`` adds to: on x's device,
        and made in inference mode when the step runs in it (counts kept otherwise are folded
        into ``stats`` first)."""
        if self._counts is not None and (self._counts.device != x.device or
                                         self._counts.is_inference() != torch.is_inference_mode_enabled()):
            self.stats  # noqa: B018 (folds the counts kept on another device, or in inference mode)
        if self._counts is None:
            self._counts = torch.zeros(2, dtype=torch.float64, device=x.device)
        return self._counts

    def add_clipped(self, clipped: torch.Tensor) -> None:
        """Count ``clipped`` neurons (a tensor, read when ``stats`` is)."""
        self._clipped = clipped if self._clipped is None else self._clipped + clipped

    def spike_total(self) -> torch.Tensor:
        """Spikes of both signs counted so far, as a float64 tensor (read without waiting for the
        device)."""
        if self._counts is None:
            return torch.tensor(self._stats.spikes, dtype=torch.float64)
        return self._counts.sum() + self._stats.spikes


def fold_counts(neurons) -> None:
    """Fold the device-side counts of many neurons into their ``stats`` with one read per device
    (what a converted model does once per inference), instead of one per neuron."""
    pending: dict[torch.device, list[tuple[DeviceCounters, torch.Tensor]]] = {}
    for neuron in neurons:
        values = neuron._pending() if isinstance(neuron, DeviceCounters) else None
        if values is not None:
            pending.setdefault(values.device, []).append((neuron, values))
    for group in pending.values():
        for (neuron, _), values in zip(group, torch.stack([v for _, v in group]).tolist()):
            neuron._fold(values)
