import os

import nbformat
import pytest

from psnn_lib.book import runner
from psnn_lib.book.runner import NotebookFailed, run_notebooks

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _project(tmp_path, body):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: x\n")
    (tmp_path / "notebooks" / "nb.md").write_text(HEADER + body)
    return tmp_path


def _cell(src, tags=""):
    meta = f":tags: [{tags}]\n\n" if tags else ""
    return f"\n```{{code-cell}} ipython3\n{meta}{src}\n```\n"


def test_failing_notebook_names_itself_and_the_cell(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"', "parameters") + _cell("x = 1")
                    + _cell("raise RuntimeError('boom')"))
    with pytest.raises(NotebookFailed, match=r"nb.md failed in cell .*RuntimeError: boom"):
        run_notebooks(root, "smoke")
    # the execution log CI uploads: the failing cell and its traceback, as plain text
    log = (root / "_build" / "executed" / "smoke" / "nb.log").read_text()
    assert "The cell:\nraise RuntimeError('boom')\n" in log and "Traceback" in log and "\x1b[" not in log
    (root / "notebooks" / "nb.md").write_text((root / "notebooks" / "nb.md").read_text().replace("raise RuntimeError('boom')", "y = 2"))
    run_notebooks(root, "smoke")
    assert not (root / "_build" / "executed" / "smoke" / "nb.log").exists()  # a log only for a failure


def test_needs_exactly_one_parameters_cell(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"'))
    with pytest.raises(NotebookFailed, match="exactly one cell tagged 'parameters'"):
        run_notebooks(root, "smoke")


def test_profile_is_injected_and_unchanged_notebook_is_cached(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("open('seen.txt', 'a').write(profile + '\\n')"))
    assert [o.status for o in run_notebooks(root, "smoke")] == ["executed"]
    assert [o.status for o in run_notebooks(root, "smoke")] == ["cached"]
    assert [o.status for o in run_notebooks(root, "smoke", force=True)] == ["executed"]
    assert (root / "notebooks" / "seen.txt").read_text() == "smoke\nsmoke\n"
    with pytest.raises(ValueError, match="no notebook named other"):
        run_notebooks(root, "smoke", only=["other"])


def test_runner_restores_the_callers_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PSNN_RESULTS_DIR", raising=False)
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("import os; open('env.txt', 'w').write(os.environ['PSNN_RESULTS_DIR'])"))
    run_notebooks(root, "smoke", results_dir=tmp_path / "res")
    assert (root / "notebooks" / "env.txt").read_text() == str(tmp_path / "res")
    assert "PSNN_RESULTS_DIR" not in os.environ


def test_kernels_run_without_progress_bars(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("from psnn_lib.progress import progress_bar\n"
                            "list(progress_bar(range(3), desc='work'))\n"
                            "import os; open('env.txt', 'w').write(os.environ.get('TQDM_DISABLE', ''))"))
    (outcome,) = run_notebooks(root, "smoke")
    assert (root / "notebooks" / "env.txt").read_text() == "1"
    outputs = [o for c in nbformat.read(outcome.output, as_version=4).cells for o in c.get("outputs", [])]
    assert not any("work" in o.get("text", "") for o in outputs)  # no bar in the executed notebook


def test_a_cell_past_the_timeout_stops_the_run(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"', "parameters") + _cell("import time; time.sleep(30)"))
    with pytest.raises(NotebookFailed, match="nb.md: a cell ran longer than 2 s"):
        run_notebooks(root, "smoke", cell_timeout=2)
    assert "time.sleep(30)" in (root / "_build" / "executed" / "smoke" / "nb.log").read_text()


def test_notebooks_run_jobs_at_a_time_with_a_share_of_the_cores(tmp_path, monkeypatch):
    """Two notebooks with jobs=2 overlap in time (each waits to see the other start), each
    kernel with OMP_NUM_THREADS = cores // jobs; they come back in source order."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runner, "available_cores", lambda: 4)
    root = _project(tmp_path, "")
    (root / "notebooks" / "nb.md").unlink()
    for me, other in [("a", "b"), ("b", "a")]:
        (root / "notebooks" / f"{me}.md").write_text(HEADER + _cell('profile = "default"', "parameters") + _cell(
            "import os, time, pathlib\n"
            f"pathlib.Path('{me}.started').touch()\n"
            f"for _ in range(600):\n    time.sleep(0.1)\n    if pathlib.Path('{other}.started').exists(): break\n"
            f"else:\n    raise RuntimeError('ran alone')\n"
            f"open('{me}.threads', 'w').write(os.environ['OMP_NUM_THREADS'])"))
    # the kernels start in notebooks/ without the runner changing this process's folder
    monkeypatch.chdir(tmp_path)
    assert [o.name for o in run_notebooks(root, "smoke", jobs=2)] == ["a", "b"]
    assert os.getcwd() == str(tmp_path)
    assert (root / "notebooks" / "a.threads").read_text() == (root / "notebooks" / "b.threads").read_text() == "2"
    with pytest.raises(ValueError, match="jobs must be a whole number >= 1"):
        run_notebooks(root, "smoke", jobs=0)


def test_a_failing_notebook_stops_the_others_from_starting(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"', "parameters") + _cell("raise RuntimeError('boom')"))
    (root / "notebooks" / "z.md").write_text(HEADER + _cell('profile = "default"', "parameters")
                                             + _cell("open('z.ran', 'w').write('yes')"))
    with pytest.raises(NotebookFailed, match="nb.md failed"):
        run_notebooks(root, "smoke", jobs=1)
    assert not (root / "notebooks" / "z.ran").exists()
    cache = (root / "_build" / "executed" / "smoke" / ".psnn-cache.json").read_text()
    assert "nb" not in cache and "z" not in cache


def test_one_notebook_to_run_gets_all_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runner, "available_cores", lambda: 4)
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("import os\nopen('nb.threads', 'w').write(os.environ['OMP_NUM_THREADS'])"))
    run_notebooks(root, "smoke", jobs=2)
    assert (root / "notebooks" / "nb.threads").read_text() == "4"


def test_every_failure_is_named_and_what_succeeded_is_cached(tmp_path, monkeypatch):
    """Two notebooks fail at once (one in a cell, one whose kernel could not run at all: any
    exception, named with its notebook) beside one that succeeds."""
    root = _project(tmp_path, _cell('profile = "default"', "parameters") + _cell("raise RuntimeError('boom')"))
    for name in ("dead", "ok"):
        (root / "notebooks" / f"{name}.md").write_text(HEADER + _cell('profile = "default"', "parameters"))
    execute = runner._execute

    def dying(src, *args):
        if src.stem == "dead":
            raise OSError("kernel died")
        return execute(src, *args)

    monkeypatch.setattr(runner, "_execute", dying)
    with pytest.raises(NotebookFailed) as failed:
        run_notebooks(root, "smoke", jobs=3)
    assert "nb.md failed" in str(failed.value) and "dead.md did not run: OSError: kernel died" in str(failed.value)
    cache = (root / "_build" / "executed" / "smoke" / ".psnn-cache.json").read_text()
    assert '"ok"' in cache and '"nb"' not in cache and '"dead"' not in cache


def test_parameters_are_injected_checked_and_part_of_the_cache_key(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"\nepochs = 200\nsize: int = 3', "parameters")
                    + _cell("open('seen.txt', 'a').write(f'{epochs} {size}\\n')"))
    assert [o.status for o in run_notebooks(root, "paper", parameters={"epochs": 1}, stream=False)] == ["executed"]
    assert [o.status for o in run_notebooks(root, "paper", parameters={"epochs": 1}, stream=False)] == ["cached"]
    assert [o.status for o in run_notebooks(root, "paper", parameters={"epochs": 2, "size": 5},
                                            stream=False)] == ["executed"]
    assert (root / "notebooks" / "seen.txt").read_text() == "1 3\n2 5\n"
    with pytest.raises(ValueError, match="no notebook of this run has a parameter 'epoch'"):
        run_notebooks(root, "paper", parameters={"epoch": 1}, stream=False)
    with pytest.raises(ValueError, match=r"nb has no parameter epoch \(its parameters: epochs, profile, size"):
        run_notebooks(root, "paper", notebook_parameters={"nb": {"epoch": 1}}, stream=False)
    with pytest.raises(ValueError, match="set by the profile argument"):
        run_notebooks(root, "paper", parameters={"profile": "smoke"})


def test_the_cell_timeout_is_per_profile_and_none_at_paper(tmp_path, monkeypatch):
    """The paper profile's trainings run for hours: no cell limit there, unless the caller sets one."""
    import papermill

    seen = []
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: seen.append(k["execution_timeout"]) or open(a[1], "w").write("{}"))
    root = _project(tmp_path, _cell('profile = "default"', "parameters"))
    for profile in ("smoke", "default", "paper"):
        run_notebooks(root, profile, force=True, stream=False)
    run_notebooks(root, "paper", force=True, cell_timeout=5, stream=False)
    assert seen == [runner.CELL_TIMEOUT["smoke"], runner.CELL_TIMEOUT["default"], None, 5]
    assert runner.CELL_TIMEOUT["paper"] is None and runner.CELL_TIMEOUT["default"] >= 1800


