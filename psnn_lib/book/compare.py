"""Two runs' claims side by side, for the check that the book's claims do not depend on the
machine: CI reruns notebooks under another CPU capability (``ATEN_CPU_CAPABILITY=default``)
and thread count and compares their records with the committed ones, or two smoke runs with
each other (``psnn compare``).

Every claim of a notebook in the rerun must exist in the reference record with the same
paper value, the same status and, for a number, a value within ``rel`` of the reference's
(relative to the larger magnitude; NaN equals NaN); any other value must be equal. Notebooks
of the reference that the rerun did not run are not compared.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

REL = 1e-9
"""The relative tolerance of ``psnn compare``: a float64 sum may move by some ulps with the order of its
terms; a claim that moves by more depends on the machine."""


def _close(a: Any, b: Any, rel: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= rel * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b))
    return a == b


def claim_differences(reference: Path, rerun: Path, rel: float = REL) -> list[str]:
    """One line per claim of the records in folder ``rerun`` that differs from folder
    ``reference`` (named ``notebook: claim``), and per record or claim one of them lacks."""
    found = sorted(Path(rerun).glob("*.json"))
    if not found:
        return [f"no records in {rerun}"]
    lines = []
    for path in found:
        other = Path(reference) / path.name
        if not other.exists():
            lines.append(f"{path.stem}: no record in {reference}")
            continue
        mine = {c["name"]: c for c in json.loads(path.read_text())["results"]}
        theirs = {c["name"]: c for c in json.loads(other.read_text())["results"]}
        for name in sorted(mine.keys() ^ theirs.keys()):
            lines.append(f"{path.stem}: {name}: only in {rerun if name in mine else reference}")
        for name in [n for n in theirs if n in mine]:
            a, b = theirs[name], mine[name]
            for field in ("status", "paper", "ours"):
                if not _close(a[field], b[field], rel):
                    lines.append(f"{path.stem}: {name}: {field} {a[field]!r} -> {b[field]!r}")
    return lines
