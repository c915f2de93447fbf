"""Intervals for counts of images: what a result measured on a few hundred images can tell."""
from __future__ import annotations

from scipy.stats import beta


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) ``level`` interval of a rate observed as ``k`` of ``n``: it
    covers the true rate at least that often, however small ``k`` is (0 and n included)."""
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n or not 0 <= k <= n or n < 1:
        raise ValueError(f"need whole numbers 0 <= k <= n, n >= 1; got k = {k!r}, n = {n!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high
