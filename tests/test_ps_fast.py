"""The PS neuron's fast path three ways, one result: the compiled pass (psnn_lib.kernels.ps_fast),
its torch twin and the time-stepped simulator (compiled, psnn_lib.kernels.ps_steps, and its torch
twin) give the same output bits and the same counts on adversarial inputs, in every dtype, on 1 and 2 threads, also under ATEN_CPU_CAPABILITY=default;
and the kernel's build: off, no compiler, a damaged library."""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from psnn_lib import PSNeuron, fit_ps
from psnn_lib.kernels import build, ps_fast, ps_steps

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module")
def params():
    return fit_ps("gelu", -3.0, 3.0, step=1e-3, K=12)


def _adversarial(p, dtype: torch.dtype) -> torch.Tensor:
    """Every grid point and every cell boundary of the grid (in float64), each 1 and 2 ulps of
    ``dtype`` either side, inputs beyond either end, +-inf, NaN, +-0 and subnormals, uniform ones."""
    j = torch.arange(p.points + 1, dtype=torch.float64)
    marks = torch.cat([p.l + j * p.delta, p.l + (j - 0.5) * p.delta]).to(dtype)
    near = [marks]
    for direction in (1.0, -1.0):
        step = marks
        for _ in range(2):
            step = torch.nextafter(step, step + direction)
            near.append(step)
    tiny = torch.finfo(dtype).tiny
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, tiny, -tiny, tiny / 4,
                            p.l - 1, p.r + 1, p.l - p.delta, p.r + p.delta, 1e30, -1e30], dtype=torch.float64)
    torch.manual_seed(1)
    x = torch.cat([*near, special.to(dtype), (torch.rand(40000, dtype=torch.float64) * 8 - 4).to(dtype)])
    return x[torch.randperm(len(x))]


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (the sign of zero too), NaN where NaN (whose payload torch's vectorised
    and scalar conversions to bfloat16 write differently)."""
    def bits(t: torch.Tensor) -> torch.Tensor:
        return t.masked_fill(t.isnan(), 0).contiguous().view(-1).view(torch.uint8)
    return a.dtype == b.dtype and torch.equal(a.isnan(), b.isnan()) and torch.equal(bits(a), bits(b))


def _run(neuron: PSNeuron, how: str, x: torch.Tensor):
    """The fast path compiled or its twin, or the stepped simulator (compiled where available)."""
    out = {"compiled": neuron._fast_compiled, "twin": neuron._fast_torch, "stepped": neuron}[how](x)
    s = neuron.stats
    return out, (s.neurons, s.spikes, s.clipped)


# skipped only where there is no C compiler or the kernels are turned off: a kernel that fails to
# build fails these tests
pytestmark = pytest.mark.skipif(shutil.which(build.paths.c_compiler()) is None
                                or build.paths.kernels_setting() == "off", reason="no compiled kernels here")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_twin_and_stepped_agree_bit_for_bit(params, dtype, threads, monkeypatch):
    x = _adversarial(params, dtype)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        compiled = _run(PSNeuron(params), "compiled", x)
        twin = _run(PSNeuron(params), "twin", x)
        stepped = _run(PSNeuron(params, "stepped"), "stepped", x)
        strided = _run(PSNeuron(params), "compiled", torch.stack([x, x], 1)[:, 0])  # not contiguous
        monkeypatch.setattr(ps_steps, "available", lambda: False)
        stepped_twin = _run(PSNeuron(params, "stepped"), "stepped", x)
    finally:
        torch.set_num_threads(old)
    assert not torch.stack([x, x], 1)[:, 0].is_contiguous()
    for other in (twin, stepped, strided, stepped_twin):
        assert _same(compiled[0], other[0]) and compiled[1] == other[1]
    neurons, spikes, clipped = compiled[1]
    assert neurons == x.numel() and spikes > 0 and clipped > 0 and compiled[0].isnan().sum() == 1


def test_the_compiled_steps_trace_is_the_twins_step_for_step(params, monkeypatch):
    """simulate(record=True): every step's membranes, spikes and outputs, compiled and twin, equal
    bit for bit (NaN membranes where the input is NaN)."""
    x = _adversarial(params, torch.float32)
    compiled = PSNeuron(params, "stepped").simulate(x, record=True)
    monkeypatch.setattr(ps_steps, "available", lambda: False)
    twin = PSNeuron(params, "stepped").simulate(x, record=True)
    assert compiled.spikes.shape == (params.K, *x.shape) and compiled.spikes.any()
    for got, want in zip(vars(twin).values(), vars(compiled).values()):
        assert _same(got, want)


def test_bad_arguments_to_the_steps_kernel_are_errors():
    T = d = torch.ones(3, dtype=torch.float64)
    h, index, nan = torch.ones(3, 4, dtype=torch.float64), torch.tensor([0, 5], dtype=torch.int32), torch.ones(2) > 0
    with pytest.raises(ValueError, match="h as a contiguous torch.float64 CPU tensor"):
        ps_steps.ps_steps(index, nan, h.float(), T, d, False)
    with pytest.raises(ValueError, match="T as a contiguous torch.float64 CPU tensor of 3 entries"):
        ps_steps.ps_steps(index, nan, h, T[:2], d, False)
    with pytest.raises(ValueError, match="index as a contiguous torch.int32"):
        ps_steps.ps_steps(index.long(), nan, h, T, d, False)
    with pytest.raises(ValueError, match="nan as a contiguous torch.bool CPU tensor of 2 entries"):
        ps_steps.ps_steps(index, nan[:1], h, T, d, False)
    with pytest.raises(ValueError, match="outside the padded grid 0..5"):
        ps_steps.ps_steps(index + 1, nan, h, T, d, False)
    for empty in (torch.ones(3, 0, dtype=torch.float64), torch.ones(0, 4, dtype=torch.float64), h[0]):
        with pytest.raises(ValueError, match="K x G table with K, G >= 1"):
            ps_steps.ps_steps(index, nan, empty, T, d, False)


@pytest.mark.parametrize("record", [False, True])
def test_the_steps_kernel_is_its_twin_on_any_reset_table(params, record):
    """On a random reset table (a membrane that does not spike keeps its value, which a fitted
    table's reset to the same value would hide) the kernel and the twin agree bit for bit."""
    neuron = PSNeuron(params, "stepped")
    at = neuron._snap(_adversarial(params, torch.float64), reuse=False)
    T = params.T[torch.isfinite(params.T)]
    torch.manual_seed(2)
    h = torch.empty(params.K, params.points, dtype=torch.float64).uniform_(float(T.min()) - 1, float(T.max()) + 1)
    compiled = ps_steps.ps_steps(at.index, at.nan, h, params.T, params.d, record)
    twin = neuron._steps_torch(at, h, record)
    assert compiled.z.any() and not compiled.z.all()
    for got, want in zip(twin, compiled):
        assert _same(got, want) if torch.is_tensor(want) else got == want


def test_the_scalar_loop_alone_is_the_vector_loop(params, tmp_path, monkeypatch):
    """The kernel built without AVX2 (its scalar loop for every input, as on other machines)
    gives the same bits and counts as the build in use."""
    lib = tmp_path / "scalar.so"
    subprocess.run([build.paths.c_compiler(), *build.FLAGS, "-mno-avx2", str(Path(build.__file__).parent / "ps_fast.c"),
                    "-o", str(lib)], check=True)
    in_use = ps_fast._functions()
    scalar = ctypes.CDLL(str(lib))
    functions = {torch.float32: scalar.psnn_ps_fast_f32, torch.float64: scalar.psnn_ps_fast_f64}
    for dtype, f in functions.items():
        f.argtypes, f.restype = in_use[dtype].argtypes, None
    for dtype in functions:
        x = _adversarial(params, dtype)
        want = _run(PSNeuron(params), "compiled", x)
        with monkeypatch.context() as m:
            m.setattr(ps_fast, "_functions", lambda: functions)
            got = _run(PSNeuron(params), "compiled", x)
        assert _same(want[0], got[0]) and want[1] == got[1]


def test_the_twin_keeps_its_counts_on_the_device_until_they_are_read(params):
    """No count is read back while the twin runs (on a GPU: no wait for it); reading ``stats``
    folds them in."""
    n = PSNeuron(params)
    x = _adversarial(params, torch.float32)
    n._fast_torch(x)
    assert n._counts is not None and n._clipped is not None and n._stats.spikes == 0
    assert n.stats.spikes == _run(PSNeuron(params), "compiled", x)[1][1] > 0 and n._counts is None


SCRIPT = """
import sys, torch
n, x = torch.load(sys.argv[1], weights_only=False)
out = n._fast_torch(x)
torch.save((out, n.stats.spikes, n.stats.clipped), sys.argv[2])
"""


def test_the_twin_under_aten_default_is_the_compiled_pass(params, tmp_path):
    """The twin with ATen's scalar-rounded kernels (ATEN_CPU_CAPABILITY=default) gives the
    compiled pass's bits and counts."""
    x = _adversarial(params, torch.float32)
    torch.save((PSNeuron(params), x), tmp_path / "in.pt")  # its table made here (a fit depends on the CPU)
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")], env=env,
                   check=True)
    out, spikes, clipped = torch.load(tmp_path / "out.pt")
    compiled, (_, want_spikes, want_clipped) = _run(PSNeuron(params), "compiled", x)
    assert _same(out, compiled) and (spikes, clipped) == (want_spikes, want_clipped)


