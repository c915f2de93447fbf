"""Experiments of the fitting chapter (paper 1, Sect. 3 and 4.4).

Fig. 2 (the trace of one neuron), Fig. 4 and Fig. 5 (the output and its MSE
after each iteration), Table 5 under several readings of Algorithm 1, and
the error against dy for every registry activation.

"Iteration t" is the output after t time steps, b + sum_{tau<=t} d z.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from tqdm.auto import tqdm

from .activations import resolve_activation
from .ps_fit import PSParams, fit_ps
from .ps_neuron import PSNeuron

# Table 5 of paper 1: MSE at iterations 1..9 (display name -> registry name).
TABLE5_ACTIVATIONS = {
    "GELU": "gelu", "Hardsigmoid": "hardsigmoid", "Hardswish": "hardswish", "Mish": "mish",
    "SELU": "selu", "SiLU": "silu", "Sigmoid": "sigmoid",
}
TABLE5_PAPER = {
    "GELU": [17.5108, 4.9552, 0.9677, 0.2075, 0.0607, 0.0237, 0.0088, 0.0016, 0.0006],
    "Hardsigmoid": [0.4500, 0.1242, 0.0325, 0.0083, 0.0016, 0.0004, 0.0001, 0.0000, 0.0000],
    "Hardswish": [18.5334, 1.9127, 0.7720, 0.3638, 0.1020, 0.0409, 0.0091, 0.0023, 0.0006],
    "Mish": [18.2491, 1.8019, 0.6792, 0.2307, 0.1044, 0.0269, 0.0080, 0.0016, 0.0004],
    "SELU": [29.2541, 3.5440, 0.8707, 0.2514, 0.0621, 0.0164, 0.0040, 0.0011, 0.0003],
    "SiLU": [17.9242, 5.2522, 0.8884, 0.2352, 0.1030, 0.0232, 0.0065, 0.0018, 0.0004],
    "Sigmoid": [0.4499, 0.0318, 0.0072, 0.0016, 0.0004, 0.0001, 0.0000, 0.0000, 0.0000],
}
# Fig. 2 caption: Sigmoid(2.5) spikes at t = 1, 2, 3, 5.
FIG2_PAPER_SPIKE_TIMES = [1, 2, 3, 5]

# Readings of Algorithm 1 tested against Table 5 (see fit_ps for the options).
# "per_column": one fit per iteration count t at the coarsest dy giving K = t.
READINGS: dict[str, dict[str, Any]] = {
    "Algorithm 1 as printed": dict(first_weight="paper", strict=True),
    "Algorithm 1, spike when y >= d": dict(first_weight="paper", strict=False),
    "authors' code": dict(first_weight="code", strict=True),
    "authors' code, thinned grid": dict(first_weight="code", strict=True, thin="next"),
    "authors' code, thinned, one fit per column": dict(first_weight="code", strict=True,
                                                       thin="next", per_column=True),
}


def cell_tolerance(paper: float) -> float:
    """Table 5 cells: 5 % of the value, and the 4-decimal rounding (5e-5)."""
    return max(0.05 * abs(paper), 5e-5)


def iteration_outputs(params: PSParams, x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Output of the time-stepped neuron after t = 1..iterations steps, shape (iterations, N).

    Beyond K the output stays at its final value.
    """
    acc = PSNeuron(params, mode="stepped").simulate(x, record=True).accumulated
    if iterations > params.K:
        acc = torch.cat([acc, acc[-1:].expand(iterations - params.K, -1)])
    return acc[:iterations]


def mse_by_iteration(fn: str, x: torch.Tensor, iterations: int, l: float, r: float,
                     dy: float, step: float, per_column: bool = False,
                     **options: Any) -> list[float]:
    """MSE of the PS output against f at iterations 1..``iterations``."""
    _, f = resolve_activation(fn)
    target = f(x)
    if not per_column:
        out = iteration_outputs(fit_ps(fn, l, r, dy, step, **options), x, iterations)
        return ((out - target) ** 2).mean(dim=1).tolist()
    y = f(torch.arange(l, r, step, dtype=torch.float64))
    top = math.ceil(math.log2(float(y.max() - y.min())))
    mses = []
    for t in range(1, iterations + 1):
        params = fit_ps(fn, l, r, 2.0 ** (top - t), step, **options)  # K = t in the code reading
        out = iteration_outputs(params, x, t)[-1]
        mses.append(float(((out - target) ** 2).mean()))
    return mses


def table5(x: torch.Tensor, l: float, r: float, dy: float, step: float,
           readings: Optional[dict[str, dict[str, Any]]] = None,
           activations: Optional[Sequence[str]] = None) -> dict[str, dict[str, list[float]]]:
    """Table 5 under each reading: {reading: {activation: [MSE at 1..9]}}."""
    readings = READINGS if readings is None else readings
    names = list(TABLE5_ACTIVATIONS) if activations is None else list(activations)
    out: dict[str, dict[str, list[float]]] = {}
    jobs = [(rd, a) for rd in readings for a in names]
    for rd, a in tqdm(jobs, desc="Table 5", leave=False):
        out.setdefault(rd, {})[a] = mse_by_iteration(
            TABLE5_ACTIVATIONS[a], x, 9, l, r, dy, step, **readings[rd])
    return out


def trace(fn: str, x: float, l: float, r: float, dy: float, step: float,
          **options: Any) -> dict[str, Any]:
    """Everything Fig. 2 draws for one input: per step t = 1..K, the membrane
    v(t), threshold T(t), spike z(t), weight d(t), reset h(t+1) and the
    accumulated output."""
    params = fit_ps(fn, l, r, dy, step, **options)
    neuron = PSNeuron(params, mode="stepped")
    tr = neuron.simulate(torch.tensor([x], dtype=torch.float64), record=True)
    spikes = tr.spikes[:, 0].tolist()
    j = int(round((x - l) / params.delta))
    return {
        "params": params, "x": x, "target": float(resolve_activation(fn)[1](torch.tensor(x))),
        "t": list(range(1, params.K + 1)), "membrane": tr.membrane[:, 0].tolist(),
        "threshold": params.T.tolist(), "spikes": [bool(z) for z in spikes],
        "weights": params.d.tolist(), "reset": params.h[:, j].tolist(),
        "accumulated": tr.accumulated[:, 0].tolist(),
        "spike_times": [t + 1 for t, z in enumerate(spikes) if z],
    }


def error_vs_dy(activations: Sequence[str], dys: Sequence[float], l: float, r: float,
                step: float, n_eval: int, seed: int) -> list[dict[str, Any]]:
    """Measured MSE and max error against dy, beside the bound of ``fit_ps``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_eval, dtype=torch.float64, generator=gen) * (r - l) + l
    rows = []
    for name in tqdm(activations, desc="error vs dy", leave=False):
        f = resolve_activation(name)[1]
        target = f(x)
        for dy in dys:
            p = fit_ps(name, l, r, dy, step)
            err = PSNeuron(p)(x) - target
            rows.append({"activation": name, "dy": dy, "K": p.K, "quantum": float(p.d[-1]),
                         "mse": float((err ** 2).mean()), "max_error": float(err.abs().max()),
                         "grid_error": p.grid_error,
                         "bound": p.error_bound})
    return rows
