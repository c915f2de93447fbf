"""PSNeuron fast path and time-stepped path, and one time step of paper 2's signed neuron
(its fused step, binary and augmented spikes), against the activation itself.

Prints time ratios (target: fast path within 3x of the activation) and the
peak extra memory of each, on a 10-million-element float32 tensor, CPU.
Each variant runs in a fresh process so that peak RSS is its own.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch
import torch.nn.functional as F


def _run(variant: str, n: int, repeats: int, queue) -> None:
    from psnn_lib import PSNeuron, fit_ps

    torch.manual_seed(0)
    x = torch.randn(n) * 3
    module = None
    if variant.startswith("signed"):
        from psnn_lib.neurons.signed import SignedIFNeuron

        # P_th 1, N_th -10, alpha 0.1; one step per call (repeats + the warm-up)
        module = SignedIFNeuron(1.0, -10.0, 0.1, repeats + 1, max_magnitude=None if "augmented" in variant else 1)
    elif variant != "activation":
        mode, _, stats = variant.partition(" ")
        module = PSNeuron(fit_ps("gelu", -10, 10, 0.01, 1e-3), mode=mode, record_stats=not stats)
    op = (lambda: F.gelu(x)) if module is None else (lambda: module(x))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    op()  # warm up (and build dtype tables)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        op()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((min(times), max(peak - base, 0) / 1024, n * 4 / 2 ** 20))


def measure(variant: str, n: int, repeats: int) -> tuple[float, float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(variant, n, repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, n = {args.n:,} float32, GELU fit on [-10, 10], dy = 0.01")
    print(f"{'variant':16s} {'time (s)':>9s} {'ratio':>7s}")
    base = None
    for variant in ("activation", "fast", "fast no-stats", "stepped", "signed", "signed augmented"):
        t, mem, size = measure(variant, args.n, args.repeats if variant != "stepped" else 2)
        base = base or t
        print(f"{variant:16s} {t:9.4f} {t / base:7.2f}   peak extra memory {mem:,.0f} MiB "
              f"({mem / size:.1f}x the input's {size:.0f} MiB)")


if __name__ == "__main__":
    main()
