"""Train FS-neuron parameters h, d, T for an activation (Stöckl & Maass 2021).

The FS authors' procedure: x uniform on [-10, 10]
(100,000 points), MSE between the FS output and f(x), Adam, many random
restarts (the best one is kept), spike pseudo-derivative
max(1 - |v_scaled|, 0) with v_scaled = (v - T) / (|v| + 1). Restarts run as
one batched tensor, so a GPU trains all of them at once.

``python -m psnn_lib.neurons.fs_train --out psnn_lib/neurons/fs_params.json``
made the table that ships with the package (the command and settings are stored in the file).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Union

import torch

from ..activations import Activation, resolve_activation
from ..progress import progress_bar
from .fs import FSParams, fs_forward


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


def _surrogate_fire(v: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """The FS authors' spike with a pseudo-derivative, on v scaled by (|v| + 1)."""
    return _Spike.apply((v - T) / (v.detach().abs() + 1))


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
        out, _ = fs_forward(x, h, d, T, fire=_surrogate_fire)
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
