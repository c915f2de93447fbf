"""A reader's download: the built HTML book as one zip archive that reads offline.

``make_archive`` packs a built book (``psnn site``) into
``psnn-book-<profile>-<commit>.zip`` with one top folder, after checking that it
was built from the checkout as it is (the same commit, records and uncommitted
changes). MathJax ships inside the book and nothing is loaded from the
network (:mod:`.html_check`), so the unpacked pages read offline.
``open_offline`` proves it: it unpacks an archive and opens pages in headless
Chromium from the disk, with the network off, and reports every page whose
commit line is missing or whose equations were not typeset.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from .build_info import BuildInfo, build_info, load
from .html_check import page_text

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PublishFailed(RuntimeError):
    """The archive could not be made or does not read offline; the message says why."""


def archive_name(info: BuildInfo) -> str:
    """``psnn-book-<profile>-<commit>``, and ``-changed`` for a book with uncommitted changes."""
    return f"psnn-book-{info.profile}-{info.short}" + ("-changed" if info.changed else "")


def make_archive(root: Path, html: Path, results: Path, out_dir: Path) -> Path:
    """Zip the book built in ``html`` into ``out_dir``; refused when the checkout at ``root``
    (with the records in ``results``) is not what the book was built from: another commit, other
    records, or other uncommitted changes (:attr:`.BuildInfo.fingerprint`)."""
    built = load(html)
    now = build_info(root, built.profile, results)
    if (built.commit, built.fingerprint) != (now.commit, now.fingerprint):
        where = html.relative_to(root) if html.is_relative_to(root) else html
        raise PublishFailed(f"the book in {where} was built from {built.text()}; the checkout is now at "
                            f"{now.text()}: build it again (make book, or make site PROFILE={built.profile})")
    name = archive_name(built)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in html.rglob("*") if p.is_file()):
            zf.write(path, f"{name}/{path.relative_to(html).as_posix()}")
    return archive


def browser() -> str:
    """A headless Chromium on the PATH."""
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    raise PublishFailed(f"no Chromium found ({', '.join(BROWSERS)}): install one, e.g. `apt-get install chromium`")


def rendered(page: Path, chromium: str) -> str:
    """The DOM of ``page`` after its scripts ran, in headless Chromium with no network."""
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                                   "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                                   "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise PublishFailed(f"Chromium did not open {page.name} within 120 s") from None
    if done.returncode or "<html" not in done.stdout:
        raise PublishFailed(f"Chromium could not open {page.name}: {done.stderr.strip()[-400:]}")
    return done.stdout


def open_offline(archive: Path, pages: Optional[Sequence[str]] = None) -> list[str]:
    """Problems of ``pages`` (paths inside the book; default: the start page, the claims page and
    every notebook page with equations) opened from the unpacked ``archive``; empty when each shows
    the commit line and typesets its equations."""
    chromium = browser()
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        (book,) = Path(tmp).iterdir()
        info = load(book)
        if pages is None:
            maths = [p.relative_to(book).as_posix() for p in sorted((book / "notebooks").glob("*.html"))
                     if 'class="math' in p.read_text()]
            pages = ["index.html", "claims.html", *maths]
        problems = []
        for name in pages:
            page = book / name
            if not page.exists():
                problems.append(f"{name}: not in the archive")
                continue
            dom = rendered(page, chromium)
            if info.text() not in " ".join(page_text(dom).split()):
                problems.append(f"{name}: the line of what the book is built from is not shown ({info.text()})")
            if 'class="math' in page.read_text() and "<mjx-container" not in dom:
                problems.append(f"{name}: its equations were not typeset (MathJax did not run offline)")
        return problems
