"""One fused, in-place time step of integrate-and-fire membranes that reset by subtraction:
the inference path of the rate-coded IF neuron (:mod:`.rate`, one membrane) and of the signed
neuron pair (:mod:`.signed`, Eqs. 19-20 of paper 2).

The step updates the membranes in place, ``CHUNK`` elements at a time on a CPU (its
temporaries stay in cache; on a GPU all at once), every operation in float64, and adds its
spike events to a counter tensor, so that no step waits for the device. Its spikes, membranes
and outputs are those of the plain step written out with whole tensors, bit for bit
(``tests/test_signed.py``, ``tests/test_rate.py``).
"""
from __future__ import annotations

import itertools
from typing import Optional, Union

import torch

# a threshold: one value, or a tensor (per channel, broadcast over the input; per element in a fused step)
Threshold = Union[float, torch.Tensor]

CHUNK = 1 << 16  # elements a fused step updates at a time on a CPU: its temporaries stay in cache


def check_shape(x: torch.Tensor, v: torch.Tensor) -> None:
    """A step's input must have its membrane's shape (one inference, one input shape)."""
    if x.shape != v.shape:
        raise ValueError(f"input of shape {tuple(x.shape)} for membranes of shape {tuple(v.shape)}: an "
                         "inference keeps one input shape (call reset_state() to start another)")


def _pieces(value: Threshold, chunk: int):
    """A per-element tensor in chunks of ``chunk``; a number repeated."""
    return value.view(-1).split(chunk) if torch.is_tensor(value) else itertools.repeat(value)


def _fire(v: torch.Tensor, threshold: Threshold, below: bool, magnitude: Optional[int],
          out: torch.Tensor, at_threshold: bool = False) -> torch.Tensor:
    """The spikes of membrane ``v`` into ``out``: 1 where v passes the threshold (above it, or
    below a negative one; ``at_threshold``: reaching a positive threshold is enough), or with
    augmented spikes their magnitude ceil(v / threshold) - 1, at least 0 and at most ``magnitude``."""
    if magnitude == 1:
        compare = torch.ge if at_threshold else (torch.lt if below else torch.gt)
        return compare(v, threshold, out=out)
    torch.div(v, threshold, out=out).ceil_().sub_(1)
    return out.nan_to_num_(0.0).clamp_(0, magnitude)  # a NaN membrane fires nothing


@torch.no_grad()
def fused_step(x: torch.Tensor, v_p: torch.Tensor, v_n: Optional[torch.Tensor], p_th: Threshold,
               n_th: Optional[Threshold], negative_value: Threshold, counts: torch.Tensor,
               magnitude: Optional[int] = 1, at_threshold: bool = False) -> torch.Tensor:
    """One inference step in place: the membranes ``v_p``, ``v_n`` (float64, contiguous, of
    ``x``'s shape; ``n_th=None``: no negative membrane, ``v_n`` unused) integrate ``x`` and
    reset, ``counts`` (float64: positive, negative; exact below 2^53) adds the step's spike
    events; returns the step's output (float64 for float64 inputs, else float32, as
    :func:`.to_output` rounds). The thresholds and the negative spike's value are numbers, or
    float64 tensors of the membranes' shape (per-channel thresholds); ``magnitude``: the
    largest spike (1: binary; else augmented spikes, None: no bound); ``at_threshold``: a
    binary spike fires when the membrane reaches its threshold (the IF neuron's v >= theta),
    not only when it passes it (Eqs. 11-12; one membrane only). On a CPU ``CHUNK`` elements at a time (on a GPU
    all at once) into scratch buffers made once per step, every operation in float64; with
    binary spikes the same spikes and values as :func:`.signed.signed_step`: (v - P_th) / P_th
    > 0 is v > P_th, (N_th - v) / -N_th > 0 is v < N_th, and the output p P_th + n (alpha N_th)
    is exact (one of the two terms is 0)."""
    if at_threshold and (magnitude != 1 or n_th is not None):
        raise ValueError("at_threshold applies to binary spikes (magnitude 1) of one membrane only")
    check_shape(x, v_p)
    if n_th is not None:
        check_shape(x, v_n)
    out = torch.empty(x.shape, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32,
                      device=x.device)
    chunk = CHUNK if x.device.type == "cpu" else max(x.numel(), 1)
    size = min(chunk, x.numel())
    # the input in float64, the spikes (or magnitudes), their value, a product or difference
    x64, spiked, values, scratch = (torch.empty(size, dtype=torch.float64, device=x.device) for _ in range(4))
    sums = torch.zeros(-(-x.numel() // chunk), 2, dtype=torch.float64, device=x.device)  # per chunk

    def events(fired: torch.Tensor, into: torch.Tensor) -> None:
        if magnitude == 1:
            torch.sum(fired, 0, out=into)
        else:
            into.copy_(torch.count_nonzero(fired))

    def add_spikes(v: torch.Tensor, fired: torch.Tensor, worth: Threshold, sign: int, room: torch.Tensor) -> None:
        """v += sign * fired * worth, rounded as a product and a sum apart (no fused multiply-add:
        the same rounding on every CPU). A binary spike's product is exact (0 or the threshold),
        so one pass (alpha=, addcmul_: fused or not) rounds the same; a magnitude's product is
        not, so it is made apart, into ``room``."""
        if magnitude != 1:
            v.add_(torch.mul(fired, worth, out=room), alpha=sign)
        elif torch.is_tensor(worth):
            v.addcmul_(fired, worth, value=sign)
        else:
            v.add_(fired, alpha=sign * worth)

    parts = zip(x.reshape(-1).split(chunk), v_p.view(-1).split(chunk),
                itertools.repeat(None) if n_th is None else v_n.view(-1).split(chunk),
                out.view(-1).split(chunk), _pieces(p_th, chunk), _pieces(n_th, chunk),
                _pieces(negative_value, chunk), sums)
    for xc, vp, vn, oc, pc, nc, worth, total in parts:
        n = len(xc)
        fired, value, room = spiked[:n], values[:n], scratch[:n]
        xc = xc if xc.dtype == torch.float64 else x64[:n].copy_(xc)
        vp.add_(xc)
        _fire(vp, pc, False, magnitude, fired, at_threshold)
        events(fired, total[0])
        torch.mul(fired, pc, out=value)
        vp.sub_(value)
        if n_th is not None:
            vn.add_(xc)
            _fire(vn, nc, True, magnitude, fired, at_threshold)
            events(fired, total[1])
            add_spikes(vn, fired, nc, -1, room)
            add_spikes(value, fired, worth, 1, room)
        oc.copy_(value.add_(torch.sub(vp, vp, out=room)))  # + 0, or NaN where the membrane is not finite
    counts += sums.sum(0)
    return out
