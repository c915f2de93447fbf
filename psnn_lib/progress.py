"""The one progress bar of the library (tqdm, text mode).

``enabled=False`` turns a bar off; otherwise tqdm's own ``TQDM_DISABLE``
variable decides, which the book runner sets in its kernels, so that progress
shows in the terminal and never inside the published notebooks.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from tqdm import tqdm


def progress_bar(iterable: Optional[Iterable] = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
