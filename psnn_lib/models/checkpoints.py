"""The small checkpoints this project trains itself, committed under ``data/``.

``RECIPES`` says how each was made (architecture, dataset, epochs, seed);
``data/checkpoints.json`` (in the book checkout) records for each file its SHA-256, the exact
command, the device it was trained on and the accuracy it reached.
:func:`load_checkpoint` refuses a file whose checksum does not match (a
stale or corrupt checkpoint is an error naming the command that remakes it).

    python -m psnn_lib.models.checkpoints resnet20_fashion_mnist --device cuda
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .. import paths
from ..file_lock import exclusive, lock_file_for
from ..saved_files import atomic_save, atomic_write
from . import cifar, datasets
from .training import accuracy, predict, seed_everything, train

MANIFEST = "checkpoints.json"  # in paths.data_dir()

RECIPES: dict[str, dict] = {
    f"{arch}_{ds}": {"arch": arch, "dataset": ds, "kwargs": {"in_channels": 1, "num_classes": 10, **extra},
                     "epochs": 15, "lr": 0.1, "batch_size": 128, "seed": 0}
    for arch, extra in [("resnet20", {}), ("vgg16", {"width": 0.25})]
    for ds in ("fashion_mnist", "mnist")
}


class ChecksumMismatch(RuntimeError):
    """A committed checkpoint does not match its recorded SHA-256."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_path(manifest: Optional[Path] = None) -> Path:
    return manifest or paths.data_dir() / MANIFEST


def manifest_entries(manifest: Optional[Path] = None) -> dict:
    """The entries of ``manifest`` (default ``data/checkpoints.json``); empty when it does not exist."""
    path = _manifest_path(manifest)
    return json.loads(path.read_text()) if path.exists() else {}


def verified_state(name: str, remake: str, manifest: Optional[Path] = None) -> tuple[dict, dict]:
    """The state dict of a checkpoint (as float32) and its entry in ``manifest`` (default
    ``data/checkpoints.json``; files are relative to its folder), after checking its
    SHA-256; ``remake`` is the command that makes it."""
    manifest = _manifest_path(manifest)
    entry = manifest_entries(manifest).get(name)
    if entry is None:
        raise FileNotFoundError(f"checkpoint {name} is not in {manifest}: make it with `{remake}`")
    path = manifest.parent / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: restore it from git or remake it with `{remake}`")
    if sha256(path) != entry["sha256"]:
        raise ChecksumMismatch(f"{path} does not match its SHA-256 in {manifest} (stale or "
                               f"corrupt): restore it from git or remake it with `{remake}`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, entry


def save_state(name: str, state: dict, entry: dict, manifest: Optional[Path] = None) -> dict:
    """Write ``state`` as ``checkpoints/<name>.pt`` beside ``manifest`` (default
    ``data/checkpoints.json``) and its entry there (``entry`` plus file, SHA-256, size and
    torch version), each atomically (:mod:`psnn_lib.saved_files`); returns the entry."""
    manifest = _manifest_path(manifest)
    rel = f"checkpoints/{name}.pt"
    path = atomic_save(state, manifest.parent / rel)
    entry = {**entry, "file": rel, "sha256": sha256(path), "bytes": path.stat().st_size, "torch": torch.__version__}
    with exclusive(lock_file_for(manifest)):  # two processes saving at once keep both entries
        entries = manifest_entries(manifest)
        entries[name] = entry
        text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
        atomic_write(manifest, lambda f: f.write(text.encode()))
    return entry


def load_checkpoint(name: str) -> tuple[nn.Module, dict]:
    """The trained model (eval mode) and its manifest entry."""
    if name not in RECIPES:
        raise ValueError(f"unknown checkpoint {name!r}; known: {', '.join(RECIPES)}")
    state, entry = verified_state(name, f"python -m psnn_lib.models.checkpoints {name}")
    recipe = RECIPES[name]
    model = cifar.build(recipe["arch"], **recipe["kwargs"])
    model.load_state_dict(state)
    return model.eval(), entry


def make_checkpoint(name: str, device: str = "cpu", epochs: Optional[int] = None) -> dict:
    """Train the recipe ``name`` and write its file and manifest entry."""
    recipe = dict(RECIPES[name])
    if epochs is not None:
        recipe["epochs"] = epochs
    x, y = datasets.load(recipe["dataset"], "train")
    xt, yt = datasets.load(recipe["dataset"], "test")
    seed_everything(recipe["seed"])  # the initial weights too, not only the data order
    model = cifar.build(recipe["arch"], **recipe["kwargs"])
    train(model, x, y, epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
          augment=True, seed=recipe["seed"], device=device)
    acc = accuracy(predict(model, xt), yt)
    return save_state(name, model.cpu().state_dict(), {
        "recipe": recipe, "test_accuracy": acc, "device": str(device),
        "command": f"python -m psnn_lib.models.checkpoints {name} --device {device}"
                   + (f" --epochs {epochs}" if epochs is not None else "")})


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="train the project's committed checkpoints")
    p.add_argument("names", nargs="+", choices=sorted(RECIPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=None)
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    for name in a.names:
        entry = make_checkpoint(name, a.device, a.epochs)
        print(f"{name}: test accuracy {entry['test_accuracy']:.2f}%, {entry['bytes'] / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
