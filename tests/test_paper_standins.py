"""Every notebook's ``paper`` profile, run end to end on stand-ins (tests/paper_standins.py,
tests/standins_text.py): the code a GPU user runs first, with its sizes and epochs cut by the
notebooks' own parameters (``overrides``, ``paper_recipe``, ``allow_cpu``), on a CPU, offline.

It asserts that each notebook runs and records its claims at the paper profile; it asserts no
paper number (random data and weights). The stand-ins' paths reach the kernels as the notebooks'
parameters or as the variables the library documents (``PSNN_DATA``, ``TORCH_HOME``,
``PSNN_CACHE_DIR``); the only thing changed inside the kernels is torchvision's list of CIFAR
md5 sums (:func:`paper_standins.kernel_startup`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import paper_standins
from paper_standins import TINY_RECIPE
from psnn_lib.book.runner import notebook_sources, run_notebooks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """Every notebook at the paper profile on the stand-ins, two at a time: (records, seconds)."""
    tmp = tmp_path_factory.mktemp("paper-standins")
    with pytest.MonkeyPatch.context() as mp:  # the kernels inherit this process's environment
        for name, value in paper_standins.environment(tmp).items():
            mp.setenv(name, value)
        start = time.perf_counter()
        outcomes = run_notebooks(ROOT, "paper", out_dir=tmp / "executed", results_dir=tmp / "records", force=True,
                                 notebook_parameters=paper_standins.parameters(tmp), stream=False)
    seconds = {o.name: o.seconds for o in outcomes}
    print(f"paper profile on stand-ins: {time.perf_counter() - start:.0f} s; per notebook: {seconds}")
    return {p.stem: json.loads(p.read_text()) for p in (tmp / "records").glob("*.json")}, seconds


def test_every_paper_profile_runs_on_stand_ins_and_records_its_claims(paper_run):
    records, _ = paper_run
    assert set(records) == {s.stem for s in notebook_sources(ROOT)}
    for name, record in records.items():
        assert record["profile"] == "paper", name
        assert record["results"], f"{name} recorded no claim"
        assert all(c["status"] in ("reproduced", "deviates", "not run") for c in record["results"]), name


def test_the_stand_in_run_used_the_parameters_it_was_given(paper_run):
    records, _ = paper_run
    assert records["table1_cifar"]["parameters"]["epochs"] == 1
    assert records["table2_imagenet"]["parameters"]["networks"] == ["ResNet-34"]
    assert records["fig6_activations"]["parameters"]["activations"] == ["gelu"]
    assert records["p2_tables2_3_deep"]["parameters"]["paper_recipe"] == TINY_RECIPE
