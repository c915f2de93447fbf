"""The PS neuron's compiled fast path (``ps_fast.c``): snap, output and counts in one pass.

:func:`ps_fast` is what :class:`psnn_lib.neurons.ps.PSNeuron` calls on a CPU
when the kernel is available (:mod:`.build`); its torch twin is the neuron's
``_fast_torch``, identical in every output bit and count
(``tests/test_ps_fast.py``).
"""
from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple, Optional

import torch

from .build import bind

_i64, _f64, _ptr, _int = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int
_totals = ctypes.POINTER(_i64)


class Totals(NamedTuple):
    """One call's counts: spikes (NaN inputs emit none), inputs at either end of the padded
    grid (below l - delta/2, above r + delta/2) and NaN inputs."""

    spikes: int
    low: int
    high: int
    nans: int


@functools.lru_cache(maxsize=1)
def _functions() -> Optional[dict[torch.dtype, ctypes._CFuncPtr]]:
    functions = bind("ps_fast", {"psnn_ps_fast_f32": [_i64, _ptr, _f64, _f64, _i64, _ptr, _ptr, _totals, _int],
                                 "psnn_ps_fast_f64": [_i64, _ptr, _f64, _f64, _i64, _ptr, _ptr, _ptr, _totals, _int]})
    if functions is None:
        return None
    return {torch.float32: functions["psnn_ps_fast_f32"], torch.float64: functions["psnn_ps_fast_f64"]}


def available() -> bool:
    """Whether the compiled kernel is here (built, or buildable now)."""
    return _functions() is not None


def ps_fast(x: torch.Tensor, inv: float, c: float, last: int, packed: torch.Tensor,
            out64: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, Totals]:
    """Output and counts of the inputs ``x`` (a contiguous float32 or float64 CPU tensor) whose
    snap position is x * inv + c (:func:`psnn_lib.ps.grid.snap_affine`) on a padded grid of
    indices 0..``last``: ``packed`` holds each index's float32 output bits and spike count
    (int64), ``out64`` its float64 output (float64 inputs). On ``torch.get_num_threads()``
    threads. Raises RuntimeError when the kernel is not available (:func:`available`)."""
    functions = _functions()
    if functions is None:
        raise RuntimeError("the compiled ps_fast kernel is not available here")
    if x.device.type != "cpu" or x.dtype not in functions or not x.is_contiguous():
        raise ValueError(f"ps_fast takes a contiguous float32 or float64 CPU tensor, got {x.dtype} on "
                         f"{x.device}{'' if x.is_contiguous() else ' (not contiguous)'}")
    if packed.dtype != torch.int64 or not packed.is_contiguous() or packed.numel() != last + 1:
        raise ValueError("packed must be a contiguous int64 table of last + 1 entries")
    out = torch.empty_like(x)
    totals = (_i64 * 4)()
    threads = torch.get_num_threads()
    if x.dtype == torch.float64:
        if out64 is None or out64.dtype != torch.float64 or not out64.is_contiguous() or out64.numel() != last + 1:
            raise ValueError("float64 inputs need out64, a contiguous float64 table of last + 1 entries")
        functions[x.dtype](x.numel(), x.data_ptr(), inv, c, last, packed.data_ptr(), out64.data_ptr(),
                           out.data_ptr(), totals, threads)
    else:
        functions[x.dtype](x.numel(), x.data_ptr(), inv, c, last, packed.data_ptr(), out.data_ptr(), totals,
                           threads)
    return out, Totals(*totals)