def test_the_paper_profile_streams_progress_to_the_terminal(tmp_path, capfd, monkeypatch):
    """At paper the kernels keep their progress bars and what they write comes to stderr as it
    comes, each line headed by the notebook's name; other profiles stay quiet."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("from psnn_lib.progress import progress_bar\n"
                            "list(progress_bar(range(3), desc='training'))\nprint('epoch 1 done')"))
    run_notebooks(root, "paper")
    err = capfd.readouterr().err
    assert "[nb] training: 100%" in err and "epoch 1 done" in err
    run_notebooks(root, "smoke")
    assert "training" not in capfd.readouterr().err


def test_the_callers_results_dir_variable_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_RESULTS_DIR", str(tmp_path / "mine"))
    root = _project(tmp_path, _cell('profile = "default"', "parameters")
                    + _cell("import os; open('env.txt', 'w').write(os.environ['PSNN_RESULTS_DIR'])"))
    run_notebooks(root, "smoke")
    assert (root / "notebooks" / "env.txt").read_text() == str(tmp_path / "mine")


def test_parameters_per_notebook(tmp_path):
    root = _project(tmp_path, _cell('profile = "default"\nepochs = 200', "parameters")
                    + _cell("open('nb.txt', 'w').write(str(epochs))"))
    (root / "notebooks" / "other.md").write_text(HEADER + _cell('profile = "default"\nepochs = 200', "parameters")
                                                 + _cell("open('other.txt', 'w').write(str(epochs))"))
    run_notebooks(root, "paper", parameters={"epochs": 3}, notebook_parameters={"nb": {"epochs": 1}}, stream=False)
    assert (root / "notebooks" / "nb.txt").read_text() == "1"
    assert (root / "notebooks" / "other.txt").read_text() == "3"
    with pytest.raises(ValueError, match="parameters for nope, which this run does not execute"):
        run_notebooks(root, "paper", notebook_parameters={"nope": {"epochs": 1}})
    with pytest.raises(ValueError, match="set by the profile argument"):
        run_notebooks(root, "paper", notebook_parameters={"nb": {"profile": "smoke"}})


def test_a_value_for_every_notebook_goes_to_those_that_have_it_and_is_checked_first(tmp_path, capsys):
    """`psnn book --profile paper --set allow_cpu=True` on the whole book: the notebooks without
    the parameter do not get it (a line says which did); a name none has, or a name a notebook
    given its own values lacks, stops the run before any kernel starts."""
    root = _project(tmp_path, _cell('profile = "default"\nallow_cpu = False', "parameters")
                    + _cell("open('nb.txt', 'w').write(str(allow_cpu))"))
    (root / "notebooks" / "plain.md").write_text(HEADER + _cell('profile = "default"', "parameters")
                                                 + _cell("open('plain.txt', 'w').write('ran')"))
    run_notebooks(root, "paper", parameters={"allow_cpu": True}, stream=False)
    assert (root / "notebooks" / "nb.txt").read_text() == "True"
    assert (root / "notebooks" / "plain.txt").read_text() == "ran"
    assert "allow_cpu = True: given to nb (the others have no such parameter)" in capsys.readouterr().err
    (root / "notebooks" / "plain.txt").unlink()
    with pytest.raises(ValueError, match="plain has no parameter allow_cpu"):
        run_notebooks(root, "paper", notebook_parameters={"plain": {"allow_cpu": True}}, force=True)
    assert not (root / "notebooks" / "plain.txt").exists()  # nothing ran


def test_streamed_lines_of_two_notebooks_do_not_run_into_each_other():
    import io

    out = io.StringIO()
    a, b = runner._Headed("a", out), runner._Headed("b", out)
    a.write("\rtraining:  50%")
    b.write("epoch 1 done\n")
    a.write("\rtraining: 100%\n")
    assert out.getvalue() == "\r[a] training:  50%\n[b] epoch 1 done\n\r[a] training: 100%\n"
