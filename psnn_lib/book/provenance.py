"""What produced a record: the notebook's source and the library modules it ran.

A record stores the SHA-256 of its notebook source and of every
``psnn_lib`` module the notebook's kernel had imported when it saved
(transitively, as ``sys.modules`` lists them), with the data those modules
read: the data and kernel files inside each imported package (the FS table, the
C sources of :mod:`psnn_lib.kernels`) and the
checkpoint manifest, which holds the SHA-256 of every committed checkpoint.
A record is *stale* when any of these files has changed since: a change to
the converter does not mark the fitting notebooks stale, because they never
import it.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

PACKAGE = "psnn_lib"
# data a module reads from the checkout, relative to the package root
CHECKOUT_DATA = {"psnn_lib.models.checkpoints": "data/checkpoints.json",
                 "psnn_lib.paper2.networks": "data/paper2_networks.json"}


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def package_root() -> Path:
    """The folder holding the ``psnn_lib`` package (module paths are relative to it)."""
    return Path(sys.modules[PACKAGE].__file__).resolve().parents[1]


def loaded_modules() -> dict[str, str]:
    """``{"psnn_lib/ps/fit.py": sha256, ...}`` for every library module imported so far
    and the data it reads (see the module docstring)."""
    base = package_root()
    files = set()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not ((name == PACKAGE or name.startswith(PACKAGE + ".")) and file):
            continue
        files.add(Path(file).resolve())
        if hasattr(module, "__path__"):  # a package: its data files too
            files.update(p.resolve() for p in Path(file).parent.iterdir() if p.suffix in (".json", ".c"))
        if name in CHECKOUT_DATA and (base / CHECKOUT_DATA[name]).exists():
            files.add((base / CHECKOUT_DATA[name]).resolve())
    return {p.relative_to(base).as_posix(): file_digest(p) for p in sorted(files)}


def sources(notebook_file: Path) -> dict[str, Any]:
    """The provenance block of a record."""
    return {"notebook": {Path(notebook_file).name: file_digest(notebook_file)}, "modules": loaded_modules()}


def stale_reasons(record: dict[str, Any], root: Path) -> list[str]:
    """Why a record no longer matches the checkout at ``root`` (empty: it is current)."""
    src = record.get("sources")
    if not src:
        return ["the record names no sources (written by an older psnn)"]
    reasons = []
    files = {f"notebooks/{name}": digest for name, digest in src["notebook"].items()}
    files.update(src["modules"])
    for rel, digest in files.items():
        path = Path(root) / rel
        if not path.exists():
            reasons.append(f"{rel} no longer exists")
        elif file_digest(path) != digest:
            reasons.append(f"{rel} changed")
    return reasons
