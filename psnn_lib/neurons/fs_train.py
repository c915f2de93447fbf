"""Train FS-neuron parameters h, d, T for an activation (Stöckl & Maass 2021).

As anchors.md describes the FS authors' procedure: x uniform on [-10, 10]
(100,000 points), MSE between the FS output and f(x), Adam, many random
restarts (the best one is kept), spike pseudo-derivative
max(1 - |v_scaled|, 0) with v_scaled = (v - T) / (|v| + 1). Restarts run as
one batched tensor, so a GPU trains all of them at once.

``python -m psnn_lib.neurons.fs_train --out psnn_lib/neurons/fs_params.json``
made the table that ships with the package (the command and settings are stored in the file).
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from ..activations import Activation, resolve_activation
from ..paths import package_file
from ..progress import progress_bar


@dataclass
class FSParams:
    """Per-step reset h(t), output weight d(t), threshold T(t) of an FS neuron."""

    activation: str
    K: int
    h: list[float]
    d: list[float]
    T: list[float]
    loss: float
    l: float = -10.0
    r: float = 10.0


class _Spike(torch.autograd.Function):
    """Heaviside forward; max(1 - |u|, 0) backward (u = scaled v - T)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (u,) = ctx.saved_tensors
        return grad * (1 - u.abs()).clamp_min(0)


def fs_forward(x: torch.Tensor, h: torch.Tensor, d: torch.Tensor, T: torch.Tensor, surrogate: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """FS dynamics: v(1) = x; z(t) = Theta(v(t) - T(t)); v(t+1) = v(t) - h(t) z(t);
    output sum_t d(t) z(t). Parameters broadcast against x (batched restarts:
    shape (R, K, 1) against x of shape (N,)). Returns (output, spike count)."""
    v, out, count = x, torch.zeros_like(x), torch.zeros_like(x)
    for t in range(h.shape[-2] if h.dim() > 1 else h.shape[0]):
        ht, dt, Tt = (p[..., t, :] if p.dim() > 1 else p[t] for p in (h, d, T))
        if surrogate:
            z = _Spike.apply((v - Tt) / (v.detach().abs() + 1))
        else:
            z = (v >= Tt).to(x.dtype)
        out = out + dt * z
        count = count + z
        v = v - ht * z
    return out, count


def train_fs(fn: Union[str, Activation], K: int, *, l: float = -10.0, r: float = 10.0, points: int = 100_000,
             restarts: int = 100, steps: int = 2000, lr: float = 0.05, seed: int = 0,
             device: Union[str, torch.device] = "cpu", progress: bool = True) -> FSParams:
    """Best of ``restarts`` Adam runs (MSE on ``points`` uniform x in [l, r])."""
    name, f = resolve_activation(fn)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(points, generator=gen, dtype=torch.float64) * (r - l) + l).float().to(device)
    y = f(x)
    top = float(max(y.abs().max(), x.abs().max()))
    scale = top * 2.0 ** -torch.arange(1, K + 1, dtype=torch.float32)
    def jitter() -> torch.Tensor:
        return (1 + 0.5 * torch.randn(restarts, K, 1, generator=gen)) * scale[None, :, None]
    h, d, T = (jitter().to(device).requires_grad_() for _ in range(3))
    opt = torch.optim.Adam([h, d, T], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in progress_bar(range(steps), desc=f"FS {name} K={K}", enabled=progress):
        opt.zero_grad()
        out, _ = fs_forward(x, h, d, T, surrogate=True)
        loss = ((out - y) ** 2).mean(dim=-1)
        loss.sum().backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        out, _ = fs_forward(x, h, d, T)
        final = ((out - y) ** 2).mean(dim=-1).squeeze(-1)
        best = int(torch.nan_to_num(final, nan=math.inf).argmin())
    pick = lambda p: p[best, :, 0].double().cpu().tolist()  # noqa: E731
    return FSParams(name, K, pick(h), pick(d), pick(T), float(final[best]), l, r)


PACKAGED_TABLE = "fs_params.json"  # inside psnn_lib.neurons


@functools.lru_cache(maxsize=8)
def load_table(path: Optional[str] = None) -> dict:
    """An FS parameter table, read once per file: ``path``, or the one that
    ships inside the package (read with importlib.resources) when None."""
    if path is None:
        return json.loads(package_file("psnn_lib.neurons", PACKAGED_TABLE).read_text())
    return json.loads(Path(path).read_text())


def lookup(table: dict, name: str, K: int) -> Optional[FSParams]:
    entry = table["params"].get(name, {}).get(str(K))
    return FSParams(**entry) if entry else None


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--activations", nargs="+",
                   default=["gelu", "silu", "mish", "hardswish", "selu", "elu", "sigmoid", "tanh", "relu6"])
    p.add_argument("--K", nargs="+", type=int, default=[8, 10, 12, 14, 16])
    p.add_argument("--restarts", type=int, default=100)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    table = {"command": "python -m psnn_lib.neurons.fs_train " + " ".join(argv if argv is not None else sys.argv[1:]),
             "settings": {"restarts": a.restarts, "steps": a.steps, "points": a.points, "lr": 0.05,
                          "interval": [-10.0, 10.0], "device": str(a.device)},
             "params": {}}
    for name in a.activations:
        for K in a.K:
            fs = train_fs(name, K, restarts=a.restarts, steps=a.steps, points=a.points, device=a.device)
            table["params"].setdefault(fs.activation, {})[str(K)] = asdict(fs)
            print(f"{fs.activation:10s} K={K:2d} MSE={fs.loss:.3e}", flush=True)
    a.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
