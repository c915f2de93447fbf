"""The converter: finding activations, calibration, methods, simulators, stats."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P
from psnn_lib.neurons.fs import FSNeuron, relu_params
from psnn_lib.converter.registry import Method, Site
from psnn_lib.converter.report import AnalogOp
from psnn_lib.neurons.stats import SpikeStats
from psnn_lib.neurons.rate import IFNeuron


class Mixed(nn.Module):
    """Modules, functional calls, a method call, a reused module and a softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.gelu = nn.GELU()
        self.leaky = nn.LeakyReLU(0.1)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        x = self.gelu(self.conv(x))
        x = F.silu(x) + torch.sigmoid(x)
        x = self.leaky(x).relu()
        x = F.elu(self.leaky(x - 1), alpha=0.5)  # the LeakyReLU module a second time
        return F.softmax(self.fc(x.flatten(1)), dim=-1)


@pytest.fixture
def data():
    torch.manual_seed(0)
    return torch.randn(64, 2, 6, 6)


def test_every_activation_found_and_converted(data):
    model = Mixed().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cm, rep = P.convert(model, calibration=data.split(16), progress=False)
    acts = [r.activation for r in rep.rows]
    assert sorted(acts) == sorted(["gelu", "silu", "sigmoid", "leaky_relu:0.1", "relu", "leaky_relu:0.1",
                                   "function:elu(alpha=0.5)"])
    assert rep.traced and rep.unconverted == [] and rep.kept_analog == [AnalogOp("<Mixed, top level>", "softmax", "softmax", 1)]
    assert len({r.site for r in rep.rows}) == 7  # the reused module got two sites
    with torch.no_grad():
        assert (cm(data) - model(data)).abs().max() < 1e-3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input model untouched
    assert all(r.neurons == 4 * 36 and r.time_steps == 16 for r in rep.rows)


def test_fast_and_stepped_give_equal_logits_and_spikes(data):
    cm, _ = P.convert(Mixed().eval(), calibration=data, progress=False, K=8)
    with torch.no_grad():
        fast = cm(data)
        s_fast = cm.spike_stats()
        cm.reset_stats()
        stepped = cm.set_mode("stepped")(data)
        s_step = cm.spike_stats()
    assert torch.equal(fast, stepped)
    assert [r["spikes"] for r in s_fast.rows] == [r["spikes"] for r in s_step.rows]
    assert s_fast.spikes > 0 and s_fast.as_dict() == s_step.as_dict()


def test_spike_statistics_and_synops():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 2)).eval()
    x = torch.randn(10, 3)
    cm, _ = P.convert(model, calibration=x, progress=False, K=6)
    cm(x)
    st = cm.spike_stats()
    neuron = cm.neurons["_1"]
    assert st.neurons == 7 and st.time_steps == 6
    assert st.spikes == neuron.stats.spikes / 10
    assert st.fire_rate == pytest.approx((st.spikes / st.neurons + 1) / 6)  # Eq. 26
    assert st.synops == pytest.approx(st.spikes * 2)  # each spike drives the 2 outputs


def test_conv_fanout():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 6, 3, stride=2, padding=1)).eval()
    cm, _ = P.convert(model, calibration=torch.randn(4, 1, 8, 8), progress=False)
    assert cm.census.fanouts() == {"_1": 6 * 9 / 4}
    pooled = nn.Sequential(*model[:2], nn.MaxPool2d(2), model[2]).eval()  # one spike of four passes on
    cm, _ = P.convert(pooled, calibration=torch.randn(4, 1, 8, 8), progress=False)
    assert cm.census.fanouts() == {"_1": 6 * 9 / 4 / 4}
    averaged = nn.Sequential(*model[:2], nn.AvgPool2d(2), model[2]).eval()  # an average is graded: no spike on
    cm, _ = P.convert(averaged, calibration=torch.randn(4, 1, 8, 8), progress=False)
    assert cm.census.fanouts() == {"_1": 0.0}


