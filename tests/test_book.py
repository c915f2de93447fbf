"""The book machinery: fresh records, the claims page, the staged notebooks,
the HTML checks, and the library installed outside the checkout."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from psnn_lib.book.build_info import BuildInfo
from psnn_lib.book.claims import claims_notebook, counts, load_records, stale_by_notebook
from psnn_lib.book.html_check import check_html, check_page
from psnn_lib.book.provenance import file_digest, loaded_modules, stale_reasons
from psnn_lib.book.runner import notebook_sources
from psnn_lib.book.site import SiteFailed, merge_injected_parameters, toc_notebooks, without_local_traces

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("notebook", [p.stem for p in notebook_sources(ROOT)])
def test_committed_default_record_is_current(notebook):
    rec = json.loads((ROOT / "results" / f"{notebook}.json").read_text())
    assert rec["profile"] == "default" and rec["paper"] in (1, 2) and rec["target"]
    assert stale_reasons(rec, ROOT) == [], f"rerun `psnn book --only {notebook}` and commit its record"


def test_the_toc_lists_every_notebook_once():
    assert sorted(toc_notebooks(ROOT)) == sorted(p.stem for p in notebook_sources(ROOT))


def test_sources_include_the_data_the_library_reads():
    import psnn_lib.models.checkpoints  # noqa: F401
    import psnn_lib.neurons.fs  # noqa: F401

    files = loaded_modules()
    assert {"psnn_lib/neurons/fs.py", "psnn_lib/neurons/fs_params.json", "data/checkpoints.json"} <= set(files)
    import psnn_lib.paper2.networks  # noqa: F401
    assert "data/paper2_networks.json" in loaded_modules()
    import psnn_lib.kernels.ps_fast  # noqa: F401
    assert "psnn_lib/kernels/ps_fast.c" in loaded_modules()  # the C source a PS neuron runs


def _fake_checkout(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "nb.md").write_text("a notebook\n")
    (tmp_path / "psnn_lib" / "ps").mkdir(parents=True)
    (tmp_path / "psnn_lib" / "ps" / "fit.py").write_text("x = 1\n")
    (tmp_path / "psnn_lib" / "converter").mkdir()
    (tmp_path / "psnn_lib" / "converter" / "engine.py").write_text("y = 1\n")
    return {"sources": {"notebook": {"nb.md": file_digest(tmp_path / "notebooks" / "nb.md")},
                        "modules": {"psnn_lib/ps/fit.py": file_digest(tmp_path / "psnn_lib" / "ps" / "fit.py")}}}


def test_a_record_is_stale_only_when_its_own_sources_change(tmp_path):
    rec = _fake_checkout(tmp_path)
    assert stale_reasons(rec, tmp_path) == []
    (tmp_path / "psnn_lib" / "converter" / "engine.py").write_text("y = 2\n")  # a module it never ran
    assert stale_reasons(rec, tmp_path) == []
    (tmp_path / "psnn_lib" / "ps" / "fit.py").write_text("x = 2\n")
    assert stale_reasons(rec, tmp_path) == ["psnn_lib/ps/fit.py changed"]
    (tmp_path / "notebooks" / "nb.md").unlink()
    assert "notebooks/nb.md no longer exists" in stale_reasons(rec, tmp_path)
    assert stale_reasons({"results": []}, tmp_path) == ["the record names no sources (written by an older psnn)"]


def _record(notebook, paper, target, statuses, sources):
    results = [{"name": f"claim {i}", "paper": 1.0, "ours": 1.0 if s == "reproduced" else None,
                "tolerance": 0.1, "status": s, "note": "" if s == "reproduced" else "why"}
               for i, s in enumerate(statuses)]
    summary = {s: statuses.count(s) for s in ("reproduced", "deviates", "not run")}
    return {"notebook": notebook, "paper": paper, "target": target, "summary": summary, "results": results,
            **sources}


def test_claims_page_counts_and_marks_stale_records(tmp_path):
    sources = _fake_checkout(tmp_path)
    folder = tmp_path / "results"
    folder.mkdir()
    for rec in [_record("b", 1, "Table 10", ["reproduced", "deviates"], sources),
                _record("a", 1, "Table 2", ["reproduced", "not run", "not run"], sources)]:
        (folder / f"{rec['notebook']}.json").write_text(json.dumps(rec))
    assert [r["notebook"] for r in load_records(folder)] == ["a", "b"]  # by name
    records = load_records(folder, order=["b", "a"])
    assert [r["target"] for r in records] == ["Table 10", "Table 2"]  # in the order of the book
    table = counts(records, stale_by_notebook(records, tmp_path))
    assert table.loc["all", ["reproduced", "deviates", "not run", "notebooks", "stale records"]].tolist() \
        == [2, 1, 2, 2, 0]
    (tmp_path / "psnn_lib" / "ps" / "fit.py").write_text("changed\n")
    assert counts(records, stale_by_notebook(records, tmp_path)).loc["all", "stale records"] == 2
    nb = claims_notebook(records, tmp_path, BuildInfo(None, False, "smoke", None, False))
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "This record is stale: psnn_lib/ps/fit.py changed" in text and "{doc}`notebooks/a`" in text
    html = [c.outputs[0]["data"]["text/html"] for c in nb.cells if c.cell_type == "code"]
    assert len(html) == 3 and all("<table" in h for h in html)
    (folder / "old.json").write_text(json.dumps({"notebook": "old", "results": []}))
    with pytest.raises(ValueError, match="old.json names no notebook, paper and target"):
        load_records(folder)


def test_a_reader_downloads_no_local_traces(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", metadata={"papermill": {"duration": 1}})])
    nb.metadata["papermill"] = {"input_path": f"{tmp_path}/notebooks/nb.ipynb"}
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=f"{tmp_path}/psnn_lib/a.py:1: UserWarning: 11% clipped\n"),
        nbformat.v4.new_output("stream", name="stderr", text=f"{Path.home()}/.pyenv/tqdm/auto.py:2: TqdmWarning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="result 1\n")]
    out = without_local_traces(nb, tmp_path)
    assert "papermill" not in nbformat.writes(out)
    assert [o.text for o in out.cells[0].outputs] == ["psnn_lib/a.py:1: UserWarning: 11% clipped\n",
                                                      "~/.pyenv/tqdm/auto.py:2: TqdmWarning\n", "result 1\n"]


def test_injected_parameters_merge_into_the_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "default"\nK = 16', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nprofile = "smoke"\n', metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(profile)")])
    out = merge_injected_parameters(nb, "smoke")
    assert out.cells[0].source.startswith('profile = "smoke"\nK = 16\n# the \'smoke\' profile replaces')
    assert [c.source for c in out.cells[1:]] == ["print(profile)"]
    nb.cells.insert(1, nbformat.v4.new_code_cell("other = 1", metadata={"tags": ["injected-parameters"]}))
    with pytest.raises(SiteFailed, match="injected 'other'"):
        merge_injected_parameters(nb, "default")


def test_html_check_finds_what_a_reader_must_not_see(tmp_path):
    clean = "<html><head><script src='_static/x.js'></script></head><body><table><tr><td>1</td></tr></table>" \
            "<p>x | y</p></body></html>"
    assert check_page(clean) == []
    assert "raw Markdown table" in check_page("<p>| a | b |\n|---|---|\n| 1 | 2 |</p>")[0]
    assert "local path" in check_page("<pre>PosixPath('/x/results/a.json')</pre>")[0]
    assert "local path" in check_page("<p>see /tmp/abc</p>")[0]
    assert check_page("<p>/home/me/book</p>", forbidden=["/home/me"]) == ["local path '/home/me'"]
    assert "network" in check_page('<script src="https://cdn.example/mathjax.js"></script>')[0]
    assert "network" in check_page('<link rel="stylesheet" href="//fonts.example/a.css">')[0]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.html").write_text("<p>|---|---|</p>")
    (tmp_path / "ok.html").write_text(clean)
    (tmp_path / "sub" / "ok.ipynb").write_text('{"cells": [{"source": "| a |\\n|---|"}]}')  # a table is fine there
    (tmp_path / "sub" / "nb.ipynb").write_text('{"metadata": {"papermill": {"input_path": "/tmp/x/nb.ipynb"}}}')
    image = {"cells": [{"outputs": [{"data": {"image/png": "AAAA/rootBBBB", "text/plain": "<Figure>"}}]}]}
    (tmp_path / "sub" / "img.ipynb").write_text(json.dumps(image))  # base64 spelling /root by chance
    found = check_html(tmp_path, forbidden=["/root"])
    assert len(found) == 2 and found[0].startswith("sub/p.html: raw Markdown table")
    assert found[1].startswith("sub/nb.ipynb: local path")


def test_installed_library_converts_from_any_folder(tmp_path):
    """A non-editable install (no checkout on the path) fits, converts with every
    method and reads the FS table that ships inside the package."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    script = textwrap.dedent("""
        import pathlib, torch
        from torch import nn
        import psnn_lib
        from psnn_lib import PSNeuron, convert, fit_ps
        assert pathlib.Path(psnn_lib.__file__).is_relative_to(pathlib.Path.cwd().parent / "site")
        neuron = PSNeuron(fit_ps("gelu", -4, 4, dy=0.01))
        x = torch.linspace(-4, 4, 101)
        assert float((neuron(x) - torch.nn.functional.gelu(x)).abs().max()) < 0.02
        torch.manual_seed(0)
        data = torch.randn(64, 8)
        for method, act, opts in [("ps", nn.GELU(), {"K": 12}), ("fs", nn.GELU(), {"K": 16}),
                                  ("rate", nn.ReLU(), {"T": 64})]:
            model = nn.Sequential(nn.Linear(8, 16), act, nn.Linear(16, 4)).eval()
            snn, report = convert(model, method, calibration=data, progress=False, **opts)
            err = float((snn(data) - model(data)).abs().max())
            assert len(report.rows) == 1 and err < 0.5, (method, err)
            print(method, round(err, 4))
    """)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSNN_")}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[::2] == ["ps", "fs", "rate"]
