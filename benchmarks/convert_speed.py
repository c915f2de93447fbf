"""Converted ResNet-20 inference time over ANN inference time, on the CPU.

Prints, for one batch of real Fashion-MNIST test images through the committed
ResNet-20: the ANN time (baseline, same process), the PS network with the
fast path (with and without spike counters), the time-stepped PS path, FS
neurons and rate coding at T = 16; then the conversion time (calibration +
fits) and how much each step raised the peak resident memory (0 when it
stayed under an earlier peak). Target: fast path <= 1.5x.

    python benchmarks/convert_speed.py [--batch 256] [--repeat 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from psnn_lib import convert
from psnn_lib.models import datasets
from psnn_lib.models.checkpoints import load_checkpoint


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_checkpoint("resnet20_fashion_mnist")
    x_test, _ = datasets.fashion_mnist("test")  # (the test set only: a smaller RSS baseline)
    x, calibration = x_test[:a.batch], x_test[5000:5512].split(128)

    with torch.no_grad():
        before = peak_mib()
        ann = timed(lambda: model(x), a.repeat)
        print(f"ANN ResNet-20, batch {a.batch}, {a.threads} threads: {ann * 1e3:.1f} ms "
              f"(peak RSS +{peak_mib() - before:.0f} MiB)")

        before = peak_mib()
        t = time.perf_counter()
        snn, report = convert(model, "ps", calibration=calibration, K=16, progress=False)
        print(f"conversion (calibration on 512 images + {len(report.rows)} PS fits, K = 16): "
              f"{time.perf_counter() - t:.2f} s (peak RSS +{peak_mib() - before:.0f} MiB)")
        reference = model(x)
        for label, setup in [
            ("PS fast path, spike counters on", lambda: snn.set_mode("fast")),
            ("PS fast path, spike counters off", lambda: [setattr(n, "record_stats", False) for n in snn.neurons.values()]),
            ("PS time-stepped path (binary spikes)", lambda: [snn.set_mode("stepped")] +
             [setattr(n, "record_stats", True) for n in snn.neurons.values()]),
        ]:
            setup()
            before = peak_mib()
            s = timed(lambda: snn(x), a.repeat)
            err = float((snn(x) - reference).abs().max())
            print(f"{label}: {s * 1e3:.1f} ms = {s / ann:.2f}x ANN (max |logit diff| {err:.2e}; "
                  f"peak RSS +{peak_mib() - before:.0f} MiB)")
        for method, opts in [("fs", {"K": 16}), ("rate", {"T": 16, "observer": 99.9, "v_init": 0.5})]:
            net, _ = convert(model, method, calibration=calibration, progress=False, **opts)
            s = timed(lambda: net(x), max(1, a.repeat // 2))
            print(f"{method} {opts}: {s * 1e3:.1f} ms = {s / ann:.2f}x ANN")


if __name__ == "__main__":
    main()
