"""Accuracy-against-T curves computed once across notebooks: a content-addressed cache on disk.

Some of paper 2's notebooks run the very same curve: Table 1's proposed row
(``net4_calibrated_cosine``, T_max 32, all 10,000 test images) is Table 5's
cosine row. :func:`cached_curve` runs :func:`.accuracy_by_step` once and
stores its :class:`.StepCurve`; a later call with the same inputs reads it.

The file's name is a SHA-256 of everything the curve depends on, so a file
found is the same computation, never a stale one:

- the library's code and the checkpoint manifests (:func:`.library_digest` of
  the imported ``psnn_lib``), and torch's version;
- the SNN's state: its traced graph's code, every module's parameters and buffers, and its plain
  attributes (thresholds, intervals, T, initial membranes and their shifts,
  spike magnitudes, the conversion's options), all of them exactly (tensors by
  their bytes, floats by their shortest exact repr);
- a label of how the SNN was made (the network, the method and its options,
  the scale);
- the images and labels (dtype, shape and bytes), the batch size and the device.

Files live in ``_build/cache/curves/`` of the checkout, or in
``$PSNN_CURVE_CACHE`` (``off``: no cache; :func:`psnn_lib.paths.curve_cache_dir`),
written atomically (a temporary file, then a rename); a curve is computed
under a lock on its file, so two notebooks running at once compute it once.
Each holds its key and
a digest of its own content: a file that cannot be read, or whose key, shape
or content digest does not check out, is never used; the curve is computed
again, with a warning, and the file rewritten (a file that cannot be written
is a warning, not an error). A curve read from the cache is not run again, so
the SNN's spike counters and run-time clipping warnings stay as they were.
The tests run with a cache of their own session (``tests/conftest.py``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import torch

from .. import paths
from ..book.runner import library_digest
from ..converter.engine import ConvertedModel
from ..file_lock import exclusive
from .evaluation import SNN_BATCH, StepCurve, accuracy_by_step

PLAIN = (bool, int, float, str, type(None))


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The imported library's code and manifests, and torch's version (once per process: the
    code that runs is the code imported)."""
    root = Path(__file__).resolve().parents[2]
    return f"{library_digest(root)} torch {torch.__version__}"


def _encoded(value) -> Optional[bytes]:
    """A plain value (number, string, None, tensor, or a tuple, list, dict or dataclass of them)
    as unambiguous bytes; None for anything else (modules, functions: the code and the label
    determine them)."""
    if isinstance(value, PLAIN):
        return repr((type(value).__name__, value)).encode()
    if torch.is_tensor(value):
        t = value.detach().cpu().contiguous().reshape(-1)
        return f"tensor {t.dtype} {tuple(value.shape)} ".encode() + t.view(torch.uint8).numpy().tobytes()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # options, specs: their fields
        value = (type(value).__qualname__, [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)])
    if isinstance(value, dict):
        value = sorted(value.items(), key=lambda kv: repr(kv[0]))
    if isinstance(value, (tuple, list)):
        parts = [_encoded(v) for v in value]
        if any(p is None for p in parts):
            return None
        return b"(" + b"".join(len(p).to_bytes(8, "little") + p for p in parts) + b")"
    return None


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters, buffers, every module's plain public attributes and the
    code of its traced graphs."""
    h = hashlib.sha256()
    for name, module in model.named_modules():
        h.update(f"module {name} {type(module).__qualname__}\n".encode())
        if isinstance(module, torch.fx.GraphModule):  # its forward is its graph's code, not its class's
            h.update(module.code.encode())
        for key, value in sorted(vars(module).items()):
            encoded = None if key.startswith("_") else _encoded(value)
            if encoded is not None:
                h.update(f"{key}={len(encoded)}:".encode() + encoded)
    for key, tensor in model.state_dict().items():
        h.update(key.encode() + _encoded(tensor))
    return h.hexdigest()


def curve_key(snn: ConvertedModel, x: torch.Tensor, y: torch.Tensor, label: str, batch_size: int) -> str:
    """The cache key of a curve (module docstring)."""
    h = hashlib.sha256()
    device = str(next((p.device for p in snn.parameters()), x.device))
    for part in (_code_digest().encode(), model_digest(snn).encode(), label.encode(), _encoded(x), _encoded(y),
                 f"{batch_size} {device}".encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


def _content_digest(correct: torch.Tensor, site_spikes: dict[str, list[float]]) -> str:
    return hashlib.sha256(_encoded(correct) + _encoded(site_spikes)).hexdigest()


def _read(path: Path, key: str, T: int, n: int) -> Optional[StepCurve]:
    """The curve stored at ``path``, if there is a sound one for ``key``; else None (with a
    warning when a file is there but unusable)."""
    if not path.exists():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        correct, spikes = stored["correct"], stored["site_spikes"]
        sound = (stored["key"] == key and isinstance(correct, torch.Tensor) and correct.dtype == torch.bool
                 and tuple(correct.shape) == (T, n) and isinstance(spikes, dict) and spikes
                 and all(isinstance(site, str) and isinstance(counts, list) and len(counts) == T
                         and all(type(c) is float for c in counts) for site, counts in spikes.items())
                 and stored["content"] == _content_digest(correct, spikes))
    except Exception as exc:  # noqa: BLE001 (any unreadable file is recomputed, and said so)
        warnings.warn(f"curve cache file {path} is unreadable ({type(exc).__name__}: {exc}): computing the curve "
                      "again", RuntimeWarning, stacklevel=3)
        return None
    if not sound:
        warnings.warn(f"curve cache file {path} does not check out (key, shape or content digest): computing the "
                      "curve again", RuntimeWarning, stacklevel=3)
        return None
    return StepCurve(correct, spikes)


def _write(path: Path, key: str, curve: StepCurve) -> None:
    """Store ``curve`` at ``path`` atomically (a temporary file in the same folder, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"key": key, "correct": curve.correct, "site_spikes": curve.site_spikes,
                        "content": _content_digest(curve.correct, curve.site_spikes)}, f)
        os.chmod(tmp, 0o644)  # as any other file of the build (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_curve(snn: ConvertedModel, x: torch.Tensor, y: torch.Tensor, label: str,
                 batch_size: int = SNN_BATCH) -> StepCurve:
    """:func:`.accuracy_by_step` of ``snn`` on (x, y), read from the cache when this very
    computation ran before (``label``: how the SNN was made, e.g. network, method, options)."""
    folder = paths.curve_cache_dir()
    if folder is None:
        return accuracy_by_step(snn, x, y, batch_size)
    key = curve_key(snn, x, y, label, batch_size)
    path = folder / f"{key}.pt"
    with exclusive(path.with_suffix(".lock")):  # two notebooks asking at once compute it once
        curve = _read(path, key, snn.passes, len(x))
        if curve is None:
            curve = accuracy_by_step(snn, x, y, batch_size)
            try:
                _write(path, key, curve)
            except OSError as exc:
                warnings.warn(f"curve cache: cannot write {path} ({exc}); the curve is computed, not stored",
                              RuntimeWarning, stacklevel=2)
    return curve
