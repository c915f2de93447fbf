"""Converted ResNet-20 inference time over ANN inference time, on the CPU.

Converts the committed Fashion-MNIST ResNet-20 to PS neurons (K = 16, min-max
calibration on 512 test images) and times, for batches of real test images at
each ``--batch`` size, in interleaved rounds (every cell once per round, the
ANN first; each cell's ratio taken to that round's ANN time):

- the fast path compiled (:mod:`psnn_lib.kernels.ps_fast`) and its torch twin,
  each with spike counters on and off;
- the time-stepped simulator (binary spikes, counters on), compiled
  (:mod:`psnn_lib.kernels.ps_steps`) and its torch twin;
- the floor: the same converted graph with ReLU at every site.

It prints the median ratio and the spread (lowest-highest) over the rounds,
the kernel's build time in this process, the conversion time, and the
neurons' table memory against the model's weights. Targets (issue 22): the
compiled fast path at most 1.25x the ANN at batch 64 with counters on; the
stepped simulator at most 4x.

    python benchmarks/convert_speed.py [--batch 1 64 256] [--rounds 11] [--threads 2]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from typing import Callable, Iterator

import torch

from psnn_lib import convert
from psnn_lib.kernels import build, ps_fast, ps_steps
from psnn_lib.models import datasets
from psnn_lib.models.checkpoints import load_checkpoint

MIB = 2 ** 20


@contextlib.contextmanager
def twin() -> Iterator[None]:
    """The PS neurons take the torch twins of their compiled kernels while this is open."""
    available = ps_fast.available, ps_steps.available
    ps_fast.available = ps_steps.available = lambda: False
    try:
        yield
    finally:
        ps_fast.available, ps_steps.available = available


def seconds(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    if not (ps_fast.available() and ps_steps.available()):
        raise SystemExit("the compiled kernel is not available here (PSNN_KERNELS=off or no C compiler)")
    print(f"kernel builds in this process: {sum(build.BUILD_SECONDS.values()):.2f} s "
          "(0: built before, loaded from the cache)")
    model, _ = load_checkpoint("resnet20_fashion_mnist")
    x_test, _ = datasets.fashion_mnist("test")
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    t = time.perf_counter()
    snn, report = convert(model, "ps", calibration=x_test[5000:5512].split(128), K=16, progress=False)
    print(f"conversion (min-max calibration on 512 images + {len(report.rows)} PS fits, K = 16): "
          f"{time.perf_counter() - t:.2f} s, {a.threads} threads")
    tables = sum(n.table_bytes() for n in snn.neurons.values())
    print(f"neuron tables, fast path: {tables / MIB:.2f} MiB = {tables / weights:.2f}x the weights' "
          f"{weights / MIB:.2f} MiB")
    stepped = copy.deepcopy(snn)
    stepped.set_mode("stepped")
    floor = copy.deepcopy(snn)
    for n in floor.neurons.values():
        n.forward = torch.relu

    def counters(on: bool) -> None:
        for n in snn.neurons.values():
            n.record_stats = on

    def run_twin(model: torch.nn.Module) -> Callable[[torch.Tensor], None]:
        def run(x: torch.Tensor) -> None:
            with twin():
                model(x)
        return run

    cells: dict[str, tuple[Callable[[], None], Callable[[torch.Tensor], object]]] = {
        "compiled, counters on": (lambda: counters(True), snn),
        "compiled, counters off": (lambda: counters(False), snn),
        "torch twin, counters on": (lambda: counters(True), run_twin(snn)),
        "torch twin, counters off": (lambda: counters(False), run_twin(snn)),
        "stepped, counters on": (lambda: None, stepped),
        "stepped twin, counters on": (lambda: None, run_twin(stepped)),
        "floor: ReLU at every site": (lambda: None, floor),
    }
    ratios: dict[tuple[int, str], list[float]] = {}
    ann_ms: dict[int, list[float]] = {}
    for batch in a.batch:
        x = x_test[:batch]
        for setup, fn in cells.values():  # warm-up (and the stepped path's reset tables)
            setup()
            fn(x)
        for _ in range(a.rounds):
            ann = seconds(lambda: model(x))
            ann_ms.setdefault(batch, []).append(ann * 1e3)
            for name, (setup, fn) in cells.items():
                setup()
                ratios.setdefault((batch, name), []).append(seconds(lambda: fn(x)) / ann)
    counters(True)
    print(f"\nconverted ResNet-20 / ANN, median (lowest-highest) over {a.rounds} interleaved rounds")
    print(f"| {'':27s} | " + " | ".join(f"batch {b:<12d}" for b in a.batch) + " |")
    print("|" + "---|" * (len(a.batch) + 1))
    print(f"| {'ANN ms':27s} | " + " | ".join(f"{statistics.median(ann_ms[b]):<18.1f}" for b in a.batch) + " |")
    for name in cells:
        row = []
        for b in a.batch:
            r = ratios[(b, name)]
            row.append(f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})".ljust(18))
        print(f"| {name:27s} | " + " | ".join(row) + " |")
    err = float((snn(x_test[:64]) - model(x_test[:64])).abs().max())
    print(f"\nmax |logit difference| SNN - ANN at batch 64: {err:.2e}")


if __name__ == "__main__":
    main()
