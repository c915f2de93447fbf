"""The claims page: every claim of every notebook, grouped by paper and by
figure or table, with counts per status, from the records of one profile.

The page is written as a notebook whose outputs are the tables (pandas
DataFrames), so it renders exactly like the notebook pages. A record whose
sources changed since it was written is marked stale (:mod:`.provenance`).
The page opens with what the book is built from (:mod:`.build_info`); the
README's claims line (:func:`claims_line`, written by ``psnn readme``) gives
the same counts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
import pandas as pd

from .build_info import BuildInfo
from .provenance import stale_reasons
from .records import PAPERS, STATUSES, Comparison
from .tables import comparison_frame


def load_records(folder: Path, order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every record in ``folder`` (``results/`` or ``results/<profile>/``), by paper, then
    in the ``order`` of their notebooks (the book's table of contents), then by name; a
    missing folder or a file that is not a record is a ValueError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no folder {folder}")
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a readable record ({type(exc).__name__}: {exc})") from None
        if not isinstance(rec, dict) or not {"notebook", "paper", "target"} <= rec.keys():
            raise ValueError(f"{path} names no notebook, paper and target: rerun its notebook")
        summary = rec.get("summary")
        if not (isinstance(rec["notebook"], str) and isinstance(rec["target"], str) and rec["paper"] in PAPERS
                and isinstance(summary, dict) and all(type(summary.get(s)) is int for s in STATUSES)):
            raise ValueError(f"{path} is not a record: a notebook and target (text), a paper of {sorted(PAPERS)} "
                             f"and a summary counting {', '.join(STATUSES)} are needed")
        records.append(rec)
    rank = {name: i for i, name in enumerate(order)}
    return sorted(records, key=lambda r: (r["paper"], rank.get(r["notebook"], len(rank)), r["notebook"]))


def stale_by_notebook(records: list[dict[str, Any]], root: Path) -> dict[str, list[str]]:
    """Why each record is stale against the checkout at ``root`` (hashes each source once)."""
    return {r["notebook"]: stale_reasons(r, root) for r in records}


def counts(records: list[dict[str, Any]], stale: Mapping[str, list[str]]) -> pd.DataFrame:
    """Claims per status, per paper and in all; and how many records are stale."""
    rows = {}
    for paper, title in PAPERS.items():
        mine = [r for r in records if r["paper"] == paper]
        row = {s: sum(r["summary"][s] for r in mine) for s in STATUSES}
        row["notebooks"] = len(mine)
        row["stale records"] = sum(bool(stale[r["notebook"]]) for r in mine)
        rows[f"Paper {paper}: {title}"] = row
    total = {k: sum(row[k] for row in rows.values()) for k in next(iter(rows.values()))}
    rows["all"] = total
    return pd.DataFrame.from_dict(rows, orient="index")


def claims_line(records: list[dict[str, Any]], stale: Mapping[str, list[str]], profile: str) -> str:
    """The README's line of counts, e.g. ``**Claims** (default profile, 15 notebooks): 120
    reproduced · 14 deviates · 3 not run · 0 stale records``."""
    total = counts(records, stale).loc["all"]
    parts = [f"{int(total[s])} {s}" for s in STATUSES] + [f"{int(total['stale records'])} stale records"]
    return f"**Claims** ({profile} profile, {int(total['notebooks'])} notebooks): " + " · ".join(parts)


def _html(df: pd.DataFrame) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data={"text/html": df.to_html(), "text/plain": df.to_string()})


def _table_cell(df: pd.DataFrame) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("table", metadata={"tags": ["remove-input"]})
    cell.outputs = [_html(df)]
    return cell


def claims_notebook(records: list[dict[str, Any]], root: Path, info: BuildInfo) -> nbformat.NotebookNode:
    """The claims page for ``records`` of the book ``info`` describes (staleness judged against
    ``root``)."""
    md = nbformat.v4.new_markdown_cell
    cells = [md("# Claims: the papers beside this book\n\n"
                f"Every number this book compares with a paper, from the records of the `{info.profile}` profile. "
                "A claim is **reproduced** within its stated tolerance, **deviates** (the note says why) or "
                "was **not run** at this profile. A record is **stale** when its notebook or a library module "
                f"it ran has changed since it was written.\n\nThis book: {info.text()}."),
             _table_cell(counts(records, stale := stale_by_notebook(records, root)))]
    for paper, title in PAPERS.items():
        mine = [r for r in records if r["paper"] == paper]
        cells.append(md(f"## Paper {paper}: {title}" + ("" if mine else "\n\nNo notebook of this book "
                                                                         "reproduces it yet.")))
        for rec in mine:
            summary = ", ".join(f"{rec['summary'][s]} {s}" for s in STATUSES)
            text = f"### {rec['target']}\n\nNotebook {{doc}}`notebooks/{rec['notebook']}`: {summary}."
            if stale[rec["notebook"]]:
                text += ("\n\n```{warning}\nThis record is stale: " + "; ".join(stale[rec["notebook"]])
                         + ". Rerun its notebook.\n```")
            cells.append(md(text))
            cells.append(_table_cell(comparison_frame(Comparison(**r) for r in rec["results"])))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb
