"""What a built book is built from: the commit, the profile, and when its records were made.

Every page's footer and the claims page say it (:mod:`.site`), the published archive is
named after it (:mod:`.publish`), and ``build-info.json`` in the HTML folder keeps it. Records hold
no time stamp (rerunning the same sources writes the same bytes), so their date is read
from git: the date of the last commit that changed them when the records in the checkout are
the committed ones (in a shallow clone that commit may be older: the line says "on or
before"), else the date the newest of them was written (``committed`` False: a run in this
checkout wrote them and no commit holds them). A checkout without git (an unpacked archive)
has no commit: the line says so. ``build-info.json`` also keeps a fingerprint of the records'
bytes and of the uncommitted changes, by which ``psnn publish`` knows a book built from
another state of the checkout.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

FILE = "build-info.json"


@dataclass(frozen=True)
class BuildInfo:
    commit: Optional[str]  # the full SHA of HEAD; None outside a git checkout
    changed: bool  # files besides the records differ from HEAD (or are new and not ignored)
    profile: str
    records_date: Optional[str]  # ISO date; None when the profile has no records
    records_committed: bool
    repository: Optional[str] = None  # "owner/name" on GitHub, for a link to the commit
    fingerprint: str = ""  # a digest of the records and of the uncommitted changes (see build_info)
    shallow: bool = False  # a shallow clone: the records' last commit may be older than its date says

    @property
    def short(self) -> str:
        """The commit's first 12 hex digits, or ``unknown``."""
        return self.commit[:12] if self.commit else "unknown"

    def text(self) -> str:
        """One line of plain text, e.g. ``commit 0123456789ab · profile default · records committed
        on 2026-12-08``."""
        if self.commit:
            commit = f"commit {self.short}" + (" with uncommitted changes" if self.changed else "")
        else:
            commit = "no git commit (not built from a git checkout)"
        if self.records_date is None:
            records = "no records"
        elif not self.records_committed:
            records = f"records written on {self.records_date}, not committed"
        elif self.shallow:
            records = f"records committed on or before {self.records_date} (a shallow clone)"
        else:
            records = f"records committed on {self.records_date}"
        return f"{commit} · profile {self.profile} · {records}"

    def html(self) -> str:
        """:meth:`text` as HTML, the commit linked to the repository when it is known."""
        line = html.escape(self.text())
        if self.commit and self.repository:
            url = f"https://github.com/{self.repository}/commit/{self.commit}"
            line = line.replace(f"commit {self.short}", f'commit <a href="{html.escape(url)}">{self.short}</a>', 1)
        return f"Built from {line}."

    def save(self, folder: Path) -> Path:
        """Write ``build-info.json`` into ``folder`` (a built book); returns its path."""
        path = Path(folder) / FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def load(folder: Path) -> BuildInfo:
    """The :class:`BuildInfo` a built HTML folder holds."""
    path = Path(folder) / FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build the book with `psnn site` (make site) first")
    try:
        info = BuildInfo(**json.loads(path.read_text()))
        text, flag = (str, type(None)), bool
        if not (isinstance(info.commit, text) and isinstance(info.profile, str) and isinstance(info.changed, flag)
                and isinstance(info.records_date, text) and isinstance(info.records_committed, flag)
                and isinstance(info.repository, text) and isinstance(info.fingerprint, str)
                and isinstance(info.shallow, flag)):
            raise TypeError("a value of the wrong type")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not what this psnn writes ({type(exc).__name__}: {exc}): "
                         "build the book again") from None
    return info


def _git(root: Path, *args: str) -> Optional[str]:
    """The output of a git command in ``root``; None when git or the repository is missing."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return done.stdout.rstrip() if done.returncode == 0 else None


def is_github_repository(text: str) -> bool:
    """Whether ``text`` is ``owner/name`` as GitHub spells them (no ``.git``, no ``..``)."""
    owner, _, name = text.partition("/")
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}", owner, re.ASCII)
                and re.fullmatch(r"[A-Za-z0-9._-]+", name, re.ASCII)
                and name not in (".", "..") and not name.endswith(".git"))


def github_repository(root: Path) -> Optional[str]:
    """``owner/name`` of the ``origin`` remote when it is on GitHub (https or ssh), else None."""
    url = _git(root, "remote", "get-url", "origin") or ""
    m = re.match(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)(.+?)(?:\.git)?/?$", url)
    return m[1] if m and is_github_repository(m[1]) else None


def _written(records: Sequence[Path]) -> str:
    """The UTC date the newest of ``records`` was written."""
    newest = max(p.stat().st_mtime for p in records)
    return dt.datetime.fromtimestamp(newest, dt.timezone.utc).date().isoformat()


def _records_date(root: Path, records: Sequence[Path], in_git: bool) -> tuple[Optional[str], bool]:
    """(date, committed) of ``records``: see the module docstring."""
    if not records:
        return None, False
    if in_git and all(p.is_relative_to(root) for p in records):
        rel = [str(p.relative_to(root)) for p in records]
        # empty when every record is tracked and unchanged (ignored and untracked files are listed)
        if _git(root, "status", "--porcelain", "--untracked-files=all", "--ignored=matching", "--", *rel) == "":
            date = _git(root, "log", "-1", "--format=%cs", "--", *rel)
            if date:
                return date, True
    return _written(records), False


def build_info(root: Path, profile: str, results: Path, repository: Optional[str] = None) -> BuildInfo:
    """The :class:`BuildInfo` of the checkout at ``root`` for the records in ``results``;
    ``repository`` (``owner/name``) over the GitHub ``origin`` remote."""
    root = Path(root).resolve()
    records = sorted(Path(results).resolve().glob("*.json"))
    commit = _git(root, "rev-parse", "HEAD")
    changed = False
    if commit:
        rel = {str(p.relative_to(root)) for p in records if p.is_relative_to(root)}
        lines = (_git(root, "status", "--porcelain", "--untracked-files=normal") or "").splitlines()
        changed = any(line[3:] not in rel for line in lines)
    date, committed = _records_date(root, records, commit is not None)
    # what the line does not show: the records' bytes and the uncommitted changes themselves
    h = hashlib.sha256()
    for path in records:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    if commit:
        h.update((_git(root, "diff", "HEAD", "--binary") or "").encode())
        h.update((_git(root, "ls-files", "--others", "--exclude-standard") or "").encode())
    shallow = _git(root, "rev-parse", "--is-shallow-repository") == "true"
    return BuildInfo(commit, changed, profile, date, committed, repository or github_repository(root), h.hexdigest(),
                     shallow)
