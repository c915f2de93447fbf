"""Paper 2's costs on Net4, as ratios measured in one process.

1. One epoch of joint calibration through time (all layers, cosine weights)
   against one layer-wise calibration pass (every layer in turn, one epoch
   each: the two-stage baseline), on the same images, T = 8.
2. SNN inference (signed neurons, T = 8) against the ANN, on a batch of 256.

Random weights (the cost does not depend on them); real-size inputs.
"""
from __future__ import annotations

import argparse
import time

import torch

import psnn_lib as P
from psnn_lib.converter.through_time import joint_calibration, layerwise_calibration
from psnn_lib.models import cifar


def _timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256, help="calibration images per epoch")
    parser.add_argument("--T", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = cifar.build("net4").eval()
    x = torch.rand(args.images, 1, 28, 28)
    batch = torch.rand(256, 1, 28, 28)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, Net4, T = {args.T}, "
          f"{args.images} calibration images")

    def fresh():
        return P.convert(model, "signed", calibration=x, T=args.T, progress=False)[0]
    joint = _timed(lambda: joint_calibration(fresh(), x, epochs=1, progress=False), 3)
    layerwise = _timed(lambda: layerwise_calibration(fresh(), x, epochs=1, progress=False), 3)
    print(f"joint epoch {joint:8.2f} s   layer-wise pass {layerwise:8.2f} s   ratio joint / layer-wise "
          f"{joint / layerwise:5.2f}")
    snn = fresh()
    with torch.no_grad():
        ann_t = _timed(lambda: model(batch), 5)
        snn_t = _timed(lambda: snn(batch), 5)
    print(f"inference, batch 256: ANN {ann_t * 1e3:8.1f} ms   SNN (T = {args.T}) {snn_t * 1e3:8.1f} ms   "
          f"ratio SNN / ANN {snn_t / ann_t:6.1f}  (per time step {snn_t / ann_t / args.T:5.2f})")


if __name__ == "__main__":
    main()
