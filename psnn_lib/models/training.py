"""Training and evaluation helpers: seeded, with progress bars.

``train`` is SGD with Nesterov momentum (or Adam), a one-cycle learning
rate and optional random-shift/flip augmentation on tensors (one shift per
batch, as paper 1's trainings use, or one per image); ``predict`` returns the logits and
``accuracy`` the top-1 accuracy. They take (x, y) tensors and batch them, so
the same code runs on a CPU (the ``default`` profile) and a GPU (the
checkpoints, ``paper``); ``default_device`` picks the GPU when there is one.

A long training can be made resumable: ``train(..., checkpoint=path)`` writes its whole state
(model, optimiser, learning-rate schedule, data-order generator, torch's CPU and CUDA random
states, epochs done) atomically after every epoch but the last, and a call that finds the file
goes on after the epoch it records, ending with the very weights (bit for bit, on the same
device) of a run never interrupted. The file carries :func:`training_digest` of the call (its
arguments, the model's architecture, the data, the loss's name and the caller's ``recipe``
string); a file of another digest is a :class:`StaleTrainingCheckpoint` error naming it, never
resumed nor overwritten. The file is removed when the training completes: the caller saves
the trained model.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar
from ..saved_files import atomic_save, load_saved

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


CHECKPOINT_FORMAT = 1  # of a training checkpoint; part of its digest, so another layout is never resumed


class StaleTrainingCheckpoint(RuntimeError):
    """A training checkpoint written by another training (its digest differs)."""


def recipe_digest(recipe: Any) -> str:
    """SHA-256 of a JSON-able recipe (keys sorted; tuples as lists, as a JSON manifest stores
    them); a value JSON cannot hold is a ``TypeError``."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _data_digest(x: torch.Tensor, y: torch.Tensor) -> str:
    """BLAKE2 of the dtypes, shapes and every byte of ``x`` and ``y``."""
    h = hashlib.blake2b(digest_size=16)
    for t in (x, y):
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _name_of(fn: Callable) -> str:
    """A callable's module and qualified name (a callable object's: its class's)."""
    named = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{named.__module__}.{named.__qualname__}"


def training_digest(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: dict[str, Any],
                    loss_fn: Loss, recipe: str = "") -> str:
    """The digest a training checkpoint must carry to be resumed: ``settings`` (the keyword
    arguments of :func:`train` that change the result), ``model``'s architecture (the names,
    dtypes and shapes of its state; not its initial values, which a GPU need not make alike twice
    when they come from an earlier training), the data (every byte of ``x`` and ``y``),
    ``loss_fn``'s name (not its settings, e.g. a closure's weight) and ``recipe``: what else
    tells trainings apart (the loss's settings, where the initial weights come from)."""
    architecture = [f"{k} {v.dtype} {tuple(v.shape)}" for k, v in model.state_dict().items()]
    return recipe_digest({"format": CHECKPOINT_FORMAT, "settings": settings, "loss": _name_of(loss_fn),
                          "model": architecture, "data": _data_digest(x, y), "recipe": recipe})


def _training_state(digest: str, epoch: int, model: nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, gen: torch.Generator) -> dict[str, Any]:
    """Everything a resumed training needs to go on as if never interrupted."""
    return {"digest": digest, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "generator": gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _resume(path: Path, digest: str, model: nn.Module, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LRScheduler, gen: torch.Generator) -> int:
    """Restore the training state saved at ``path``, if there is one, and return its epochs
    done (0 without a file)."""
    if not path.exists():
        return 0
    state = load_saved(path)
    if not isinstance(state, dict) or state.get("digest") != digest:
        raise StaleTrainingCheckpoint(
            f"{path} is the checkpoint of another training (other arguments, architecture, data, loss or "
            f"recipe): it is neither resumed nor overwritten. Delete it (rm '{path}') to run this training from "
            "its first epoch")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["cpu_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["epoch"]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 128,
          lr: float = 0.1, weight_decay: float = 5e-4, augment: bool = False, flip: bool = False, shift: int = 4,
          per_image: bool = False, optimizer: str = "sgd", seed: int = 0,
          device: Union[str, torch.device] = "cpu", on_epoch: Optional[EpochHook] = None,
          progress: bool = True, loss_fn: Loss = F.cross_entropy, checkpoint: Optional[Path] = None,
          recipe: str = "") -> nn.Module:
    """Train ``model`` in place on (x, y) with ``loss_fn(logits, y)``; ``on_epoch(epoch, model)``
    after each epoch this call trains. ``augment``: random shifts of up to ``shift`` pixels, one
    per batch or (``per_image``) one per image; ``optimizer``: "sgd" (Nesterov, momentum 0.9) or
    "adam" (``weight_decay`` as L2 in both). ``checkpoint``: a file that makes the training
    resumable (module docstring); ``recipe``: what else :func:`training_digest` must tell apart
    (e.g. a loss's weight)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"shift must be a number of pixels >= 0, got {shift!r}")
    gen = seed_everything(seed)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    digest = None if checkpoint is None else training_digest(
        model, x, y, {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                      "augment": augment, "flip": flip, "shift": shift, "per_image": per_image,
                      "optimizer": optimizer, "seed": seed}, loss_fn, recipe)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True) \
        if optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    batches = (len(x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * batches, pct_start=0.15)
    done = 0 if checkpoint is None else _resume(checkpoint, digest, model, opt, sched, gen)
    bar = progress_bar(total=epochs * batches, initial=done * batches, desc="training", enabled=progress)
    for epoch in range(done, epochs):
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
        if checkpoint is not None and epoch + 1 < epochs:  # the last epoch's end is the training's
            atomic_save(_training_state(digest, epoch + 1, model, opt, sched, gen), checkpoint)
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
    bar.close()
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
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