class SamePadConv(nn.Conv2d):
    """A custom conv module (like EfficientNet's): fx traces into it, to F.conv2d."""

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def test_functional_conv_fanout():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU(), SamePadConv(4, 8, 3, stride=2, groups=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 3)).eval()
    cm, _ = P.convert(model, calibration=torch.randn(4, 1, 8, 8), progress=False)
    assert cm.census.fanouts() == {"_1": 8 / 2 * 9 / 4, "_3": 3.0}


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        x = self.act(self.l1(x))
        if x.sum() > -1e9:  # data-dependent control flow: torch.fx cannot trace it
            x = torch.tanh(x)
        return self.l2(x)


def test_untraceable_model_falls_back_and_reports_leftovers():
    x = torch.randn(8, 4)
    with pytest.warns(UserWarning, match="could not trace"), pytest.raises(P.ConversionError, match="tanh"):
        P.convert(Untraceable(), calibration=x, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cm, rep = P.convert(Untraceable(), calibration=x, progress=False, strict=False)
    assert any("not converted" in str(w.message) for w in caught)
    assert not rep.traced and [r.activation for r in rep.rows] == ["relu"]
    assert rep.unconverted and "tanh" in rep.unconverted[0]
    with pytest.raises(ValueError, match="calibration data"), pytest.warns(UserWarning):
        P.convert(Untraceable(), interval=(-4, 4))


def test_unsupported_and_bad_input():
    model = nn.Sequential(nn.Linear(2, 2), nn.PReLU())
    with pytest.raises(P.ConversionError, match="PReLU"):
        P.convert(model, calibration=torch.randn(4, 2), progress=False)
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match="unknown method"):
        P.convert(relu, "nope", interval=(-1, 1))
    with pytest.raises(TypeError, match="no option"):
        P.convert(relu, "ps", interval=(-1, 1), T=3)
    with pytest.raises(ValueError, match=r"interval \(1, 1\) is empty"):
        P.convert(relu, interval=(1, 1))
    with pytest.raises(ValueError, match="calibration data"):
        P.convert(relu)
    with pytest.raises(ValueError, match="percentile"):
        P.convert(relu, calibration=torch.randn(4, 2), observer=30)
    with pytest.raises(RuntimeError, match="NaN"):
        P.convert(relu, calibration=torch.full((4, 2), float("nan")), progress=False)
    with pytest.raises(P.ConversionError, match="ReLU and ReLU6 only"):
        P.convert(nn.Sequential(nn.Linear(2, 2), nn.GELU()), "rate", calibration=torch.randn(4, 2),
                  progress=False)


def test_huggingface_activation_by_class_name():
    GELUActivation = type("GELUActivation", (nn.Module,), {"forward": lambda self, x: F.gelu(x)})
    model = nn.Sequential(nn.Linear(3, 3), GELUActivation())
    _, rep = P.convert(model, calibration=torch.randn(8, 3), progress=False)
    assert [(r.activation, r.source.split()[-1]) for r in rep.rows] == [("gelu", "(GELUActivation)")]


def test_percentile_interval_and_clipping():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    x = torch.randn(100_000)
    _, rep = P.convert(model, calibration=x, observer=99.0, progress=False)
    row = rep.rows[0]
    assert row.r == pytest.approx(2.326, abs=0.05) and row.l == pytest.approx(-2.326, abs=0.05)
    assert row.clipped_fraction == pytest.approx(0.01, abs=0.002)  # above r; below l ReLU is flat: nothing lost
    _, rep = P.convert(model, calibration=x, progress=False)
    assert rep.rows[0].r == float(x.max()) and rep.rows[0].clipped_fraction == 0


def test_if_neuron_rate_code():
    n = IFNeuron(threshold=2.0, time_steps=8)
    x = torch.tensor([-1.0, 0.0, 0.3, 1.0, 1.9, 5.0])
    out = sum(n(x) for _ in range(8)) / 8
    # reset by subtraction with constant input: rate = floor(T x / theta) theta / T, clipped to [0, theta]
    assert torch.allclose(out, (torch.floor(8 * x / 2).clamp(0, 8) * 2 / 8))
    assert n.stats.neurons == 6 and n.stats.spikes == int((out / 2 * 8).sum())
    with pytest.raises(RuntimeError, match="reset_state"):
        n(x)


