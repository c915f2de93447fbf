"""fit_ps against the authors' way of fitting, as a function of the grid size.

The authors' code inverts f with scipy's ``fsolve`` from x0 = 0, once per grid
point and time step. Two baselines, both in plain numpy (f itself in numpy,
no torch inside a call):

- "per point": fsolve on every point of the same grid fit_ps uses;
- "thinned": the authors' pipeline, which first keeps only the points where f
  moved by at least dy since the last kept one, then runs fsolve on those.

Both are timed on up to ``--calls`` fsolve calls; beyond that the time per call
is measured on that many calls, spread over the grid and the steps, and
multiplied by the number of calls (the table says which). Everything runs on
one thread (torch's and scipy's); fit_ps is the best of three runs, the
baselines' time per call averages over up to ``--calls`` calls. The baselines
count only the fsolve calls (not the thinning loop or the threshold minima),
which favours them. GELU on the authors' default interval [-15, 15].
"""
from __future__ import annotations

import argparse
import math
import time
import warnings
from typing import Any, Callable

import numpy as np
import torch
from scipy.optimize import fsolve
from scipy.special import erf
from tqdm import tqdm

from psnn_lib import fit_ps
from psnn_lib.paper1.readings import thin_grid


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU in numpy."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def fsolve_time(levels: np.ndarray, b: float, K: int, weights: list[float], calls: int,
                desc: str) -> tuple[float, bool]:
    """Seconds of the authors' iteration on ``levels`` (f - b at the points it inverts, b = min f):
    per step, fsolve for every point from x0 = 0, then the strict spike rule. Returns
    (seconds, extrapolated)."""
    total = levels.size * K
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(levels.size, size=min(levels.size, max(1, calls // K)), replace=False))
    y = levels.copy()
    elapsed = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fsolve warns where it stalls, as in the authors' code
        for t in tqdm(range(K), desc=desc, leave=False):
            start = time.perf_counter()
            for q in y[sample]:
                fsolve(lambda v, q=q: gelu(v) - b - q, 0.0)
            elapsed += time.perf_counter() - start
            y[y > weights[t]] -= weights[t]
    return elapsed * total / (sample.size * K), sample.size < levels.size


def row(l: float, r: float, dy: float, step: float, calls: int) -> dict:
    ours, params = min((_timed(lambda: fit_ps("gelu", l, r, dy, step)) for _ in range(3)), key=lambda run: run[0])
    levels = params.target.numpy() - params.b
    weights = params.d.tolist()
    kept = levels[thin_grid(torch.from_numpy(levels), dy).numpy()]
    full_s, full_x = fsolve_time(levels, params.b, params.K, weights, calls, f"per point, {levels.size:,}")
    thin_s, thin_x = fsolve_time(kept, params.b, params.K, weights, calls, f"thinned, {kept.size:,}")
    return {"dy": dy, "step": step, "points": levels.size, "kept": kept.size, "K": params.K, "fit_ps": ours,
            "per point": full_s, "per point extrapolated": full_x, "thinned": thin_s, "thinned extrapolated": thin_x}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="fsolve calls timed per baseline and row")
    args = parser.parse_args()
    torch.set_num_threads(1)
    l, r = -15.0, 15.0
    fit_ps("gelu", l, r, 0.01, 1e-3)  # warm up
    rows = [row(l, r, dy, step, args.calls)
            for dy in (0.01, 2.0 ** -12) for step in (1e-2, 1e-3, 2.5e-4)]  # 3,001 to 120,001 points
    print(f"GELU on [{l:g}, {r:g}]; times in s; * = extrapolated from {args.calls:,} timed fsolve calls")
    print(f"{'dy':>9} {'step':>7} {'points':>10} {'kept':>9} {'K':>3} {'fit_ps':>8} {'per point':>10} "
          f"{'speed-up':>9} {'thinned':>9} {'speed-up':>9}")
    for x in rows:
        print(f"{x['dy']:9.3g} {x['step']:7.2g} {x['points']:10,} {x['kept']:9,} {x['K']:3d} {x['fit_ps']:8.4f} "
              f"{x['per point']:9.1f}{'*' if x['per point extrapolated'] else ' '} "
              f"{x['per point'] / x['fit_ps']:8,.0f}x "
              f"{x['thinned']:8.2f}{'*' if x['thinned extrapolated'] else ' '} {x['thinned'] / x['fit_ps']:8,.0f}x")
    print("authors' defaults: dy = 0.01, step = 0.001 (the row marked by those values)")


if __name__ == "__main__":
    main()
