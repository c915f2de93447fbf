"""The PS neuron's compiled time-stepped simulator (``ps_steps.c``): Eqs. 1-3 once per grid
point present.

:func:`ps_steps` is what :class:`psnn_lib.neurons.ps.PSNeuron` runs in
``mode="stepped"`` on a CPU when the kernel is available (:mod:`.build`); its
torch twin is the neuron's ``_steps_torch``, identical in every membrane,
spike, output bit and count (``tests/test_ps_fast.py``).
"""
from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple, Optional

import torch

from .build import bind

_i64, _ptr, _int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int


class Steps(NamedTuple):
    """The simulated grid points and what they did, read back per input through ``which``."""

    which: torch.Tensor  # int64, per input: its grid point's place among the points simulated
    v: torch.Tensor  # float64 membranes v(t) before each decision, per point
    z: torch.Tensor  # bool spikes z(t), per point
    acc: torch.Tensor  # float64 Eq. 3 so far (without b), per point
    spikes: int  # spikes of the non-NaN inputs
    low: int  # inputs below the grid (padded index 0)
    high: int  # inputs above it (padded index G + 1)


@functools.lru_cache(maxsize=1)
def _function() -> Optional[ctypes._CFuncPtr]:
    functions = bind("ps_steps", {"psnn_ps_stepped": [_i64, _ptr, _ptr, _i64, _i64, _ptr, _ptr, _ptr, _int, _ptr,
                                                      _ptr, _ptr, _ptr, _ptr, _ptr, ctypes.POINTER(_i64)]})
    return None if functions is None else functions["psnn_ps_stepped"]


def available() -> bool:
    """Whether the compiled kernel is here (built, or buildable now)."""
    return _function() is not None


def ps_steps(index: torch.Tensor, nan: torch.Tensor, h: torch.Tensor, T: torch.Tensor, d: torch.Tensor,
             record: bool) -> Steps:
    """Eqs. 1-3 for each grid point that the inputs snap to (``index``, int32 padded indices
    0..G+1 from :func:`psnn_lib.ps.grid.snap`, ``nan`` its NaN mask), with the fit's table ``h``
    (K x G, float64: row 0 the initial membranes, row t the reset voltages h(t+1)), thresholds
    ``T`` and spike weights ``d`` (K each), all on the CPU. v, z and acc are K x points with
    ``record`` and the last step's row otherwise. Raises RuntimeError when the kernel is not
    available."""
    function = _function()
    if function is None:
        raise RuntimeError("the compiled ps_steps kernel is not available here")
    if h.dim() != 2 or min(h.shape) < 1:
        raise ValueError(f"ps_steps takes h as a K x G table with K, G >= 1, got shape {tuple(h.shape)}")
    K, G = h.shape
    n = index.numel()
    for name, t, size, dtype in (("index", index, n, torch.int32), ("nan", nan, n, torch.bool),
                                 ("h", h, K * G, torch.float64), ("T", T, K, torch.float64),
                                 ("d", d, K, torch.float64)):
        if t.device.type != "cpu" or t.dtype != dtype or not t.is_contiguous() or t.numel() != size:
            raise ValueError(f"ps_steps takes {name} as a contiguous {dtype} CPU tensor of {size} entries, got "
                             f"{t.dtype} on {t.device} with {t.numel()}")
    if n:
        lowest, highest = torch.aminmax(index)
        if lowest < 0 or highest > G + 1:
            raise ValueError(f"ps_steps: an index is outside the padded grid 0..{G + 1}")
    shape = (K, G) if record else (G,)
    v, acc, z = torch.empty(shape, dtype=torch.float64), torch.empty(shape, dtype=torch.float64), \
        torch.empty(shape, dtype=torch.bool)
    which, at, fired = (torch.empty(size, dtype=torch.int64) for size in (n, G, G))
    totals = (_i64 * 4)()
    function(n, index.data_ptr(), nan.data_ptr(), G, K, h.data_ptr(), T.data_ptr(), d.data_ptr(), int(record),
             which.data_ptr(), at.data_ptr(), v.data_ptr(), z.data_ptr(), acc.data_ptr(), fired.data_ptr(), totals)
    points, spikes, low, high = totals
    return Steps(which, *(part[..., :points] for part in (v, z, acc)), spikes, low, high)
