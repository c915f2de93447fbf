"""Multi-pass inference with the time-invariant prefix computed once per inference
(:mod:`psnn_lib.converter.invariant`) against every pass running the whole graph.

Paper 2's Net4 (the committed ``net4_calibrated_cosine``, signed neurons, T = 10)
on Fashion-MNIST test images: an accuracy-against-T run (``accuracy_by_step``) in
interleaved rounds, the same process, both ways; prints the median time of each
and their ratio (with the spread over rounds), and checks the curves are equal.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from psnn_lib.converter.engine import ConvertedModel
from psnn_lib.paper2 import networks, studies
from psnn_lib.paper2.evaluation import accuracy_by_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    a = parser.parse_args()
    x, y = studies.test_images("net4_ann", a.images, "committed")
    snn, _ = networks.load_snn("net4_calibrated_cosine", 10, "committed")
    split = ConvertedModel._split
    times: dict[str, list[float]] = {"prefix once": [], "whole graph per pass": []}
    curves = {}
    for _ in range(a.rounds):
        for name in times:
            ConvertedModel._split = split if name == "prefix once" else (lambda self, args, kwargs: None)
            t = time.perf_counter()
            curves[name] = accuracy_by_step(snn, x, y)
            times[name].append(time.perf_counter() - t)
    ConvertedModel._split = split
    same = torch.equal(*(c.correct for c in curves.values())) and len({tuple(c.spikes) for c in curves.values()}) == 1
    ratios = [p / w for p, w in zip(*times.values())]
    for name, values in times.items():
        print(f"{name:22s} median {statistics.median(values):.2f} s over {a.rounds} rounds ({a.images} images x 10 steps)")
    print(f"ratio prefix once / whole graph: median {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}); curves equal: {same}")


if __name__ == "__main__":
    main()
