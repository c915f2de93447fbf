"""fit_ps against what the authors' code does: scipy fsolve from x0 = 0,
once per grid point and time step, on the same grid.

Prints the speed ratio, the largest difference of the parameters, and the
time of one million grid points at K = 16 (target: under 1 s, 2 cores).
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch
from scipy.optimize import fsolve
from tqdm import tqdm

from psnn_lib import fit_ps
from psnn_lib.activations import resolve_activation
from psnn_lib.ps.fit import make_grid


def reference_fit(name: str, l: float, r: float, dy: float, step: float):
    """The authors' parameter generation (no thinning), with fit_ps's grid and weights."""
    f = resolve_activation(name)[1]
    x = make_grid(l, r, step).numpy()
    fx = lambda v: f(torch.as_tensor(v, dtype=torch.float64)).numpy()
    y = fx(x)
    b = y.min()
    y = y - b
    s = math.floor(math.log2(dy))
    K = math.ceil(math.log2(y.max()) - s)
    d = [2.0 ** (s + K - t) for t in range(1, K + 1)]
    h = np.empty((K, x.size))
    T = np.full(K, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fsolve warns where it stalls, as in the authors' code
        for t in tqdm(range(K), desc="fsolve reference", leave=False):
            h[t] = [fsolve(lambda v, q=q: fx(v) - b - q, 0.0)[0] for q in y]
            mask = y > d[t]
            y[mask] -= d[t]
            if mask.any():
                T[t] = h[t][mask].min()
    return {"h": h, "T": T, "d": np.array(d), "b": b, "K": K}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--activation", default="gelu")
    parser.add_argument("--step", type=float, default=0.01, help="grid step of the comparison")
    args = parser.parse_args()
    torch.set_num_threads(2)
    l, r, dy = -10.0, 10.0, 0.01

    t0 = time.perf_counter()
    ref = reference_fit(args.activation, l, r, dy, args.step)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = fit_ps(args.activation, l, r, dy, args.step)
    t_ours = time.perf_counter() - t0

    rising = ours.grid.numpy() >= float(ours.grid[torch.argmin(ours.target)])
    dh = np.abs(ours.h.numpy() - ref["h"])
    print(f"{args.activation} on [{l:g}, {r:g}], dy = {dy}, {ours.grid.numel():,} grid points, K = {ours.K}")
    print(f"fsolve reference {t_ref:8.3f} s   fit_ps {t_ours:8.4f} s   speed-up {t_ref / t_ours:,.0f}x")
    print(f"K equal: {ref['K'] == ours.K}   d equal: {np.array_equal(ref['d'], ours.d.numpy())}   "
          f"|b diff| {abs(ref['b'] - ours.b):.2e}")
    t_max, j_max = np.unravel_index(np.argmax(dh), dh.shape)
    print(f"max |h diff| on the rising branch {dh[:, rising].max():.2e}, everywhere {dh.max():.2e}, "
          f"at h = {ours.h[t_max, j_max]:.4f} (where f' ~ 0 the inverse is ill-conditioned); "
          f"median {np.median(dh):.1e}")
    finite = np.isfinite(ref["T"])
    print(f"max |T diff| {np.abs(ref['T'][finite] - ours.T.numpy()[finite]).max():.2e}")

    fit_ps("gelu", -10, 10, 2 ** -12, 2e-5)  # warm up
    t0 = time.perf_counter()
    big = fit_ps("gelu", -10, 10, 2 ** -12, 2e-5)
    print(f"one million points: {big.grid.numel():,} grid points, K = {big.K}: "
          f"{time.perf_counter() - t0:.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
