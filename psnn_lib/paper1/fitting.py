"""Experiments of the fitting chapter (paper 1, Sect. 3 and 4.4).

Fig. 2 (the trace of one neuron), Fig. 4 and Fig. 5 (the output and its MSE
after each iteration), Table 5 under every reading of Algorithm 1
(:mod:`psnn_lib.paper1.readings`), and the error against dy for every
registry activation beside its a-priori bound.

"Iteration t" is the output after t time steps, b + sum_{tau<=t} d z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pandas as pd
import torch

from ..progress import progress_bar
from ..activations import resolve_activation
from ..book.records import Record
from ..neurons.ps import PSNeuron
from ..ps.fit import PSParams, fit_ps
from ..ps.grid import snap
from .numbers import FIG2_SPIKE_TIMES, TABLE5, TABLE5_ACTIVATIONS
from .readings import AUTHORS_CODE, LITERAL, PRINTED, READINGS, Reading, fit_reading, iteration_mse


def cell_tolerance(paper: float) -> float:
    """Table 5 cells: 5 % of the value, and the 4-decimal rounding (5e-5)."""
    return max(0.05 * abs(paper), 5e-5)


@dataclass
class Table5:
    """Table 5 under each reading: ``mse[label][activation]`` at iterations 1..9, and
    ``bound[label][activation]``, the least MSE any output on the reading's lattice reaches."""

    readings: dict[str, Reading]
    mse: dict[str, dict[str, list[float]]]
    bound: dict[str, dict[str, list[float]]]

    @property
    def activations(self) -> list[str]:
        """The Table 5 rows computed (display names)."""
        return list(next(iter(self.mse.values()), {}))

    def matches(self) -> dict[str, dict[str, list[bool]]]:
        """{reading: {activation: [cell within its tolerance, per iteration]}}."""
        return {name: {a: [abs(o - p) <= cell_tolerance(p) for o, p in zip(values, TABLE5[a])]
                       for a, values in table.items()} for name, table in self.mse.items()}

    def counts(self) -> dict[str, int]:
        """Cells each reading reproduces, of 63."""
        return {name: sum(map(sum, cells.values())) for name, cells in self.matches().items()}

    def best(self) -> str:
        """The reading that reproduces most cells; a tie goes to the first in :data:`READINGS`
        order (the code's first weight before the printed one)."""
        counts = self.counts()
        return max(counts, key=lambda name: (counts[name], -list(counts).index(name)))


def table5(l: float, r: float, dy: float, step: float, readings: Sequence[Reading] = READINGS,
           activations: Optional[Sequence[str]] = None, sampling: str = "rounded") -> Table5:
    """MSE at iterations 1-9 of every reading, on the sampling grid ``arange(l, r, step)``, float32
    samples made as ``sampling`` says (:data:`~psnn_lib.paper1.readings.SAMPLINGS`)."""
    names = list(TABLE5) if activations is None else list(activations)
    unknown = [a for a in names if a not in TABLE5]
    if unknown or not names:
        raise ValueError(f"Table 5 has rows {', '.join(TABLE5)}; got {names!r}")
    result = Table5({rd.label: rd for rd in readings}, {}, {})
    for rd, a in progress_bar([(rd, a) for rd in readings for a in names], desc="Table 5", leave=False):
        mse, bound = iteration_mse(rd, TABLE5_ACTIVATIONS[a], l, r, dy, step, sampling=sampling)
        result.mse.setdefault(rd.label, {})[a] = mse
        result.bound.setdefault(rd.label, {})[a] = bound
    return result


def sampling_definitions(table: Table5, l: float, r: float, dy: float, step: float) -> pd.DataFrame:
    """Table 5's best reading under each definition of float32 sampling tried
    (:data:`~psnn_lib.paper1.readings.SAMPLINGS`): ``table`` is the definition ("rounded"); for
    "torch" the float32 readings are fitted again from torch's float32 ``arange`` and kernels
    (whose last ulp depends on the CPU, so that row can differ between machines). Also the
    cells of the best reading whose status differs from the definition's: a tie decided by an
    ulp of f."""
    float32 = [rd for rd in table.readings.values() if rd.precision == "float32"]
    refit = table5(l, r, dy, step, float32, table.activations, sampling="torch")
    tables = {"rounded": table,
              "torch": Table5(table.readings, {**table.mse, **refit.mse}, {**table.bound, **refit.bound})}
    chosen = table.best()
    definition = table.matches()[chosen]
    rows = []
    for sampling, t in tables.items():
        counts, best = t.counts(), t.best()
        moved = [f"{a} {i + 1}" for a, cells in t.matches()[chosen].items()
                 for i, (c, d) in enumerate(zip(cells, definition[a])) if c != d]
        rows.append({"float32 sampling": sampling, "best reading": best, "its cells": counts[best],
                     "readings with as many": sum(c == counts[best] for c in counts.values()),
                     "cells of the definition's best reading that change": ", ".join(moved) or "none"})
    return pd.DataFrame(rows).set_index("float32 sampling")


