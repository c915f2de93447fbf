"""Readings of Algorithm 1 (psnn_lib.paper1.readings) against values computed by hand."""
import math
import os
import subprocess
import sys

import pytest
import torch

from psnn_lib.activations import gelu
from psnn_lib.paper1 import readings as R

# f on arange(0, 1, 0.1): its minimum (index 2) is not a kept point at dy = 0.5
VALUES = [1.0, 0.2, 0.0, 0.3, 0.9, 1.5, 2.1, 2.7, 3.3, 3.9]


def table_function(x):
    return torch.tensor(VALUES, dtype=x.dtype)[torch.round(x * 10).long()]


def test_thinning_keeps_points_where_f_moved_by_dy():
    assert R.thin_grid(torch.tensor([0, 0.3, 0.6, 1.2, 1.25, 2.0]), 0.5).tolist() == [0, 2, 3, 5]
    assert R.thin_grid(torch.tensor(VALUES, dtype=torch.float64), 0.5).tolist() == [0, 1, 4, 5, 6, 7, 8, 9]


def test_snapping_to_the_nearest_or_the_next_kept_point():
    kept = torch.tensor([0, 2, 3, 5])
    assert R.snap_to_kept(kept, 6, "nearest").tolist() == [0, 0, 2, 3, 3, 5]  # ties to the left
    assert R.snap_to_kept(kept, 6, "next").tolist() == [0, 2, 2, 3, 5, 5]


@pytest.mark.parametrize("thin, shift_from, b, output_at_min", [
    ("nearest", "full", 0.0, 0.0),  # index 2 snaps to index 1 (0.2): below every weight, output b
    ("next", "full", 0.0, 0.5),  # snaps to index 4 (0.9): 0.9 > d(3) = 0.5 spikes once
    ("nearest", "kept", 0.2, 0.2),  # b = min of the kept values
    ("next", "kept", 0.2, 0.7),  # 0.9 - 0.2 = 0.7 > 0.5
])
def test_b_and_M_before_or_after_thinning(thin, shift_from, b, output_at_min):
    reading = R.Reading("code", first_weight="paper", thin=thin, shift_from=shift_from)
    fit = R.fit_reading(reading, table_function, 0.0, 1.0, 0.5, 0.1)
    p = fit.params
    assert p.b == pytest.approx(b) and p.s == -1 and p.K == 3  # M = 3.9 or 3.7: ceil(log2 M) = 2
    assert p.d.tolist() == [2.0, 1.0, 0.5]
    assert float(p.output[2]) == pytest.approx(output_at_min)
    assert fit.target.tolist() == pytest.approx(VALUES)


def test_gelu_iteration_1_with_b_before_or_after_thinning():
    """Iteration 1 of the code's first weight is b alone, so its MSE is mean (f - b)^2: with b
    from the full grid, min f; with b from the kept points of the column's coarse thinning
    (dy = 8), f(-10) ~ 0 (the issue's 17.51 against 16.64)."""
    x = torch.arange(-10, 10, 1e-3, dtype=torch.float64)
    f = gelu(x)
    full = float(((f - f.min()) ** 2).mean())
    kept = float(((f - f[0]) ** 2).mean())
    assert full == pytest.approx(17.5108, abs=5e-5) and kept == pytest.approx(16.64, abs=0.01)
    for shift_from, expected in (("full", full), ("kept", kept)):
        reading = R.Reading("code", first_weight="code", thin="nearest", shift_from=shift_from, per_column=True)
        mse, _ = R.iteration_mse(reading, "gelu", -10, 10, 1e-3, 1e-3, iterations=1)
        assert mse[0] == pytest.approx(expected, rel=1e-9)


def test_float32_sampling_changes_the_values_fitted():
    s32, s64 = R.sampled("gelu", -10, 10, 1e-3, "float32"), R.sampled("gelu", -10, 10, 1e-3, "float64")
    (x32, y32), (x64, y64) = (s32.x, s32.y), (s64.x, s64.y)
    assert x32.dtype == torch.float32 and y32.dtype == y64.dtype == torch.float64 and x32.numel() == x64.numel()
    assert 0 < float((y32 - y64).abs().max()) < 1e-5


SAMPLING_SCRIPT = """
import sys, torch
from psnn_lib.paper1 import readings as R
torch.set_num_threads(1)
s = R.sampled("mish", -10, 10, 1e-3, "float32")
torch.save((s.x, s.y), sys.argv[1])
"""