def test_kernels_off_no_compiler_and_a_damaged_library(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    build.load.cache_clear()
    try:
        monkeypatch.setenv("PSNN_KERNELS", "off")
        assert build.load("ps_fast") is None
        build.load.cache_clear()
        monkeypatch.setenv("PSNN_KERNELS", "sometimes")
        with pytest.raises(ValueError, match="PSNN_KERNELS must be 'on' or 'off'"):
            build.load("ps_fast")
        monkeypatch.setenv("PSNN_KERNELS", "on")
        build.load.cache_clear()
        monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
        with pytest.warns(RuntimeWarning, match="no C compiler .* using its torch twin"):
            assert build.load("ps_fast") is None
        monkeypatch.delenv("CC")
        build.load.cache_clear()
        target = build.library_path("ps_fast")
        target.parent.mkdir(parents=True)
        target.write_bytes(b"not a shared library")  # a damaged (truncated) build
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert build.load("ps_fast") is not None
        assert build.BUILD_SECONDS["ps_fast"] > 0 and target.read_bytes()[:4] == b"\x7fELF"
        good = target.read_bytes()
        # truncated, digest as built: loading it would crash the process. Written as a new file: this
        # process has the library mapped, and cutting that very file would crash it when it exits
        damaged = target.with_name("damaged")
        damaged.write_bytes(good[:6000])
        os.replace(damaged, target)
        build.load.cache_clear()
        build.BUILD_SECONDS.clear()
        assert build.load("ps_fast") is not None and target.read_bytes() == good and "ps_fast" in build.BUILD_SECONDS
    finally:
        build.load.cache_clear()


def test_a_library_without_the_kernel_functions_falls_back_with_a_warning(monkeypatch):
    libm = ctypes.CDLL("libm.so.6")
    monkeypatch.setattr(build, "load", lambda name: libm)
    for lookup, kernel in ((ps_fast._functions, ps_fast), (ps_steps._function, ps_steps)):
        lookup.cache_clear()
        try:
            with pytest.warns(RuntimeWarning, match="lacks its functions"):
                assert not kernel.available()
        finally:
            lookup.cache_clear()


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 40000])
def test_nan_inputs_are_counted_whichever_loop_takes_them(params, n):
    """Every NaN input is in the totals' NaN count (the vector loop and the scalar tail alike)."""
    neuron = PSNeuron(params)
    packed, out64 = (neuron._table(kind, torch.device("cpu")) for kind in ("packed", "out64"))
    for dtype in (torch.float32, torch.float64):
        x = torch.full((n,), float("nan"), dtype=dtype)
        out, totals = ps_fast.ps_fast(x, 1.0 / params.delta, 1.5, params.points + 1, packed,
                                      out64 if dtype == torch.float64 else None)
        assert totals == (0, 0, 0, n) and out.isnan().all()


