"""The book's look: one matplotlib style for every figure, pandas display options for every table."""
from __future__ import annotations

import matplotlib
import pandas as pd

COLORS = {"target": "#1f4e9c", "ps": "#d62728", "bound": "#555555", "spike": "#2ca02c"}

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (7.0, 4.0),
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "lines.linewidth": 1.4,
}


# tables show whole notes (no "..."), 4 decimals
TABLE_OPTIONS = {"display.max_colwidth": None, "display.precision": 4}


def use_style() -> None:
    """Apply the book's figure style and table options."""
    matplotlib.rcParams.update(STYLE)
    for key, value in TABLE_OPTIONS.items():
        pd.set_option(key, value)


def compact(frame: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """A wide table in a smaller font with padded cells, every row shown (the page is narrower
    than a notebook)."""
    return frame.style.format(precision=TABLE_OPTIONS["display.precision"]).set_table_styles(
        [{"selector": "", "props": "font-size: 0.75em"}, {"selector": "td, th", "props": "padding: 0.1em 0.4em"}])
