"""Every table of the book is a pandas DataFrame; this is the one that puts
the paper's number beside ours, with the status of each claim."""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

COMPARISON_COLUMNS = ["quantity", "paper", "ours", "tolerance", "status", "note"]


def _cell(value: Any) -> Any:
    """Numbers stay numbers; lists and booleans print as they read."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_cell(v)) for v in value)
    return "" if value is None else value


def comparison_frame(items: Iterable[Any]) -> pd.DataFrame:
    """Paper beside ours: one row per claim (a :class:`~psnn_lib.book.records.Comparison`)."""
    rows = [[i.name, _cell(i.paper), _cell(i.ours), _cell(i.tolerance), i.status, i.note] for i in items]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).set_index("quantity")
