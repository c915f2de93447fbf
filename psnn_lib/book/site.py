"""Build the HTML book of one profile from the executed notebooks.

``build_site`` stages a Jupyter Book source tree in ``_build/source/<profile>``
(the config, the table of contents, the chapters and bibliography, the
executed notebooks as ``notebooks/<name>.ipynb``, the generated claims page and
an offline copy of MathJax), builds it with warnings as errors, and checks the
HTML (:mod:`.html_check`). Every page's footer and the claims page say what the book is
built from (:mod:`.build_info`: the commit, the profile, the date of the records), which
``build-info.json`` in the HTML folder keeps. The book links to its GitHub repository (the
``origin`` remote, or the ``repository`` argument), and its notebook pages get launch buttons
(Binder, configured in ``_config.yml``); with no GitHub repository known it has neither, and
the build says so. The staged chapters get their numbers about our
results from the profile's records: each ``{{ name }}`` is expanded by
:mod:`.prose` with the values the papers' prose modules define
(``psnn_lib.paper1.prose``, ``psnn_lib.paper2.prose``), and a missing record
or key stops the build. The same ``_toc.yml`` serves every profile: the pages
are ``notebooks/<name>``, whatever profile executed them.

In each executed notebook the cell papermill injected is merged into the
parameters cell, so a reader sees one parameters cell with the values that ran, and the
notebook a reader downloads names no folder of this machine (:func:`without_local_traces`).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import nbformat
import yaml

from .. import paths
from .build_info import BuildInfo, build_info
from .claims import claims_notebook, load_records
from .html_check import check_html
from .prose import Prose, ProseError, expand_chapters
from .runner import executed_dir, notebook_sources

STAGED = ["_toc.yml", "book"]  # and _config.yml, completed by staged_config
# the book loads tex-chtml.js (TeX in, HTML-CSS out); the other bundles stay out
MATHJAX_UNUSED = shutil.ignore_patterns("*svg*", "mml-*", "tex-mml-*", "tex-chtml-full*", "node-main.js", "sre")


class SiteFailed(RuntimeError):
    """The book could not be staged or built; the message says why."""


def merge_injected_parameters(nb: nbformat.NotebookNode, profile: str) -> nbformat.NotebookNode:
    """Drop papermill's injected cell and write its values into the parameters cell;
    at a profile other than the default, say that its settings replace some values."""
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    nb.cells = [c for c in nb.cells if c not in injected]
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for cell in injected:
        for line in cell.source.splitlines():
            m = re.match(r"^(\w+)\s*=", line)
            if m:
                pattern = re.compile(rf"^{m[1]}\s*=.*$", re.M)
                if not pattern.search(params.source):
                    raise SiteFailed(f"papermill injected {m[1]!r}, which the parameters cell does not define")
                params.source = pattern.sub(lambda _: line, params.source, count=1)
    if profile != "default":
        params.source += (f"\n# the {profile!r} profile replaces some of these values by its own settings "
                          "(the next cell; the record lists those that ran)")
    return nb


def without_local_traces(nb: nbformat.NotebookNode, root: Path) -> nbformat.NotebookNode:
    """The notebook as a reader downloads it: without papermill's record of where and when it
    ran, and with the files its streams name (a warning names the file that raised it) relative
    to the checkout ``root``, or under ``~`` (the pages show no stderr: ``nb_output_stderr``)."""
    places = [(f"{Path(root).resolve()}/", ""), (f"{Path.home()}/", "~/")]
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                for place, shown in places:
                    output.text = output.text.replace(place, shown)
    return nb


def toc_notebooks(root: Path) -> list[str]:
    """The notebooks in the order of ``_toc.yml``."""
    return re.findall(r"file:\s*notebooks/(\w+)", (Path(root) / "_toc.yml").read_text())


def html_dir(root: Path, profile: str) -> Path:
    """Where the book of ``profile`` is built: ``_build/html`` for the default profile."""
    return Path(root) / "_build" / ("html" if profile == "default" else f"{profile}/_build/html")


def staged_config(root: Path, info: BuildInfo) -> dict:
    """``_config.yml`` with what only the build knows: the footer line of ``info``, and the
    repository with its button and the commit for the launch buttons, or no launch buttons when no
    GitHub repository is known."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    html = config.setdefault("html", {})
    html["extra_footer"] = f"<p>{info.html()}</p>"
    if info.repository:
        repository = config.setdefault("repository", {})
        repository["url"] = f"https://github.com/{info.repository}"
        if info.commit:  # a launch button opens the notebooks of the commit the page shows
            repository["branch"] = info.commit
        html["use_repository_button"] = True
    else:
        config.pop("launch_buttons", None)
        print("psnn site: no GitHub repository is known (no GitHub `origin` remote; pass --repository "
              "OWNER/NAME): the book has no launch buttons and no link to its repository", file=sys.stderr)
    return config


