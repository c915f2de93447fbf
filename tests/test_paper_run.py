"""The paper profile's checks before hours of work: no GPU, no run, unless the reader says so."""
import re
import time
from pathlib import Path

import pytest
import torch

from psnn_lib.book.paper_run import ESTIMATES, NeedsGPU, run_device
from psnn_lib.book.runner import NotebookFailed, run_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
without_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="about a machine without a GPU")


@without_gpu
def test_without_a_gpu_the_paper_profile_stops_naming_the_hours():
    with pytest.raises(NeedsGPU, match=r"table1_cifar at the paper profile: 4 CIFAR networks.*about 3 hours on one "
                                       r"GPU and about 60 hours.*allow_cpu = True"):
        run_device("table1_cifar", "paper")
    assert run_device("table1_cifar", "paper", allow_cpu=True) == "cpu"
    assert run_device("table1_cifar", "default") == run_device("table1_cifar", "smoke") == "cpu"
    with pytest.raises(ValueError, match="unknown profile"):
        run_device("table1_cifar", "full")
    with pytest.raises(TypeError, match="allow_cpu must be True or False, got 'false'"):
        run_device("table1_cifar", "paper", allow_cpu="false")  # a truthy string never allows hours of CPU


def test_every_notebook_that_asks_for_a_device_has_an_estimate_and_the_parameter():
    """The estimates and the notebooks name the same notebooks, and each of them lets the reader
    allow the CPU in its parameters cell."""
    asking = {p.stem for p in NOTEBOOKS.glob("*.md") if "run_device(" in p.read_text()}
    assert asking == set(ESTIMATES)
    for name in asking:
        text = (NOTEBOOKS / f"{name}.md").read_text()
        assert re.search(rf'run_device\("{name}", profile, allow_cpu\)', text), name
        parameters = text.split(":tags: [parameters]")[1].split("```")[0]
        assert "allow_cpu = False" in parameters, name
    for cost in ESTIMATES.values():
        assert 0 < cost.gpu_hours < cost.cpu_hours and cost.disk_gb > 0


@without_gpu
def test_a_paper_notebook_without_a_gpu_stops_at_once(tmp_path):
    """Before it makes a single network (which would take hours on this CPU)."""
    start = time.perf_counter()
    with pytest.raises(NotebookFailed, match="p2_tables2_3_deep.md failed in cell .*NeedsGPU: .*allow_cpu = True"):
        run_notebooks(ROOT, "paper", only=["p2_tables2_3_deep"], out_dir=tmp_path / "executed",
                      results_dir=tmp_path / "records", stream=False)
    assert time.perf_counter() - start < 120
    assert not (tmp_path / "records").exists()  # no record


def test_the_readme_table_shows_the_estimates():
    """One set of numbers: the README's hours (one GPU) and disk per notebook are ESTIMATES'."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].count("`") == 2:
            rows[cells[0].strip("`")] = cells
    for name, cost in ESTIMATES.items():
        _, _, hours, disk = rows[name]
        assert float(hours) == cost.gpu_hours, name
        assert float(re.match(r"[\d.]+", disk)[0]) == cost.disk_gb, name
