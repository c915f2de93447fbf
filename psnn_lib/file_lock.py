"""One process at a time: an exclusive lock on a file, for work that two notebooks running at
once (the runner runs two at a time) must not do twice or interleave: computing one cached
curve (:mod:`psnn_lib.paper2.curve_cache`), training one network and rewriting a checkpoint
manifest (:mod:`psnn_lib.models.checkpoints`)."""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Iterator

from . import paths


def lock_file_for(path: Path) -> Path:
    """The lock file of ``path`` when nothing should be written beside it (a committed folder):
    ``<cache>/locks/<SHA-256 of its resolved path>.lock``."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return paths.cache_dir() / "locks" / f"{digest}.lock"


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (made if missing) for the block; another
    process asking for it waits. No lock where ``fcntl`` is missing (not POSIX) or the lock file
    cannot be made (a read-only folder). Not re-entrant: the block must not ask for the same lock."""
    try:
        import fcntl
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a")
    except (ImportError, OSError):
        lock = None
    if lock is None:
        yield
        return
    with lock:  # closing the file releases the lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
