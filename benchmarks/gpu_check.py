"""The PS fast path on a CUDA GPU: the same results as the stepped simulator and as the CPU, and no
wait for the device while it runs (under five minutes on one GPU).

Converts the committed Fashion-MNIST ResNet-20 to PS neurons (K = 16) on the CPU, moves it to the
GPU and checks, on 256 real test images and on adversarial inputs to one neuron (every cell
boundary of its grid, NaN, +-inf, beyond either end):

1. the fast path (the torch twin of the compiled pass, which is what runs on a GPU) gives the
   stepped simulator's logits and counts, bit for bit, on the GPU (the convolutions run
   deterministically, so both see the same inputs at every site);
2. one neuron given the same inputs on both devices gives the same outputs and counts on the
   GPU (fast and stepped) as on the CPU (the compiled pass); the converted model's logits are
   not compared bit for bit across devices (cuDNN and oneDNN convolutions differ in the last
   bits, which moves inputs near a cell boundary), their largest difference is printed;
3. a warm forward pass of the fast path with spike counters on synchronises with the host once:
   the converted model's clipping check reads every site's counts in one transfer when the
   inference ends (``torch.cuda.set_sync_debug_mode("warn")`` warns at every synchronising
   call; no site, no neuron and no time step waits for the device), and its counts are those
   of the first GPU pass.

Prints one line per check and exits 1 when one fails. Its output, once run, is committed as
``benchmarks/gpu_check.txt``.

    python benchmarks/gpu_check.py
"""
from __future__ import annotations

import copy
import sys
import warnings

import torch

from psnn_lib import PSNeuron, convert
from psnn_lib.models import datasets
from psnn_lib.models.checkpoints import load_checkpoint


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.cpu(), b.cpu()
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def _counts(model) -> tuple[int, int, int]:
    stats = [n.stats for n in model.neurons.values()]
    return sum(s.neurons for s in stats), sum(s.spikes for s in stats), sum(s.clipped for s in stats)


def _reset(model) -> None:
    for n in model.neurons.values():
        n.reset_stats()


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA GPU here: gpu_check runs on a CUDA machine", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    gpu = torch.device("cuda")
    model, _ = load_checkpoint("resnet20_fashion_mnist")
    x_test, _ = datasets.fashion_mnist("test")
    snn, _ = convert(model, "ps", calibration=x_test[5000:5512].split(128), K=16, progress=False)
    x = x_test[:256]
    results = []

    cpu_logits = snn(x)
    cpu_counts = _counts(snn)
    fast = copy.deepcopy(snn).to(gpu)
    stepped = copy.deepcopy(snn).to(gpu)
    stepped.set_mode("stepped")
    _reset(fast)
    _reset(stepped)
    fast_logits, stepped_logits = fast(x.to(gpu)), stepped(x.to(gpu))
    gpu_counts = _counts(fast)
    results.append(("ResNet-20: GPU fast == GPU stepped (logits, counts)",
                    _same(fast_logits, stepped_logits) and gpu_counts == _counts(stepped)))
    print(f"ResNet-20 logits, GPU - CPU: largest difference {float((fast_logits.cpu() - cpu_logits).abs().max()):.3g}; "
          f"spikes {gpu_counts[1]} on the GPU, {cpu_counts[1]} on the CPU")

    neuron = next(iter(snn.neurons.values()))
    p = neuron.params
    j = torch.arange(p.points + 1, dtype=torch.float64)
    edges = p.l + (j - 0.5) * p.delta
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), p.l - 1, p.r + 1], dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        xs = torch.cat([edges, torch.nextafter(edges, edges + 1), torch.nextafter(edges, edges - 1), special]).to(dtype)
        cpu, on_gpu, on_gpu_stepped = PSNeuron(p), PSNeuron(p).to(gpu), PSNeuron(p, "stepped").to(gpu)
        a, b, c = cpu(xs), on_gpu(xs.to(gpu)), on_gpu_stepped(xs.to(gpu))
        counts = [(n.stats.spikes, n.stats.clipped) for n in (cpu, on_gpu, on_gpu_stepped)]
        results.append((f"one neuron, cell boundaries +-1 ulp, {dtype}: CPU == GPU fast == GPU stepped",
                        _same(a, b) and _same(a, c) and counts[0] == counts[1] == counts[2]))

    _reset(fast)
    xg = x.to(gpu)
    fast(xg)  # warm: every table on the device
    _reset(fast)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fast(xg)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message)]
    results.append((f"warm fast forward, counters on: {len(syncs)} host sync(s) (allowed: 1, the clipping "
                    f"check's read) {syncs}", len(syncs) <= 1 and _counts(fast) == gpu_counts))

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    for what, ok in results:
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
