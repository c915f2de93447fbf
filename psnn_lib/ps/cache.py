"""On-disk cache of fitted PS parameters.

A file is keyed by a hash of (activation name, l, r, dy, step, the fit's
options, a digest of the fitting code and torch's version) *and* of the
function's values on the grid, so neither a changed user function nor changed
code (of the same package version) ever reuses a stale fit. A corrupt or stale
file is refitted with a warning; files are written atomically.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import torch

from ..activations import Activation, resolve_activation
from .. import paths
from .fit import FitTables, PSParams, fit_ps, sample
from .grid import make_grid

FORMAT = 4  # of a cache file; part of the key, so files of another layout are never read


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the code a fit runs (this ``ps`` folder and ``activations.py``, as imported)
    and torch's version."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*here.glob("*.py"), here.parent / "activations.py"]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{h.hexdigest()[:16]} torch {torch.__version__}"


def cache_key(fn: Union[str, Activation], l: float, r: float, dy: float, step: float, **options) -> dict:
    """The fields a cached fit must match, including a digest of f on the grid."""
    name, f = resolve_activation(fn)
    values = sample(f, make_grid(l, r, step))
    digest = hashlib.sha256(values.numpy().tobytes()).hexdigest()[:16]
    return {"format": FORMAT, "activation": name, "l": float(l), "r": float(r), "dy": float(dy),
            "step": float(step), "options": dict(sorted(options.items())), "code": code_digest(), "values": digest}


def _path(cache_dir: Path, key: dict) -> Path:
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    safe = "".join(c if c.isalnum() else "_" for c in key["activation"])[:40]
    return cache_dir / f"ps_{safe}_{h}.pt"


def save_params(params: PSParams, path: Union[str, Path], key: Optional[dict] = None) -> Path:
    """Write ``params`` with its tables (and the cache key) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scalars = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
               if f.name not in ("d", "T", "tables", "refit")}
    tensors = {"d": params.d, "T": params.T, **vars(params.fit_tables())}
    blob = {"key": key, "tensors": tensors, "scalars": scalars}
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load_params(path: Union[str, Path], key: Optional[dict] = None) -> PSParams:
    """Read parameters (no ``refit`` recipe); ValueError if the file is corrupt or its key differs."""
    try:
        blob = torch.load(path, weights_only=True)
        if key is not None and blob["key"] != key:
            raise ValueError("its key differs (stale)")
        tensors = dict(blob["tensors"])
        d, T = tensors.pop("d"), tensors.pop("T")
        return PSParams(**blob["scalars"], d=d, T=T, tables=FitTables(**tensors))
    except ValueError:
        raise
    except Exception as exc:  # unreadable, truncated, wrong layout
        first = (str(exc).splitlines() or [""])[0][:120]
        raise ValueError(f"corrupt ({type(exc).__name__}: {first})") from exc


def fit_ps_cached(
    fn: Union[str, Activation], l: float, r: float, dy: float, step: float = 1e-3,
    *, cache_dir: Optional[Union[str, Path]] = None, **options,
) -> PSParams:
    """:func:`fit_ps` through the on-disk cache in ``cache_dir``."""
    key = cache_key(fn, l, r, dy, step, **options)
    path = _path(Path(cache_dir) if cache_dir is not None else paths.cache_dir(), key)
    refit = functools.partial(fit_ps, fn, l, r, dy, step, **options)
    if path.exists():
        try:
            return dataclasses.replace(load_params(path, key), refit=refit)
        except ValueError as exc:
            warnings.warn(f"PS cache file {path} is {exc}; refitting", stacklevel=2)
    params = refit()
    save_params(params, path, key)
    return params