def stage(root: Path, profile: str, repository: Optional[str] = None) -> tuple[Path, BuildInfo]:
    """Stage the book source of ``profile``; returns its folder and what it is built from."""
    root = Path(root)
    target = root / "_build" / "source" / profile
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in STAGED:
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, target / name)
    info = build_info(root, profile, paths.results_dir(profile), repository)
    (target / "_config.yml").write_text(yaml.safe_dump(staged_config(root, info), sort_keys=False))
    # the chapters' numbers about our results come from this profile's records (book/prose.py)
    try:
        expand_chapters(target / "book", Prose(paths.results_dir(profile)))
    except ProseError as e:
        raise SiteFailed(f"a chapter's number cannot be read from the {profile} records: {e}") from None
    executed = executed_dir(root, profile)
    (target / "notebooks").mkdir()
    for src in notebook_sources(root):
        run = executed / f"{src.stem}.ipynb"
        if not run.exists():
            raise SiteFailed(f"{src.stem} has not been executed at the {profile} profile: "
                             f"run `psnn book --profile {profile}` first")
        nb = without_local_traces(merge_injected_parameters(nbformat.read(run, as_version=4), profile), root)
        nbformat.write(nb, target / "notebooks" / f"{src.stem}.ipynb")
    try:
        records = load_records(paths.results_dir(profile), toc_notebooks(root))
    except ValueError as e:
        raise SiteFailed(f"the {profile} records cannot be read: {e}") from None
    nbformat.write(claims_notebook(records, root, info), target / "claims.ipynb")
    mathjax = paths.mathjax_dir()
    if not (mathjax / "tex-chtml.js").exists():
        raise SiteFailed(f"MathJax is not in {mathjax}: `npm install --prefix .venv/npm mathjax@3` "
                         "(make does this) or set PSNN_MATHJAX to its es5 folder")
    # not under _static: Jupyter Book adds every .js file there to every page
    shutil.copytree(mathjax, target / "_mathjax" / "mathjax", ignore=MATHJAX_UNUSED)
    return target, info


def build_site(root: Path, profile: str, repository: Optional[str] = None) -> Path:
    """Stage, build with warnings as errors, and check the HTML; returns the HTML folder, which
    holds ``build-info.json``. ``repository``: ``owner/name`` on GitHub (default: the ``origin``
    remote's)."""
    source, info = stage(root, profile, repository)
    out = html_dir(root, profile)
    output_root = out.parents[1]
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(source), "--path-output",
           str(output_root), "--warningiserror", "--nitpick", "--keep-going", "--quiet"]
    if subprocess.run(cmd).returncode:
        raise SiteFailed(f"jupyter-book failed to build the {profile} book (see the warnings above)")
    problems = check_html(out, forbidden=[str(Path(root).resolve()), str(Path.home())])
    if problems:
        raise SiteFailed(f"{len(problems)} problem(s) in the built HTML:\n  " + "\n  ".join(problems[:40]))
    info.save(out)
    return out
