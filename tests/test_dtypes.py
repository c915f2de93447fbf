"""Every dtype: neurons compute in float64 and round once (psnn_lib.neurons.precision).

An input value gives the same spikes in float16, bfloat16, float32 and
float64; the output is the float32 result rounded to the input's dtype (for
float64, the result the float32 one is rounded from).
"""
import pytest
import torch
from torch import nn

from psnn_lib import PSNeuron, convert, fit_ps
from psnn_lib.activations import resolve_activation
from psnn_lib.neurons.fs import FSNeuron, load_table, lookup, relu_params
from psnn_lib.neurons.rate import IFNeuron

OTHER = [torch.float16, torch.bfloat16, torch.float64]


def values(n: int = 20_000, scale: float = 6.0) -> torch.Tensor:
    """Inputs exact in every dtype (bfloat16 values), across and beyond [-10, 10], and a NaN."""
    x = (torch.randn(n, generator=torch.Generator().manual_seed(0)) * scale).to(torch.bfloat16).float()
    x[7] = float("nan")
    return x


def same_as_float32(out: torch.Tensor, out32: torch.Tensor) -> bool:
    """``out`` (float16, bfloat16 or float64) is the float32 result ``out32`` in its dtype
    (float64: ``out32`` is ``out`` rounded once); NaN where ``out32`` is."""
    got, want = (out.float(), out32) if out.dtype == torch.float64 else (out, out32.to(out.dtype))
    return torch.allclose(got, want, rtol=0, atol=0, equal_nan=True)


def run(neuron: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    out = neuron(x)
    return out, neuron.stats.spikes, neuron.stats.clipped


@pytest.mark.parametrize("dtype", OTHER)
@pytest.mark.parametrize("mode", ["fast", "stepped"])
def test_ps_neuron_in_every_dtype(dtype, mode):
    p = fit_ps("gelu", -10, 10, 0.01, 1e-3)
    x = values()
    out32, spikes32, clipped32 = run(PSNeuron(p, "fast"), x)
    out, spikes, clipped = run(PSNeuron(p, mode), x.to(dtype))
    assert out.dtype == dtype and same_as_float32(out, out32)
    assert spikes == spikes32 > 0 and clipped == clipped32 > 0
    assert torch.equal(out.isnan(), x.isnan())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("width", [10, 40, 100])
def test_low_precision_error_is_fit_error_plus_one_rounding(dtype, width):
    """The issue's cases: bf16 off by 0.125 on [-10, 10] and 0.62 on [-40, 40]; fp16 overflow past ~65."""
    p = fit_ps("gelu", -width, width, step=width * 1e-4, K=16)
    x = values(50_000, width / 2).clamp(-width, width).nan_to_num(0.0).to(dtype)
    exact = resolve_activation("gelu")[1](x.double())
    out = PSNeuron(p)(x)
    rounding = torch.finfo(dtype).eps * exact.abs()  # one ulp of the dtype at the output
    assert bool(((out.double() - exact).abs() <= p.error_bound + rounding + 1e-12).all())
    seven = PSNeuron(fit_ps("gelu", -10, 10, 0.01, 1e-3))(torch.tensor([7.5], dtype=dtype))
    assert abs(float(seven) - 7.5) <= 0.01 + torch.finfo(dtype).eps * 7.5 / 2


@pytest.mark.parametrize("dtype", OTHER)
@pytest.mark.parametrize("params", [lookup(load_table(), "gelu", 16), relu_params(4.0, 8)])
def test_fs_neuron_in_every_dtype(dtype, params):
    x = values(scale=3.0)
    out32, spikes32, clipped32 = run(FSNeuron(params), x)
    out, spikes, clipped = run(FSNeuron(params), x.to(dtype))
    assert out.dtype == dtype and same_as_float32(out, out32)
    assert spikes == spikes32 > 0 and clipped == clipped32


@pytest.mark.parametrize("dtype", OTHER)
def test_if_neuron_in_every_dtype(dtype):
    x = values(scale=2.0).nan_to_num(0.0)
    ref, n = IFNeuron(threshold=2.3, time_steps=8), IFNeuron(threshold=2.3, time_steps=8)
    for _ in range(8):
        assert same_as_float32(n(x.to(dtype)), ref(x))
    assert n.stats.spikes == ref.stats.spikes > 0


def exact_model(activation: nn.Module) -> nn.Sequential:
    """Linear(16, 32) + activation whose linear outputs are exact in every dtype:
    weights in {-1, -1/2, 0, 1/2, 1} on integer inputs in [-3, 3] sum to halves below 48."""
    lin = nn.Linear(16, 32)
    with torch.no_grad():
        lin.weight.copy_(torch.randint(-2, 3, (32, 16), generator=torch.Generator().manual_seed(1)) / 2)
        lin.bias.zero_()
    return nn.Sequential(lin, activation)


@pytest.mark.parametrize("dtype", OTHER)
@pytest.mark.parametrize("method, activation, options", [
    ("ps", nn.GELU(), {}), ("ps", nn.GELU(), {"mode": "stepped"}), ("fs", nn.GELU(), {"K": 16}),
    ("rate", nn.ReLU(), {"T": 8}),
])
def test_converted_network_in_every_dtype(dtype, method, activation, options):
    gen = torch.Generator().manual_seed(2)
    calibration, x = (torch.randint(-3, 4, (n, 16), generator=gen).float() for n in (64, 256))
    model = exact_model(activation)
    snn32, _ = convert(model, method, calibration=calibration, progress=False, **options)
    snn, _ = convert(model.to(dtype), method, calibration=calibration.to(dtype), progress=False, **options)
    with torch.no_grad():
        out32, out = snn32(x), snn(x.to(dtype))
    assert out.dtype == dtype and same_as_float32(out, out32)
    spikes = [neuron.stats.spikes for neuron in snn.neurons.values()]
    assert spikes == [neuron.stats.spikes for neuron in snn32.neurons.values()] and sum(spikes) > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_mlp_converts(dtype):
    """The issue's reproduction: 'index out of range' in float16 and bfloat16."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 10))
    calibration = torch.randn(64, 16) * 3
    snn, _ = convert(model.to(dtype), "ps", calibration=calibration.to(dtype), progress=False)
    with torch.no_grad():
        out = snn(calibration[:8].to(dtype))
        ann = model(calibration[:8].to(dtype))
    assert out.dtype == dtype
    assert float((out.float() - ann.float()).abs().max()) < 0.1