SHORT_NAMES = {"Hardsigmoid": "HSigm.", "Hardswish": "HSwish", "Sigmoid": "Sigm."}


def matrix_frame(table: Table5) -> pd.DataFrame:
    """Every reading's settings (:meth:`Reading.dimensions`) and the cells it reproduces per
    activation (of 9) and in all (of 63), most first."""
    rows = []
    for name, cells in table.matches().items():
        row = dict(table.readings[name].dimensions())
        row.update({SHORT_NAMES.get(a, a): sum(c) for a, c in cells.items()})
        row["of 63"] = sum(map(sum, cells.values()))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="reading")
    return frame.sort_values("of 63", ascending=False, kind="stable")


def column1_bound(table: Table5) -> dict[str, list[float]]:
    """Per activation and iteration, the least lattice bound among the readings that reproduce
    the whole first column: no output of such a reading gets a smaller MSE."""
    matches = table.matches()
    first = [n for n in table.mse if all(cells[0] for cells in matches[n].values())]
    return {a: [min((table.bound[n][a][t] for n in first if not math.isnan(table.bound[n][a][t])),
                    default=math.nan) for t in range(9)] for a in table.activations}


def unreachable_frame(table: Table5) -> pd.DataFrame:
    """The cells no reading reproduces: the paper's value, the nearest any reading gives, and the
    lattice bound of the readings that reproduce column 1 (the paper's value below it: excluded)."""
    matches, lower = table.matches(), column1_bound(table)
    rows = []
    for a in table.activations:
        for t, p in enumerate(TABLE5[a]):
            if any(matches[n][a][t] for n in table.mse):
                continue
            nearest = min((n for n in table.mse if not math.isnan(table.mse[n][a][t])),
                          key=lambda n: abs(table.mse[n][a][t] - p))
            rows.append({"activation": a, "iteration": t + 1, "paper": p, "nearest reading's value":
                         table.mse[nearest][a][t], "lattice bound (readings reproducing column 1)": lower[a][t],
                         "excluded by the bound": p + cell_tolerance(p) < lower[a][t]})
    return pd.DataFrame(rows).set_index(["activation", "iteration"])


def table5_frame(table: Table5, reading: str) -> pd.DataFrame:
    """Table 5: per activation the paper's row, ours under ``reading`` and a mark per cell:
    ✓ reproduced, (n) reproduced by n other readings, ✗ by no reading."""
    matches = table.matches()
    rows = {}
    for a in table.activations:
        paper = TABLE5[a]
        marks = []
        for t in range(len(paper)):
            others = sum(matches[n][a][t] for n in table.mse if n != reading)
            marks.append("✓" if matches[reading][a][t] else (f"({others})" if others else "✗"))
        rows[(a, "paper")] = [f"{p:.4f}" for p in paper]
        rows[(a, "ours")] = [f"{o:.4f}" for o in table.mse[reading][a]]
        rows[(a, "match")] = marks
    index = pd.MultiIndex.from_tuples(list(rows), names=["activation", ""])
    return pd.DataFrame(list(rows.values()), index=index, columns=[f"it. {t}" for t in range(1, 10)])


def literal_frame(table: Table5) -> pd.DataFrame:
    """MSE by iteration of Algorithm 1 with T by Eq. 20 and with every line taken literally."""
    rows = {(a, name): table.mse[reading.label][a] for a in table.activations
            for name, reading in (("T by Eq. 20", PRINTED), ("every line as printed", LITERAL))}
    index = pd.MultiIndex.from_tuples(list(rows), names=["activation", "Algorithm 1"])
    return pd.DataFrame(list(rows.values()), index=index, columns=[f"it. {t}" for t in range(1, 10)])


