"""On-disk cache of fitted PS parameters.

A file is keyed by a hash of (activation name, l, r, dy, step, the fit's
options, the library version) *and* of the function's values on the grid,
so a changed user function never reuses a stale fit. A corrupt or stale
file is refitted with a warning; files are written atomically.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import torch

from .. import __version__
from ..activations import Activation, resolve_activation
from .. import paths
from .fit import PSParams, fit_ps, sample
from .grid import make_grid

_TENSORS = ("grid", "target", "h", "d", "T", "accumulated", "spike_count")


def cache_key(fn: Union[str, Activation], l: float, r: float, dy: float, step: float, **options) -> dict:
    """The fields a cached fit must match, including a digest of f on the grid."""
    name, f = resolve_activation(fn)
    values = sample(f, make_grid(l, r, step))
    digest = hashlib.sha256(values.numpy().tobytes()).hexdigest()[:16]
    return {"activation": name, "l": float(l), "r": float(r), "dy": float(dy), "step": float(step),
            "options": dict(sorted(options.items())), "version": __version__, "values": digest}


def _path(cache_dir: Path, key: dict) -> Path:
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    safe = "".join(c if c.isalnum() else "_" for c in key["activation"])[:40]
    return cache_dir / f"ps_{safe}_{h}.pt"


def save_params(params: PSParams, path: Union[str, Path], key: Optional[dict] = None) -> Path:
    """Write ``params`` (and the cache key) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    blob = {"key": key, "version": __version__, "tensors": {k: fields.pop(k) for k in _TENSORS},
            "scalars": fields}
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def load_params(path: Union[str, Path], key: Optional[dict] = None) -> PSParams:
    """Read parameters; ValueError if the file is corrupt or its key differs."""
    try:
        blob = torch.load(path, weights_only=True)
        if key is not None and blob["key"] != key:
            raise ValueError("its key differs (stale)")
        return PSParams(**blob["scalars"], **blob["tensors"])
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
    if path.exists():
        try:
            return load_params(path, key)
        except ValueError as exc:
            warnings.warn(f"PS cache file {path} is {exc}; refitting", stacklevel=2)
    params = fit_ps(fn, l, r, dy, step, **options)
    save_params(params, path, key)
    return params
