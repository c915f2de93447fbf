"""Layer weights of the joint calibration (paper 2, Eqs. 25-29) and its kappa schedule.

``layer_weights(name, L, p)`` gives the normalised weights of layers
l = 1..L at training progress p in [0, 1] (Eq. 26 divides phi_l(p) by
their sum):

- ``average``: phi_l = 1 (Eq. 25);
- ``cosine``: phi_l = cos(pi/2 (l/L - p)) (Eq. 27), floored at
  ``COSINE_FLOOR``: Eq. 27 gives the last layer exactly zero weight at
  p = 0, while the text asks "a small but non-zero positive number";
- ``sigmoid``: phi_l = mu (1 - s(mu x)) s(mu x), s the logistic function,
  x = l/L - p (Eqs. 28-29): a bell centred on layer pL, ``mu`` = 4 (the
  paper gives no value).

The surrogate steepness kappa of Eq. 32 follows ``KAPPA_SCHEDULE``: 6.7,
10 after 10 epochs, 15 at the 20th (Sect. 5.1; epochs counted from 0, so
from epoch 10 and from epoch 19).
"""
from __future__ import annotations

import math

WEIGHTINGS = ("average", "cosine", "sigmoid")
COSINE_FLOOR = 1e-2
SIGMOID_MU = 4.0
# (first epoch, kappa), epochs counted from 0: "increased to 10 after 10 epochs,
# and to 15 at the 20-th epoch"
KAPPA_SCHEDULE = ((0, 6.7), (10, 10.0), (19, 15.0))


def _phi(name: str, l: int, L: int, p: float, mu: float) -> float:
    x = l / L - p
    if name == "average":
        return 1.0
    if name == "cosine":
        return max(math.cos(math.pi / 2 * x), COSINE_FLOOR)
    s = 1.0 / (1.0 + math.exp(-mu * x))
    return mu * (1.0 - s) * s


def layer_weights(name: str, L: int, p: float, mu: float = SIGMOID_MU) -> list[float]:
    """Eq. 26: phi_l(p) / sum_l phi_l(p) for l = 1..L."""
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; choose one of {', '.join(WEIGHTINGS)}")
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"L must be a positive number of layers, got {L!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the training progress p must be in [0, 1], got {p!r}")
    phi = [_phi(name, l, L, p, mu) for l in range(1, L + 1)]
    total = sum(phi)
    return [v / total for v in phi]


def kappa_at(epoch: int, schedule: tuple[tuple[int, float], ...] = KAPPA_SCHEDULE) -> float:
    """kappa of Eq. 32 in ``epoch`` (counted from 0)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return [k for start, k in schedule if epoch >= start][-1]