def table5_claims(record: Record, table: Table5, reading: str) -> None:
    """One claim per cell of Table 5 against ``reading``; the note says which readings reproduce
    it or why none can."""
    matches, lower = table.matches(), column1_bound(table)
    for a in table.activations:
        for t, (o, p) in enumerate(zip(table.mse[reading][a], TABLE5[a])):
            others = [n for n in table.mse if n != reading and matches[n][a][t]]
            if others:
                why = f"reproduced under {len(others)} other reading(s), e.g. {others[0]}"
            elif p + cell_tolerance(p) < lower[a][t]:
                why = (f"no reading reproduces it; below {lower[a][t]:.4f}, the least MSE of any output on the "
                       "spike-weight lattice of the tested readings that reproduce column 1")
            else:
                why = "no reading reproduces it (the nearest are in the notebook; see the chapter)"
            record.compare(f"{a} iteration {t + 1}", p, o, cell_tolerance(p), why=why)
    record.extra["cells reproduced per reading"] = table.counts()
    record.extra["best reading"] = reading
    record.extra["mse"] = table.mse
    record.extra["lattice bound"] = table.bound


def trace(params: PSParams, x: float) -> dict[str, Any]:
    """Everything Fig. 2 draws for one input: per step t = 1..K, the membrane
    v(t), threshold T(t), spike z(t), weight d(t), the reset h(t+1) the neuron
    takes after a spike at t (Eq. 2; none after the last step) and the
    accumulated output."""
    neuron = PSNeuron(params, mode="stepped")
    xt = torch.tensor([x], dtype=torch.float64)
    tr = neuron.simulate(xt, record=True)
    spikes = tr.spikes[:, 0].tolist()
    points = params.grid.numel()
    j = min(max(int(snap(xt, params.l, params.delta, points)[0][0]) - 1, 0), points - 1)
    return {
        "params": params, "x": x, "target": float(resolve_activation(params.activation)[1](xt)[0]),
        "t": list(range(1, params.K + 1)), "membrane": tr.membrane[:, 0].tolist(),
        "threshold": params.T.tolist(), "spikes": [bool(z) for z in spikes],
        "weights": params.d.tolist(), "reset": params.h[1:, j].tolist() + [None],
        "accumulated": tr.accumulated[:, 0].tolist(),
        "spike_times": [t + 1 for t, z in enumerate(spikes) if z],
    }


def fig2_traces(x: float, l: float, r: float, step: float, dys: Sequence[float]) -> dict[tuple[str, float], Any]:
    """Traces of ``x`` under Algorithm 1 (``fit_ps``) and the authors' code
    (:data:`~psnn_lib.paper1.readings.AUTHORS_CODE`) at each dy."""
    return {(name, dy): trace(fit_ps("sigmoid", l, r, dy, step) if name == "Algorithm 1" else
                              fit_reading(AUTHORS_CODE, "sigmoid", l, r, dy, step).params, x)
            for dy in dys for name in ("Algorithm 1", "authors' code")}


def trace_frame(tr: dict[str, Any]) -> pd.DataFrame:
    """Fig. 2's trace as a table: one row per time step."""
    return pd.DataFrame({"d(t)": tr["weights"], "T(t)": tr["threshold"], "v(t)": tr["membrane"],
                         "z(t)": [int(z) for z in tr["spikes"]], "h(t+1)": tr["reset"],
                         "output so far": tr["accumulated"]}, index=pd.Index(tr["t"], name="t"))


FIG2_STEPS = 5  # the time steps Fig. 2 draws


def fig2_claims(record: Record, traces: dict[tuple[str, float], Any]) -> None:
    """Fig. 2's caption (spikes at t = 1, 2, 3, 5) under each reading and dy; the first trace's
    final error within dy."""
    for (name, dy), tr in traces.items():
        reasons = []
        if name != "Algorithm 1":
            reasons.append("the code's first weight 2^ceil(log2 M) >= M never fires, so every spike comes one "
                           "step later")
        if tr["params"].K != FIG2_STEPS:
            reasons.append(f"dy = {dy:g} gives K = {tr['params'].K}; the figure draws {FIG2_STEPS} steps, "
                           "which dy = 2^-5 gives")
        record.compare(f"spike times, {name}, dy = {dy:g}", FIG2_SPIKE_TIMES, tr["spike_times"],
                       why="; ".join(reasons) or None)
    (name, dy), first = next(iter(traces.items()))
    record.compare(f"|PS(2.5) - sigmoid(2.5)| <= dy ({name}, dy = {dy:g})", True,
                   abs(first["accumulated"][-1] - first["target"]) <= dy)
    record.extra["trace"] = {k: v for k, v in first.items() if k != "params"}
    record.extra["spike times"] = {f"{name}, dy = {dy:g}": tr["spike_times"] for (name, dy), tr in traces.items()}