def test_float32_samples_are_float64_values_rounded_once_the_same_on_every_cpu(tmp_path):
    """The definition: samples l + i step and f in float64, each rounded once to float32; ATen's
    scalar kernels (ATEN_CPU_CAPABILITY=default, one thread) give the same bits. torch's own
    float32 kernels (``sampling="torch"``) are kept for comparison."""
    from psnn_lib.activations import resolve_activation

    f = resolve_activation("mish")[1]
    s = R.sampled("mish", -10, 10, 1e-3, "float32")
    grid = torch.arange(20000, dtype=torch.float64) * 1e-3 - 10
    assert torch.equal(s.grid, grid) and torch.equal(s.x, grid.float())
    assert torch.equal(s.y, f(s.x.double()).float().double())
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    subprocess.run([sys.executable, "-c", SAMPLING_SCRIPT, str(tmp_path / "s.pt")], env=env, check=True)
    x, y = torch.load(tmp_path / "s.pt")
    assert torch.equal(x, s.x) and torch.equal(y, s.y)
    kernels = R.sampled("mish", -10, 10, 1e-3, "float32", sampling="torch")
    x32 = torch.arange(-10, 10, 1e-3, dtype=torch.float32)
    assert torch.equal(kernels.x, x32) and torch.equal(kernels.y, f(x32).double())
    with pytest.raises(ValueError, match="sampling must be one of"):
        R.sampled("mish", -10, 10, 1e-3, "float32", sampling="numpy")


def test_line_25_taken_literally_makes_the_error_grow():
    mse, _ = R.iteration_mse(R.LITERAL, "gelu", -10, 10, 1e-3, 1e-3)
    printed, _ = R.iteration_mse(R.PRINTED, "gelu", -10, 10, 1e-3, 1e-3)
    assert mse[0] == pytest.approx(38.76, abs=0.01) and mse[-1] == pytest.approx(186.4, abs=0.1)
    assert all(b > a for a, b in zip(mse, mse[1:]))
    assert all(b < a for a, b in zip(printed, printed[1:])) and printed[0] == pytest.approx(8.6874, abs=1e-4)


def test_lattice_bound_by_hand():
    assert R.lattice_bound(torch.tensor([0.1, 0.9, 1.6], dtype=torch.float64), 0.0, 1.0) == pytest.approx(0.06)
    assert R.lattice_bound(torch.tensor([1.5, 2.5], dtype=torch.float64), 0.5, 1.0) == 0.0


def test_bound_is_below_every_reading():
    for reading in (R.PRINTED, R.AUTHORS_CODE, R.Reading("code", "code", thin="next", per_column=True)):
        mse, bound = R.iteration_mse(reading, "silu", -10, 10, 1e-3, 1e-2)
        assert all(b <= m * (1 + 1e-12) for m, b in zip(mse, bound)), reading.label


def test_the_matrix_is_every_combination():
    assert len(R.READINGS) == len(set(R.READINGS)) == 44
    assert len({rd.label for rd in R.READINGS}) == 44
    assert sum(rd.source == "algorithm" for rd in R.READINGS) == 4
    assert R.AUTHORS_CODE in R.READINGS and R.LITERAL in R.READINGS and R.PRINTED in R.READINGS
    with pytest.raises(ValueError, match="Reading.thin"):
        R.Reading("code", thin="sideways")
    with pytest.raises(ValueError, match="Reading.source"):
        R.Reading("paper")
    with pytest.raises(ValueError, match="max f > 0"):
        R.fit_reading(R.LITERAL, lambda x: -x.abs() - 1, -1, 1, 0.01, 0.01)
    assert math.isinf(R.fit_reading(R.AUTHORS_CODE, "sigmoid", -10, 10, 0.01, 1e-2).params.T[0])


def test_each_source_has_only_its_own_variants():
    for bad in (dict(source="algorithm", thin="nearest"), dict(source="algorithm", precision="float32"),
                dict(source="algorithm", per_column=True), dict(source="algorithm", first_weight="code"),
                dict(source="code", threshold="line25"), dict(source="code", range_from="unshifted"),
                dict(source="code", shift_from="kept")):
        with pytest.raises(ValueError, match="no variant"):
            R.Reading(**bad)


