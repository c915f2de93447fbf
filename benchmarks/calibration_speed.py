"""Paper 2's costs on Net4, as ratios measured in one process.

1. One epoch of joint calibration through time (all layers, cosine weights)
   against one layer-wise calibration pass (every layer in turn, one epoch
   each: the two-stage baseline), on the same images, T = 8.
2. SNN inference (signed neurons, the fused step) against the ANN, on a batch
   of 256, in interleaved rounds: ANN passes per time step (at most 2.5 is the
   target: one step is one pass of the network plus its neurons' updates).

Random weights (the cost does not depend on them); real-size inputs.
"""
from __future__ import annotations

import argparse
import time

import torch

import psnn_lib as P
from psnn_lib.through_time.calibrate import joint_calibration, layerwise_calibration
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
    parser.add_argument("--rounds", type=int, default=15, help="interleaved inference rounds")
    parser.add_argument("--skip-calibration", action="store_true", help="inference only")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = cifar.build("net4").eval()
    x = torch.rand(args.images, 1, 28, 28)
    batch = torch.rand(256, 1, 28, 28)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, Net4, T = {args.T}, "
          f"{args.images} calibration images")

    def fresh():
        return P.convert(model, "signed", calibration=x, T=args.T, progress=False)[0]
    if not args.skip_calibration:
        joint = _timed(lambda: joint_calibration(fresh(), x, epochs=1, progress=False), 3)
        layerwise = _timed(lambda: layerwise_calibration(fresh(), x, epochs=1, progress=False), 3)
        print(f"joint epoch {joint:8.2f} s   layer-wise pass {layerwise:8.2f} s   ratio joint / layer-wise "
              f"{joint / layerwise:5.2f}")
    snn = fresh()
    ratios, ann_t, snn_t = [], float("inf"), float("inf")
    with torch.no_grad():
        model(batch), snn(batch)  # warm up
        for _ in range(args.rounds):  # interleaved: a slow moment of the machine hits both
            a, s = _timed(lambda: model(batch)), _timed(lambda: snn(batch))
            ratios.append(s / a / args.T)
            ann_t, snn_t = min(ann_t, a), min(snn_t, s)
    ratios.sort()
    print(f"inference, batch 256: ANN {ann_t * 1e3:8.1f} ms   SNN (T = {args.T}) {snn_t * 1e3:8.1f} ms   "
          f"ANN passes per time step: median {ratios[len(ratios) // 2]:5.2f} over {args.rounds} rounds "
          f"(best {ratios[0]:5.2f}, worst {ratios[-1]:5.2f})")


if __name__ == "__main__":
    main()
