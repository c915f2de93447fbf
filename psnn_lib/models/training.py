"""Training and evaluation helpers: seeded, with progress bars.

``train`` is SGD with Nesterov momentum (or Adam), a one-cycle learning
rate and optional random-shift/flip augmentation on tensors (one shift per
batch, as paper 1's trainings use, or one per image); ``predict`` returns the logits and
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


OPTIMIZERS = ("sgd", "adam")


def _augment(x: torch.Tensor, gen: torch.Generator, flip: bool, shift: int, per_image: bool) -> torch.Tensor:
    """A random shift of up to ``shift`` pixels each way (zero pad + crop), one for the whole
    batch or (``per_image``) one per image, and, if ``flip``, horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    if per_image:
        dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=gen).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        x = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows, cols]
    else:
        dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=gen).tolist()
        x = padded[..., dy:dy + h, dx:dx + w]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None].to(x.device), x.flip(-1), x)
    return x


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 128,
          lr: float = 0.1, weight_decay: float = 5e-4, augment: bool = False, flip: bool = False, shift: int = 4,
          per_image: bool = False, optimizer: str = "sgd", seed: int = 0,
          device: Union[str, torch.device] = "cpu", on_epoch: Optional[EpochHook] = None,
          progress: bool = True, loss_fn: Loss = F.cross_entropy) -> nn.Module:
    """Train ``model`` in place on (x, y) with ``loss_fn(logits, y)``; ``on_epoch(epoch, model)``
    after each epoch. ``augment``: random shifts of up to ``shift`` pixels, one per batch or
    (``per_image``) one per image; ``optimizer``: "sgd" (Nesterov, momentum 0.9) or "adam"
    (``weight_decay`` as L2 in both)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"shift must be a number of pixels >= 0, got {shift!r}")
    gen = seed_everything(seed)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True) \
        if optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
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
                xb = _augment(xb, gen, flip, shift, per_image)
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
