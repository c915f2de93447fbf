"""Spike counters shared by every neuron of the library (paper 1, Eq. 26)."""
from __future__ import annotations

from dataclasses import dataclass


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
