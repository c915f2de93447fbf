"""One matplotlib style for every figure of the book."""
from __future__ import annotations

import matplotlib

COLORS = {"target": "#1f4e9c", "ps": "#d62728", "bound": "#555555", "spike": "#2ca02c"}

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (7.0, 4.0),
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "lines.linewidth": 1.4,
}


def use_style() -> None:
    """Apply the book's style (headless-safe backend when no display is set)."""
    matplotlib.rcParams.update(STYLE)
