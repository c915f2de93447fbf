"""Converted ResNet-20 inference time over ANN inference time, on the CPU.

Converts the committed Fashion-MNIST ResNet-20 to PS neurons (K = 16,
min-max calibration on 512 test images), then prints, for batches of real
test images at each ``--batch`` size, the ANN time (the baseline, measured in
the same process just before) and the PS fast path's ratio to it with spike
counters on and off; the time-stepped path at batch 64; the conversion time;
how much each step raised the peak resident memory (0 when it stayed under an
earlier peak); and the neurons' table memory (sum of ``table_bytes()``)
against the model's weights, for the fast path and after the stepped path
rebuilt its reset tables. Target: fast path <= 1.3x ANN at batch 64 with
counters on.

    python benchmarks/convert_speed.py [--batch 1 64 256] [--repeat 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Callable

import torch

from psnn_lib import convert
from psnn_lib.models import datasets
from psnn_lib.models.checkpoints import load_checkpoint

MIB = 2 ** 20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--stepped-batch", type=int, default=64)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    model, _ = load_checkpoint("resnet20_fashion_mnist")
    x_test, _ = datasets.fashion_mnist("test")  # (the test set only: a smaller RSS baseline)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])

    before = peak_mib()
    t = time.perf_counter()
    snn, report = convert(model, "ps", calibration=x_test[5000:5512].split(128), K=16, progress=False)
    print(f"conversion (min-max calibration on 512 images + {len(report.rows)} PS fits, K = 16): "
          f"{time.perf_counter() - t:.2f} s (peak RSS +{peak_mib() - before:.0f} MiB), {a.threads} threads")

    def tables() -> str:
        total = sum(n.table_bytes() for n in snn.neurons.values())
        return f"{total / MIB:.2f} MiB = {total / weights:.2f}x the weights' {weights / MIB:.2f} MiB"

    print(f"neuron tables, fast path: {tables()}")
    print(f"{'batch':>5s} {'ANN ms':>8s} {'counters on':>12s} {'off':>6s}  max |logit diff|  peak RSS")
    for batch in a.batch:
        x = x_test[:batch]
        before = peak_mib()
        ann = timed(lambda: model(x), a.repeat)
        ratios = []
        for counters in (True, False):
            for n in snn.neurons.values():
                n.record_stats = counters
            ratios.append(timed(lambda: snn(x), a.repeat) / ann)
        err = float((snn(x) - model(x)).abs().max())
        print(f"{batch:5d} {ann * 1e3:8.1f} {ratios[0]:11.2f}x {ratios[1]:5.2f}x  {err:16.2e}  "
              f"+{peak_mib() - before:.0f} MiB")

    x = x_test[:a.stepped_batch]
    for n in snn.neurons.values():
        n.record_stats = True
    ann = timed(lambda: model(x), a.repeat)
    snn.set_mode("stepped")
    before = peak_mib()
    stepped = timed(lambda: snn(x), max(1, a.repeat // 2))
    print(f"time-stepped path (binary spikes), batch {a.stepped_batch}: {stepped * 1e3:.0f} ms = "
          f"{stepped / ann:.1f}x ANN (peak RSS +{peak_mib() - before:.0f} MiB)")
    print(f"neuron tables after the stepped path: {tables()}")


if __name__ == "__main__":
    main()
