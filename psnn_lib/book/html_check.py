"""Scan a built book for what a reader must never see.

- a raw Markdown table (``| a | b |`` over ``|---|---|``) in the page text:
  an output rendered as CommonMark, which has no tables;
- a local path (the checkout, the home folder, ``/tmp``, ``PosixPath(...)``);
- a script or style sheet loaded from the network (the book must read offline);
- a local path in a notebook a reader downloads (``_sources/**/*.ipynb``).
"""
from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Sequence

_RAW_TABLE = re.compile(r"\|\s*:?-{3,}:?\s*\|")
_LOCAL = re.compile(r"PosixPath\(|file://|(?<![\w.])/tmp/")
_NETWORK = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"'](?:https?:)?//", re.I)
_NON_TEXT = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def page_text(html: str) -> str:
    """The text a reader sees (tags, scripts and styles removed)."""
    return unescape(_TAG.sub(" ", _NON_TEXT.sub(" ", html)))


def local_paths(text: str, forbidden: Sequence[str] = ()) -> list[str]:
    """The local paths in ``text`` (a page, or a notebook a reader downloads)."""
    problems = []
    if m := _LOCAL.search(text):
        problems.append(f"local path: {text[max(0, m.start() - 40):m.end() + 40]!r}")
    for path in forbidden:
        if path and path in text:
            problems.append(f"local path {path!r}")
    return problems


def check_page(html: str, forbidden: Sequence[str] = ()) -> list[str]:
    """Problems of one page (empty when it is clean)."""
    problems = []
    text = page_text(html)
    if m := _RAW_TABLE.search(text):
        problems.append(f"raw Markdown table: {text[max(0, m.start() - 60):m.end()].strip()!r}")
    problems += local_paths(html, forbidden)  # the page text is part of the HTML
    if m := _NETWORK.search(html):
        problems.append(f"loaded from the network: {m.group(0)!r}")
    return problems


def check_html(folder: Path, forbidden: Sequence[str] = ()) -> list[str]:
    """Problems of every page and downloadable notebook under ``folder``, each prefixed with its file."""
    found = []
    for page in sorted(Path(folder).rglob("*.html")):
        found += [f"{page.relative_to(folder)}: {p}" for p in check_page(page.read_text(), forbidden)]
    for notebook in sorted(Path(folder).rglob("*.ipynb")):
        found += [f"{notebook.relative_to(folder)}: {p}" for p in local_paths(notebook_text(notebook), forbidden)]
    return found


def notebook_text(path: Path) -> str:
    """A notebook's JSON without its images (base64 may spell a path by chance)."""
    nb = json.loads(path.read_text())
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            for mime in [m for m in output.get("data", {}) if m.startswith("image/")]:
                del output["data"][mime]
    return json.dumps(nb)
