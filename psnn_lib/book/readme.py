"""The README's claims line: the claims page's counts in one line, written from the records.

The line follows the marker :data:`MARKER` in ``README.md``; ``psnn readme`` rewrites it from the
default profile's records (:func:`.claims.claims_line`) and ``psnn readme --check`` (a test)
fails when it differs, so the line is never typed by hand and never out of date.
"""
from __future__ import annotations

from pathlib import Path

from .. import paths
from .claims import claims_line, load_records, stale_by_notebook

MARKER = "<!-- psnn readme writes the next line from the default records: do not edit it -->"
PREFIX = "**Claims** ("  # how the line starts (:func:`.claims.claims_line`)


class ReadmeError(RuntimeError):
    """The README has no place for the line."""


def write_claims_line(root: Path, check: bool = False) -> bool:
    """Put the claims line after the marker of ``root/README.md``, in place of the line there
    when it is a claims line, else inserted (only compare when ``check``); True when the README's
    line differed."""
    readme = Path(root) / "README.md"
    lines = readme.read_text().split("\n")
    if lines.count(MARKER) != 1:
        raise ReadmeError(f"README.md needs the line {MARKER!r} exactly once")
    records = load_records(paths.results_dir("default"))
    line = claims_line(records, stale_by_notebook(records, root), "default")
    at = lines.index(MARKER) + 1
    present = at < len(lines) and lines[at].startswith(PREFIX)
    if present and lines[at] == line:
        return False
    if not check:
        lines[at:at + present] = [line]
        readme.write_text("\n".join(lines))
    return True