def test_the_twin_runs_in_inference_mode_and_then_outside_it(params):
    """snap's reusable buffers made in inference mode are not written outside it."""
    n = PSNeuron(params)
    x = _adversarial(params, torch.float32)
    with torch.inference_mode():
        inside = n._fast_torch(x)
    with torch.no_grad():
        outside = n._fast_torch(x)
    assert _same(inside, outside) and n.stats.neurons == 2 * x.numel()


def test_bad_arguments_to_the_kernel_are_errors(params):
    n = PSNeuron(params)
    packed = n._table("packed", torch.device("cpu"))
    with pytest.raises(ValueError, match="contiguous float32 or float64 CPU tensor"):
        ps_fast.ps_fast(torch.ones(4, dtype=torch.float16), 1.0, 0.0, params.points + 1, packed)
    with pytest.raises(ValueError, match="last \\+ 1 entries"):
        ps_fast.ps_fast(torch.ones(4), 1.0, 0.0, params.points, packed)
    with pytest.raises(ValueError, match="float64 inputs need out64"):
        ps_fast.ps_fast(torch.ones(4, dtype=torch.float64), 1.0, 0.0, params.points + 1, packed)


def test_the_build_command_says_what_it_did(tmp_path, monkeypatch, capsys):
    """``python -m psnn_lib.kernels.build`` (run by make test and make book): built, cached, off."""
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    build.load.cache_clear()
    build.BUILD_SECONDS.clear()
    try:
        build.main()
        build.load.cache_clear()
        build.BUILD_SECONDS.clear()
        build.main()
        monkeypatch.setenv("PSNN_KERNELS", "off")
        build.main()
    finally:
        build.load.cache_clear()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    for name, built, cached, off in zip(["ps_fast", "ps_steps"], lines[:2], lines[2:4], lines[4:]):
        assert re.fullmatch(rf"kernel {name}: built in \d+\.\d\d s", built)
        assert cached == f"kernel {name}: built before (cached)" and "turned off (PSNN_KERNELS=off)" in off
