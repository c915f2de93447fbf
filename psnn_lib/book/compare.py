"""Two runs' claims side by side, for the check that the book's claims do not depend on the
machine: CI reruns notebooks under another CPU capability (``ATEN_CPU_CAPABILITY=default``)
and thread count and compares their records with the committed ones, or two smoke runs with
each other (``psnn compare``).

Every claim of a notebook in the rerun must exist in the reference record with the same
paper value, the same status and, for a number, a value within ``rel`` of the reference's
(relative to the larger magnitude; NaN equals NaN, an infinity only the same infinity; a
bool is not a number); lists and dicts are compared entry by entry, anything else must be
equal. Notebooks of the reference that the rerun did not run are not compared; what the
chapters quote from a record's ``extra`` is checked where the chapters are built from it.
With ``fields=("status", "paper")`` (``psnn compare --statuses``) only each claim's status
and paper value must agree: the book workflow deploys a book whose values, rerun on a
runner's CPU, moved where the README says they may, and lists those moves.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

REL = 1e-9
"""The relative tolerance of ``psnn compare``: a float64 sum may move by some ulps with the order of its
terms; a claim that moves by more depends on the machine."""


FIELDS = ("status", "paper", "ours")


class RecordError(ValueError):
    """A folder or record that cannot be compared (missing, unreadable, not a record)."""


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= rel * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    return a == b


def _claims(path: Path) -> dict[str, dict[str, Any]]:
    """The claims of the record at ``path`` by name."""
    try:
        results = json.loads(path.read_text())["results"]
        claims = {c["name"]: c for c in results}
        missing = [c["name"] for c in results if not {"status", "paper", "ours"} <= c.keys()]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"{path} is not a readable record ({type(exc).__name__}: {exc})") from None
    if len(claims) != len(results):
        raise RecordError(f"{path} names a claim twice")
    if missing:
        raise RecordError(f"{path}: claim {missing[0]!r} lacks a status, paper or ours value")
    return claims


def claim_differences(reference: Path, rerun: Path, rel: float = REL, fields: tuple[str, ...] = FIELDS) -> list[str]:
    """One line per claim of the records in folder ``rerun`` whose ``fields`` differ from folder
    ``reference`` (named ``notebook: claim``), and per record or claim one of them lacks.
    Raises :class:`RecordError` for a missing folder or a file that is not a record."""
    reference, rerun = Path(reference), Path(rerun)
    for folder in (reference, rerun):
        if not folder.is_dir():
            raise RecordError(f"no folder {folder}")
    found = sorted(rerun.glob("*.json"))
    if not found:
        return [f"no records in {rerun}"]
    lines = []
    for path in found:
        mine = _claims(path)
        other = reference / path.name
        if not other.exists():
            lines.append(f"{path.stem}: no record in {reference}")
            continue
        theirs = _claims(other)
        for name in sorted(mine.keys() ^ theirs.keys()):
            lines.append(f"{path.stem}: {name}: only in {rerun if name in mine else reference}")
        for name in [n for n in theirs if n in mine]:
            a, b = theirs[name], mine[name]
            for field in fields:
                if not _close(a[field], b[field], rel):
                    lines.append(f"{path.stem}: {name}: {field} {a[field]!r} -> {b[field]!r}")
    return lines
