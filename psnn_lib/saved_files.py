"""Files a later run reads back (trained networks, training checkpoints, manifests): written
whole or not at all, and read back with a clear error.

:func:`atomic_write` writes a temporary file in the target's folder, flushes it to disk
(``fsync``), then renames it over the target (``os.replace``, atomic on POSIX): a process killed
mid-write leaves the old file or none, never a truncated one, and no temporary file either
unless it was killed outright (a ``.<name>.*.tmp`` beside the target, which nothing reads).
:func:`atomic_save` is its ``torch.save``. :func:`load_saved` reads a saved object back; a file
that cannot be read (truncated or corrupt, e.g. written by a run killed before saves were
atomic) is an :class:`UnreadableFile` error naming it and the command that removes it, never
silently remade or skipped.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch


class UnreadableFile(RuntimeError):
    """A saved file that cannot be read back (truncated or corrupt)."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Make ``path`` (and its folder) from ``write(f)`` on a binary file, atomically (module
    docstring); returns ``path``. Whatever ``write`` raises is raised after the temporary file
    is removed, leaving ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the file
        os.chmod(tmp, 0o644)  # as any other file of the build (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save(obj, path)``, atomically (module docstring); returns ``path``."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_saved(path: Path) -> Any:
    """``torch.load`` of a file :func:`atomic_save` wrote (on the CPU, tensors and plain
    containers only). A missing file is a ``FileNotFoundError``; one that cannot be read is an
    :class:`UnreadableFile` naming it and how to remove it (the run that needs it then makes
    it again)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 (truncated, corrupt, another layout: all said the same way)
        first = (str(exc).splitlines() or [""])[0][:200]
        raise UnreadableFile(f"{path} cannot be read ({type(exc).__name__}: {first}): it is truncated or "
                             f"corrupt (a run killed while writing it?). Delete it (rm '{path}') and run again: "
                             "the run that needs it makes it anew") from exc