def test_every_column_fit_has_k_equal_to_its_column():
    """With b and M from the kept points a coarse thinning can shrink M (Hardswish at t = 2,
    dy = 4 gives K = 1); the column fit then takes the next finer dy."""
    reading = R.Reading("code", "code", thin="nearest", shift_from="kept", per_column=True)
    assert R.fit_reading(reading, "hardswish", -10, 10, 4.0, 1e-3).params.K == 1
    assert R.fit_reading(reading, "hardswish", -10, 10, 2.0, 1e-3).params.K == 3  # no dy gives K = 2
    assert R.column_fit(reading, "hardswish", -10, 10, 2, 1e-3) is None
    assert math.isnan(R.iteration_mse(reading, "hardswish", -10, 10, 1e-3, 1e-3, iterations=2)[0][1])
    for t in (1, 3, 4, 9):
        assert R.column_fit(reading, "hardswish", -10, 10, t, 1e-3).params.K == t
    for t in range(1, 10):
        assert R.column_fit(R.Reading("code", "code", thin="nearest", per_column=True), "hardswish", -10, 10, t,
                            1e-3).params.K == t


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="dy must be > 0"):
        R.fit_reading(R.PRINTED, "gelu", -1, 1, 0.0, 1e-2)
    with pytest.raises(ValueError, match="finite"):
        R.fit_reading(R.PRINTED, "gelu", -1, 1, float("nan"), 1e-2)
    with pytest.raises(ValueError, match="two samples"):
        R.fit_reading(R.PRINTED, "gelu", 1, -1, 0.1, 1e-2)
    with pytest.raises(ValueError, match="two samples"):
        R.fit_reading(R.PRINTED, "gelu", 0, 0.005, 0.1, 1e-2)
    with pytest.raises(ValueError, match="constant"):
        R.column_fit(R.Reading("code", per_column=True), lambda x: 0 * x + 1, -1, 1, 2, 1e-2)
    with pytest.raises(ValueError, match="iterations"):
        R.iteration_mse(R.PRINTED, "gelu", -1, 1, 0.1, 1e-2, iterations=0)
    with pytest.raises(ValueError, match="weight"):
        R.lattice_bound(torch.zeros(3, dtype=torch.float64), 0.0, 0.0)


def test_table5_of_a_subset_of_rows():
    from psnn_lib.paper1 import fitting

    table = fitting.table5(-10, 10, 1e-3, 1e-2, readings=[R.PRINTED, R.AUTHORS_CODE], activations=["GELU"])
    assert table.activations == ["GELU"] and len(table.mse) == 2
    assert list(fitting.unreachable_frame(table).index.get_level_values(0).unique()) == ["GELU"]
    assert fitting.table5_frame(table, table.best()).shape == (3, 9)
    with pytest.raises(ValueError, match="Table 5 has rows"):
        fitting.table5(-10, 10, 1e-3, 1e-2, activations=["ReLU"])


def test_committed_default_record_of_table5():
    """The published Table 5 (the default record, which tests/test_book.py keeps fresh)."""
    import json
    from pathlib import Path

    from psnn_lib.paper1.numbers import TABLE5

    rec = json.loads((Path(__file__).resolve().parents[1] / "results" / "fig5_table5_mse.json").read_text())
    status = {r["name"]: r["status"] for r in rec["results"]}
    best = rec["extra"]["best reading"]
    assert best == R.Reading("code", "code", thin="nearest", precision="float32", per_column=True).label
    assert rec["extra"]["cells reproduced per reading"][best] == rec["summary"]["reproduced"] == 17
    assert all(status[f"{a} iteration 1"] == "reproduced" for a in TABLE5)
    assert all(status[f"Hardsigmoid iteration {t}"] == "reproduced" for t in range(1, 10))


def test_odd_intervals_and_columns_are_refused():
    with pytest.raises(ValueError, match="at least two samples"):
        R.fit_reading(R.PRINTED, "gelu", 0, 0.001, 0.01, 0.001)  # arange gives one sample
    with pytest.raises(ValueError, match="drift"):
        R.fit_reading(R.AUTHORS_CODE, "gelu", 1e4, 1e4 + 10, 0.01, 1e-3)  # float32 far from 0
    for t in (0, -3, True):
        with pytest.raises(ValueError, match="positive int"):
            R.column_fit(R.AUTHORS_CODE, "gelu", -1, 1, t, 1e-2)
    with pytest.raises(ValueError, match="per_column"):
        R.Reading("code", per_column=1)