def fig4_claims(record: Record, outputs: dict[str, torch.Tensor], x: torch.Tensor) -> None:
    """Fig. 4's claim: the output approaches the target iteration by iteration."""
    for a, out in outputs.items():
        mse = ((out - resolve_activation(a)[1](x)) ** 2).mean(dim=1)
        record.extra[f"{a} MSE by iteration"] = mse.tolist()
        record.compare(f"{a}: MSE never rises over iterations 1-9", True, bool((mse[1:] <= mse[:-1]).all()))
        record.compare(f"{a}: MSE at iteration 9 below 1e-2 of iteration 1", True, bool(mse[8] < 1e-2 * mse[0]))


def error_vs_dy(activations: Sequence[str], dys: Sequence[float], l: float, r: float,
                step: float, n_eval: int, seed: int) -> list[dict[str, Any]]:
    """Measured MSE and max error against dy, beside the a-priori bound of ``fit_ps``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_eval, dtype=torch.float64, generator=gen) * (r - l) + l
    rows = []
    for name in progress_bar(activations, desc="error vs dy", leave=False):
        f = resolve_activation(name)[1]
        target = f(x)
        for dy in dys:
            p = fit_ps(name, l, r, dy, step)
            err = PSNeuron(p)(x) - target
            rows.append({"activation": name, "dy": dy, "K": p.K, "quantum": float(p.d[-1]),
                         "mse": float((err ** 2).mean()), "max_error": float(err.abs().max()),
                         "grid_error": p.grid_error, "bound": p.error_bound, "condition": p.bound_condition})
    return rows


def error_vs_dy_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Max error and its bound per activation (rows) and dy (columns)."""
    df = pd.DataFrame(rows).pivot(index="activation", columns="dy", values=["max_error", "bound"])
    df = df.reindex(columns=sorted(df.columns, key=lambda c: (c[0] != "max_error", -c[1])))
    return df.rename(columns={"max_error": "max |PS - f|"}, level=0).rename(columns="{:g}".format, level=1)


def error_vs_dy_claims(record: Record, rows: list[dict[str, Any]]) -> None:
    """The a-priori bound holds off the grid; on the grid the error is at most 2^s <= dy."""
    held = all(row["max_error"] <= row["bound"] * (1 + 1e-9) for row in rows)
    on_grid = all(row["grid_error"] <= row["quantum"] * (1 + 1e-9) and row["quantum"] <= row["dy"] for row in rows)
    record.compare("measured max error <= a-priori bound d(K) + L delta / 2, every activation and dy", True, held)
    record.compare("on the grid, error <= 2^s <= dy (the paper's precision claim)", True, on_grid)
    record.extra["rows"] = rows


def matrix_heatmap(table: Table5, ax: Any = None) -> Any:
    """Table 5's reading matrix as a heatmap: one row per reading (labelled with its number in
    :func:`matrix_frame`, whose settings columns describe it, and in its order, most cells
    first), one column per activation, each cell the cells of that activation the reading
    reproduces (of 9), and the total of 63 in the label. Returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    frame = matrix_frame(table)
    columns = [SHORT_NAMES.get(a, a) for a in table.activations]
    counts = frame[columns].to_numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 0.2 * len(frame) + 1.2))
    im = ax.imshow(counts, cmap="viridis", vmin=0, vmax=9, aspect="auto")
    for i, row in enumerate(counts):
        for j, c in enumerate(row):
            ax.text(j, i, str(c), ha="center", va="center", fontsize=7.5, color="white" if c < 6 else "black")
    ax.set_xticks(range(len(columns)), columns, fontsize=9)
    ax.xaxis.tick_top()
    ax.grid(False)
    ax.set_yticks(range(len(frame)), [f"{n}  ({total})" for n, total in zip(frame.index, frame["of 63"])],
                  fontsize=8)
    ax.set_ylabel("reading (its cells of 63)")
    ax.tick_params(length=0)
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="cells reproduced (of 9)")
    return ax
