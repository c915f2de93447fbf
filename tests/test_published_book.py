"""What a reader gets besides the pages: the line saying what a book is built from, the
launch buttons, the README's claims line, the offline archive, and notebooks paired for JupyterLab."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from psnn_lib import paths
from psnn_lib.book import build_info as bi
from psnn_lib.book.claims import claims_line, claims_notebook, load_records, stale_by_notebook
from psnn_lib.book.launch_links import drop_launch_buttons
from psnn_lib.book.publish import PublishFailed, make_archive, open_offline
from psnn_lib.book.readme import MARKER, ReadmeError, write_claims_line
from psnn_lib.book.site import staged_config

ROOT = Path(__file__).resolve().parents[1]


def git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True, env={**os.environ, "GIT_COMMITTER_DATE": "2026-01-02T00:00:00"})


def _checkout(root):
    (root / "results").mkdir(parents=True)
    (root / "results" / "a.json").write_text("{}")
    (root / "code.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("_build/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_build_info_reads_the_commit_changes_and_the_records_date(tmp_path):
    root = _checkout(tmp_path / "repo")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    info = bi.build_info(root, "default", root / "results")
    assert (info.commit, info.changed, info.records_date, info.records_committed) == (head, False, "2026-01-02", True)
    assert info.text() == f"commit {head[:12]} · profile default · records committed on 2026-01-02"
    (root / "results" / "a.json").write_text('{"rerun": 1}')  # a rerun rewrote a record: not a code change
    info = bi.build_info(root, "default", root / "results")
    assert not info.changed and not info.records_committed and info.records_date != "2026-01-02"
    assert "records written on" in info.text() and "not committed" in info.text()
    (root / "code.py").write_text("x = 2\n")
    assert bi.build_info(root, "default", root / "results").changed
    git(root, "checkout", "--", "code.py")
    (root / "new.py").write_text("")  # new and not ignored: part of what is built
    assert bi.build_info(root, "default", root / "results").changed
    shallow = tmp_path / "shallow"  # a clone of depth 1: the records' last commit may be older
    git(tmp_path, "clone", "-q", "--depth", "1", root.as_uri(), str(shallow))
    info = bi.build_info(shallow, "default", shallow / "results")
    assert info.shallow and "records committed on or before 2026-01-02 (a shallow clone)" in info.text()
    no_git = tmp_path / "unpacked"
    (no_git / "results").mkdir(parents=True)
    info = bi.build_info(no_git, "smoke", no_git / "results")
    assert info.commit is None and info.text() == "no git commit (not built from a git checkout) · profile smoke · no records"


def test_the_repository_comes_from_the_github_remote(tmp_path):
    root = _checkout(tmp_path)
    assert bi.github_repository(root) is None
    for url in ("https://github.com/owner/psnn.git", "git@github.com:owner/psnn.git", "https://github.com/owner/psnn"):
        subprocess.run(["git", "-C", str(root), "remote", "remove", "origin"], capture_output=True)
        git(root, "remote", "add", "origin", url)
        assert bi.github_repository(root) == "owner/psnn"
    git(root, "remote", "set-url", "origin", "https://gitlab.com/owner/psnn.git")
    assert bi.github_repository(root) is None


def _info(repository=None, commit="0123456789abcdef" * 2 + "01234567"):
    return bi.BuildInfo(commit, False, "default", "2026-12-08", True, repository)


def test_every_page_says_what_it_is_built_from_and_links_the_commit(capsys):
    config = staged_config(ROOT, _info("owner/psnn"))
    footer = config["html"]["extra_footer"]
    assert "commit <a href=\"https://github.com/owner/psnn/commit/0123456789abcdef" in footer
    assert "profile default · records committed on 2026-12-08" in footer
    assert config["repository"]["url"] == "https://github.com/owner/psnn" and config["html"]["use_repository_button"]
    assert config["repository"]["branch"] == _info().commit  # Binder opens the notebooks the page shows
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert "psnn_lib.book.launch_links" in config["sphinx"]["extra_extensions"]
    # no repository known: no launch buttons, no link (Jupyter Book would link its own repository), and said so
    config = staged_config(ROOT, _info(None))
    assert "launch_buttons" not in config and "url" not in config.get("repository", {})
    assert "no launch buttons" in capsys.readouterr().err
    nb = claims_notebook([], ROOT, _info())
    assert "This book: commit 0123456789ab · profile default · records committed on 2026-12-08." in nb.cells[0].source


def test_launch_buttons_stay_on_the_notebook_pages_only():
    buttons = [{"label": "launch-buttons"}, {"label": "download-buttons"}]
    page = {"header_buttons": list(buttons)}
    drop_launch_buttons(None, "notebooks/table1_cifar", "page.html", page, None)
    assert page["header_buttons"] == buttons
    claims = {"header_buttons": list(buttons)}
    drop_launch_buttons(None, "claims", "page.html", claims, None)
    assert claims["header_buttons"] == [{"label": "download-buttons"}]


def test_the_readme_claims_line_is_the_records():
    assert write_claims_line(ROOT, check=True) is False, "run `psnn readme` and commit README.md"
    records = load_records(ROOT / "results")
    line = claims_line(records, stale_by_notebook(records, ROOT), "default")
    total = sum(sum(r["summary"].values()) for r in records)
    numbers = [int(n) for n in line.split(":", 1)[1].replace("·", " ").split() if n.isdigit()]
    assert sum(numbers[:3]) == total and f"{len(records)} notebooks" in line


def test_the_readme_line_is_rewritten_and_checked(tmp_path, monkeypatch):
    (tmp_path / "README.md").write_text(f"# x\n\n{MARKER}\nold line\nmore\n")
    monkeypatch.setenv("PSNN_RESULTS_DIR", str(ROOT / "results"))
    monkeypatch.setenv("PSNN_ROOT", str(ROOT))
    assert write_claims_line(tmp_path, check=True) is True
    assert "old line" in (tmp_path / "README.md").read_text()  # a check writes nothing
    assert write_claims_line(tmp_path) is True
    text = (tmp_path / "README.md").read_text()
    assert text.startswith(f"# x\n\n{MARKER}\n**Claims** (default profile,") and text.endswith("\nmore\n")
    assert write_claims_line(tmp_path, check=True) is False
    (tmp_path / "README.md").write_text(f"{MARKER}\nmore\n")  # the line deleted: inserted, nothing lost
    assert write_claims_line(tmp_path) is True
    assert (tmp_path / "README.md").read_text().split("\n")[1:] == [text.split("\n")[3], "more", ""]
    (tmp_path / "README.md").write_text("no marker\n")
    with pytest.raises(ReadmeError, match="needs the line"):
        write_claims_line(tmp_path)


def _built_book(root, math=True, footer=True):
    html = root / "_build" / "html"
    (html / "notebooks").mkdir(parents=True)
    info = bi.build_info(root, "default", root / "results")
    info.save(html)
    line = f"<footer>{info.html()}</footer>" if footer else ""
    script = '<script defer src="../mathjax/tex-chtml.js"></script>' if math else ""
    (html / "index.html").write_text(f"<html><body><p>start</p>{line}</body></html>")
    (html / "claims.html").write_text(f"<html><body><p>claims</p>{line}</body></html>")
    (html / "notebooks" / "nb.html").write_text(
        f"<html><head>{script}</head><body><span class=\"math notranslate nohighlight\">\\(x^2\\)</span>"
        f"{line}</body></html>")
    mathjax = paths.mathjax_dir()
    (html / "mathjax").mkdir()
    (html / "mathjax" / "tex-chtml.js").write_bytes((mathjax / "tex-chtml.js").read_bytes())
    return html


def test_the_archive_is_refused_when_the_checkout_moved_on(tmp_path):
    root = _checkout(tmp_path)
    html = _built_book(root)
    archive = make_archive(root, html, root / "results", root / "_build")
    info = bi.load(html)
    assert archive.name == f"psnn-book-default-{info.short}.zip"
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist())[:2] == [f"psnn-book-default-{info.short}/build-info.json",
                                             f"psnn-book-default-{info.short}/claims.html"]
    for path, text in [("code.py", "x = 3\n"), ("code.py", "x = 4\n"), ("results/a.json", '{"b": 1}')]:
        (root / path).write_text(text)  # a change, another change, other records of the same day
        with pytest.raises(PublishFailed, match="build it again"):
            make_archive(root, html, root / "results", root / "_build")
        bi.build_info(root, "default", root / "results").save(html)  # built again
        assert make_archive(root, html, root / "results", root / "_build").exists()
    with pytest.raises(FileNotFoundError, match="build the book"):
        make_archive(root, root / "nothing", root / "results", root / "_build")
    for text in ('{"commit": null}', json.dumps({**json.loads((html / "build-info.json").read_text()), "commit": 5})):
        (html / "build-info.json").write_text(text)  # written by another version, or by hand
        with pytest.raises(ValueError, match="build the book again"):
            make_archive(root, html, root / "results", root / "_build")


def test_the_archive_opens_offline_with_its_line_and_typeset_equations(tmp_path):
    """Headless Chromium, network off (make installs Chromium, as it installs the dataset)."""
    root = _checkout(tmp_path / "good")
    good = make_archive(root, _built_book(root), root / "results", root / "_build")
    assert open_offline(good) == []
    bad_root = _checkout(tmp_path / "bad")
    bad = make_archive(bad_root, _built_book(bad_root, math=False, footer=False), bad_root / "results",
                       bad_root / "_build")
    problems = open_offline(bad)
    assert len([p for p in problems if "line of what the book is built from is not shown" in p]) == 3
    assert [p for p in problems if "equations were not typeset" in p] == [
        "notebooks/nb.html: its equations were not typeset (MathJax did not run offline)"]


def test_a_paired_notebook_edited_as_ipynb_lands_in_its_md(tmp_path):
    """make lab and Binder pair notebooks/<name>.md with <name>.ipynb (jupytext.toml): pairing leaves
    every source as it is, and what is saved in the .ipynb lands in the .md."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "jupytext.toml").write_text((ROOT / "jupytext.toml").read_text())
    sources = sorted((ROOT / "notebooks").glob("*.md"))
    for src in sources:
        (tmp_path / "notebooks" / src.name).write_text(src.read_text())
    jupytext = [str(Path(sys.executable).with_name("jupytext")), "--sync"]
    subprocess.run(jupytext + [f"notebooks/{s.name}" for s in sources], cwd=tmp_path, check=True, capture_output=True)
    for src in sources:  # unchanged bytes: the records stay current
        assert (tmp_path / "notebooks" / src.name).read_bytes() == src.read_bytes(), src.name
    paired = tmp_path / "notebooks" / sources[0].with_suffix(".ipynb").name
    nb = nbformat.read(paired, as_version=4)
    nb.cells[-1].source += "\nedited_in_the_lab = 1"
    nbformat.write(nb, paired)
    os.utime(paired, (paired.stat().st_mtime + 5,) * 2)  # saved after the .md
    subprocess.run(jupytext + [str(paired.relative_to(tmp_path))], cwd=tmp_path, check=True, capture_output=True)
    text = (tmp_path / "notebooks" / sources[0].name).read_text()
    assert text.replace("\nedited_in_the_lab = 1", "", 1) == sources[0].read_text()
