"""Training and evaluation helpers: seeded, with progress bars.

``train`` is plain SGD with momentum, cosine learning rate and optional
random-crop/flip augmentation on tensors; ``predict`` returns the logits and
``accuracy`` the top-1 accuracy. They take (x, y) tensors and batch them, so
the same code runs on a CPU (the ``default`` profile) and a GPU (the
checkpoints, ``paper``); ``default_device`` picks the GPU when there is one.
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar

EpochHook = Callable[[int, nn.Module], None]
# the training loss from the logits and labels (default: cross-entropy); paper 2's
# threshold optimisation adds its penalties this way
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a generator for data order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _augment(x: torch.Tensor, gen: torch.Generator, flip: bool) -> torch.Tensor:
    """Random 4-pixel shift (pad + crop) and, if ``flip``, horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (2,), generator=gen).tolist()
    x = padded[..., dy:dy + h, dx:dx + w]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None].to(x.device), x.flip(-1), x)
    return x


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 128,
          lr: float = 0.1, weight_decay: float = 5e-4, augment: bool = False, flip: bool = False, seed: int = 0,
          device: Union[str, torch.device] = "cpu", on_epoch: Optional[EpochHook] = None,
          progress: bool = True, loss_fn: Loss = F.cross_entropy) -> nn.Module:
    """Train ``model`` in place on (x, y) with ``loss_fn(logits, y)``; ``on_epoch(epoch, model)``
    after each epoch."""
    gen = seed_everything(seed)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    bar = progress_bar(total=steps, desc="training", enabled=progress)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            if augment:
                xb = _augment(xb, gen, flip)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        model.eval()
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
    bar.close()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500, progress: bool = False,
            desc: str = "evaluating") -> torch.Tensor:
    """Logits of ``model`` on ``x`` (in batches, on the model's device, returned on the CPU)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    outs = [model(x[i:i + batch_size].to(device)).float().cpu()
            for i in progress_bar(range(0, len(x), batch_size), desc=desc, enabled=progress)]
    return torch.cat(outs)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float((logits.argmax(-1) == y).double().mean())
