"""The census (:mod:`psnn_lib.converter.census`) over an ANN forward pass, on the CPU.

A converted model takes one census per input shape: on the first calibration batch, and on
the first call with inputs of a new shape. This times that one pass, on the committed
Fashion-MNIST ResNet-20 converted to PS neurons (K = 16), against the ANN's own forward pass on
the same batch of real test images, in interleaved rounds (the ANN first in each round, each
census's ratio taken to that round's ANN time), and prints the median ratio and its spread;
and the cost model's own time (``cost()``, a function of the census and the counts).

    python benchmarks/census_overhead.py [--batch 64] [--rounds 11] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from psnn_lib import convert
from psnn_lib.models import datasets
from psnn_lib.models.checkpoints import load_checkpoint


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, entry = load_checkpoint("resnet20_fashion_mnist")
    x, _ = datasets.load(entry["recipe"]["dataset"], "test")
    snn, _ = convert(model, "ps", calibration=x[:512], K=16, progress=False)
    batch = x[:a.batch]
    ratios, costs = [], []
    with torch.no_grad():
        model(batch), snn.take_census(batch)  # warm-up
        for _ in range(a.rounds):
            t = time.perf_counter()
            model(batch)
            ann = time.perf_counter() - t
            t = time.perf_counter()
            snn.take_census(batch)
            ratios.append((time.perf_counter() - t) / ann)
        snn(batch)
        for _ in range(a.rounds):
            t = time.perf_counter()
            snn.cost()
            costs.append(time.perf_counter() - t)
    print(f"census / ANN forward, batch {a.batch}: median {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}, {a.rounds} rounds)")
    print(f"cost(): median {1e3 * statistics.median(costs):.2f} ms")


if __name__ == "__main__":
    main()