def test_rate_conversion_converges_with_T():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.randn(32, 4)
    errors = []
    for T in (8, 256):
        cm, _ = P.convert(model, "rate", calibration=x, progress=False, T=T, v_init=0.5)
        with torch.no_grad():
            errors.append(float((cm(x) - model(x)).abs().max()))
        assert cm.spike_stats().time_steps == T
    assert errors[1] < errors[0] / 4 and errors[1] < 0.05
    with pytest.raises(ValueError, match="modes"):
        cm.set_mode("fast")


def test_fs_relu_is_binary_floor_and_table_params_load():
    n = FSNeuron(relu_params(alpha=4.0, K=4))
    x = torch.tensor([-1.0, 0.0, 0.24, 0.26, 3.0, 3.9, 10.0])
    assert torch.allclose(n(x), torch.floor(x.clamp(0, 3.75) * 4) / 4)
    assert n.stats.clipped == 1  # 10 > alpha
    cm, rep = P.convert(nn.Sequential(nn.Linear(2, 2), nn.GELU()), "fs", calibration=torch.randn(50, 2),
                        progress=False, K=12)
    neuron = cm.neurons["_1"]
    assert neuron.params.activation == "gelu" and neuron.params.K == 12 and neuron.params.loss < 5e-3
    x = torch.linspace(-5, 5, 1001)
    assert (neuron(x) - F.gelu(x)).pow(2).mean() < 5e-3
    with pytest.raises(P.ConversionError, match=r"site _1 \(module 1 \(GELU\), .*\): no trained FS parameters"):
        P.convert(nn.Sequential(nn.Linear(2, 2), nn.GELU()), "fs", calibration=torch.randn(5, 2),
                  progress=False, K=9)


def test_a_new_method_plugs_in_without_touching_the_engine():
    class Doubler(nn.Module):
        MODES = ("stepped",)
        mode = "stepped"

        def __init__(self):
            super().__init__()
            self.stats = SpikeStats(time_steps=1, bias_spike=False)

        def reset_stats(self):
            self.stats = SpikeStats(time_steps=1, bias_spike=False)

        def reset_state(self):
            pass

        def forward(self, x):
            self.stats.neurons += x.numel()
            return 2 * x

    def build(site: Site, options: object) -> nn.Module:
        assert site.interval[0] < site.interval[1]
        return Doubler()

    P.register_method(Method("test-doubler", build, "none (a test)", passes=lambda o: 3))
    assert "test-doubler" in P.known_methods()
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    cm, rep = P.convert(model, "test-doubler", calibration=torch.randn(4, 2), progress=False)
    x = torch.randn(4, 2)
    assert torch.allclose(cm(x), 2 * model[0](x)) and rep.spikes == "none (a test)"
    assert cm.spike_stats().neurons == 6  # counting is the neuron's: this one counts all 3 passes
    with pytest.raises(ValueError, match="already registered"):
        P.register_method(Method("test-doubler", build, ""))


def test_nan_calibration_inputs_are_reported_never_silent():
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU()).eval()
    x = torch.randn(16, 3)
    x[0, 0] = float("nan")  # one image with a NaN pixel: its activations are NaN
    x[1, 1] = float("inf")  # and one with an infinite pixel
    with pytest.warns(UserWarning, match=r"site .*: 8 NaN or infinite calibration input\(s\) ignored"):
        _, rep = P.convert(model, calibration=x, progress=False, K=8)
    assert rep.table()["nonfinite_inputs"].tolist() == [8]
    with pytest.raises(P.ConversionError, match=r"site \w+ \(.*\): this site saw no finite calibration input"):
        P.convert(model, calibration=torch.full((4, 3), float("nan")), progress=False)
