"""The converter never gives a silently wrong number (issue 21, section 1): each test
fails on the converter before that issue."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P
from psnn_lib.ps.grid import PAPER_STEP, site_step


def _quiet_convert(model, method, x, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snn, rep = P.convert(model, method, calibration=x, progress=False, **options)
    return snn, rep, [str(w.message) for w in caught]


class Narrow(nn.Module):
    """A GELU whose inputs span about ``scale`` (MaxViT's conv_b GELU spans 5e-4)."""

    def __init__(self, scale):
        super().__init__()
        self.scale, self.l1, self.l2 = scale, nn.Linear(16, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.l2(F.gelu(self.l1(x) * self.scale) / self.scale)


@pytest.mark.parametrize("scale", [1e-3, 1e-4])
def test_a_narrow_site_keeps_its_precision_and_a_coarse_grid_is_warned_about(scale):
    torch.manual_seed(0)
    model, x = Narrow(scale).eval(), torch.randn(512, 16)
    snn, rep, caught = _quiet_convert(model, "ps", x, K=16)
    row = rep.rows[0]
    with torch.no_grad():
        a, b = model(x), snn(x)
    assert float((a - b).norm() / a.norm()) < 0.01  # 0.36 (scale 1e-3) and 2.9 (1e-4) before
    assert row.details["step"] == pytest.approx((row.r - row.l) / 1000) and not caught
    assert row.details["error_bound"] < 1e-3 * (row.r - row.l)
    _, coarse, caught = _quiet_convert(model, "ps", x, K=16, step=PAPER_STEP)  # the old fixed step
    assert coarse.rows[0].details["error_bound"] > 10 * row.details["error_bound"]
    assert any("mostly snapping" in m for m in caught) and any("mostly snapping" in n for n in coarse.notes)


def test_sites_at_least_one_wide_keep_the_papers_step():
    assert site_step(-3.0, 3.0) == site_step(0.0, 1.0) == PAPER_STEP
    assert site_step(0.0, 0.5) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="empty interval"):
        site_step(1.0, 1.0)


LEAKY = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.1), nn.Linear(16, 4))
RELU = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize("method, model, options", [
    ("ps", LEAKY, {}), ("fs", RELU, {}), ("rate", RELU, {"T": 16}), ("signed", LEAKY, {"T": 8}),
    ("ibt", LEAKY, {"T": 8}), ("symmetric", LEAKY, {"T": 8}), ("unsigned", LEAKY, {"T": 8}),
])
def test_every_neuron_counts_saturation_and_warns_once(method, model, options):
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    snn, _, _ = _quiet_convert(model.eval(), method, x, **options)
    with torch.no_grad():
        snn(x)
        inside = snn.spike_stats().clipped_fraction
        snn.reset_stats()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            snn(10 * x)
            snn(10 * x)
    assert inside < 0.01 and snn.spike_stats().clipped_fraction > 0.2  # 0 for all but ps and fs before
    assert [str(w.message).split(":")[0] for w in caught] == ["site _1"]  # once per site


def test_unbounded_augmented_spikes_never_clip():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    snn, _, _ = _quiet_convert(LEAKY.eval(), "augmented", x, T=8)
    with torch.no_grad():
        snn(10 * x)
    assert snn.spike_stats().clipped_fraction == 0


def test_saturating_where_the_activation_is_flat_is_not_clipping():
    """A LeakyReLU clipped to [theta_N, theta_P] (paper 2, Eq. 24) is flat beyond its thresholds:
    the signed neuron saturating there loses nothing."""
    from psnn_lib.models.clipping import ClippedLeakyReLU
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), ClippedLeakyReLU(0.1, 1.0, -1.0), nn.Linear(16, 4)).eval()
    x = 10 * torch.randn(256, 8)  # calibrated beyond the thresholds: the neurons cover [theta_N, theta_P]
    snn, rep, _ = _quiet_convert(model, "signed", x, T=8)
    with torch.no_grad():
        snn(3 * x)
        outside = float((model[0](3 * x).abs() > 1.0).double().mean())
    assert outside > 0.5 and rep.rows[0].clipped_fraction == 0 and snn.spike_stats().clipped_fraction == 0


class Elementwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x):
        h = self.l1(x)
        return self.l2(torch.sin(h) + abs(h) + torch.square(h) + torch.atan(h) + torch.round(h)
                       + torch.sign(h) + torch.relu(h))


def test_elementwise_functions_left_analog_are_listed():
    _, rep, _ = _quiet_convert(Elementwise().eval(), "ps", torch.randn(64, 8), K=8)
    listed = " ".join(map(str, rep.kept_analog))
    assert [r.activation for r in rep.rows] == ["relu"]
    for name in ("sin", "abs", "square", "atan", "round", "sign"):
        assert f": {name} (element-wise function outside the activation table)" in listed, name


class HFGelu(nn.Module):
    def __init__(self):
        super().__init__()
        from transformers.activations import NewGELUActivation
        self.l1, self.act, self.p, self.l2 = nn.Linear(8, 8), NewGELUActivation(), nn.PReLU(), nn.Linear(8, 4)

    def forward(self, x):
        return self.l2(self.p(self.act(self.l1(x))))


def test_kept_analog_holds_no_insides_of_activations_and_unconverted_names_its_module():
    _, rep, _ = _quiet_convert(HFGelu().eval(), "ps", torch.randn(64, 8), K=8, strict=False)
    assert [r.activation for r in rep.rows] == ["gelu_tanh"]
    assert rep.kept_analog == []  # NewGELU's pow and mul were listed before
    assert rep.unconverted == ["module p: PReLU: per-channel, random or gated: no shared neuron"]


class FunctionalRrelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(3, 3)

    def forward(self, x):
        return F.rrelu(self.l(x)) + F.rrelu(x) + F.relu(x)


def test_a_refused_functional_activation_is_listed_once_per_call():
    _, rep, _ = _quiet_convert(FunctionalRrelu().eval(), "ps", torch.randn(8, 3), strict=False)
    assert [r.activation for r in rep.rows] == ["relu"]
    assert rep.unconverted == ["call rrelu: rrelu: per-channel, random or gated: no shared neuron",
                               "call rrelu_1: rrelu: per-channel, random or gated: no shared neuron"]


@pytest.mark.parametrize("method", ["ps", "fs", "rate"])
def test_no_silent_zero_gradient_through_table_neurons(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    snn, _, _ = _quiet_convert(model, method, torch.randn(32, 4))
    out = snn(torch.randn(8, 4)).sum()
    with pytest.raises(RuntimeError, match="passes no gradient"):
        out.backward()


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.l, self.act, self.o = nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 2)

    def forward(self, x, mask):
        return self.o(self.act(self.l(x))).mean(1)


def test_no_silent_zero_gradient_with_a_token_mask():
    torch.manual_seed(0)
    x, mask = torch.randn(2, 5, 4), torch.ones(2, 5, dtype=torch.long)
    mask[1, 3:] = 0
    snn, _, _ = _quiet_convert(Masked(), "ps", {"x": x, "mask": mask}, token_mask="mask")
    out = snn(x=x, mask=mask).sum()
    with pytest.raises(RuntimeError, match="passes no gradient"):
        out.backward()


def test_signed_spikes_pass_their_surrogate_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.1), nn.Linear(8, 2))
    snn, _, _ = _quiet_convert(model, "signed", torch.randn(32, 4), T=4)
    snn(torch.randn(8, 4)).sum().backward()
    first = next(p for n, p in snn.named_parameters() if n.endswith("0.weight"))
    assert first.grad is not None and float(first.grad.abs().sum()) > 0


class Optional_(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x, scale=None):
        h = torch.relu(self.l(x))
        return h if scale is None else h * scale


def test_clear_errors_for_scripted_converted_models_and_arguments_traced_at_their_default():
    x = torch.randn(16, 4)
    snn, _, _ = _quiet_convert(Optional_(), "ps", x)
    with pytest.raises(TypeError, match="traced with its default None"):
        snn(x, scale=2.0)
    with pytest.raises(TypeError, match="traced with its default None"):
        snn(x, 2.0)
    assert torch.equal(snn(x, scale=None), snn(x))
    with pytest.raises(ValueError, match="already converted"):
        P.convert(snn, calibration=x, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(Optional_())
    with pytest.raises(TypeError, match="TorchScript"):
        P.convert(scripted, calibration=x, progress=False)


@pytest.mark.parametrize("method, model, options", [
    ("rate", RELU, {"T": 4}), ("signed", LEAKY, {"T": 4}), ("augmented", LEAKY, {"T": 4}), ("ps", LEAKY, {}),
    ("fs", RELU, {}),
])
def test_a_nan_input_gives_nan_outputs_not_silent_zeros(method, model, options):
    torch.manual_seed(0)
    snn, _, _ = _quiet_convert(model.eval(), method, torch.randn(64, 8), **options)
    x = torch.randn(4, 8)
    x[1, 0] = float("nan")
    with torch.no_grad():
        out = snn(x)
    assert out[1].isnan().all() and not out[[0, 2, 3]].isnan().any()


@pytest.mark.parametrize("act, method", [(nn.ReLU6(), "ps"), (nn.ReLU6(), "rate"), (nn.Hardtanh(), "ps"),
                                         (nn.Hardsigmoid(), "ps"), (nn.ReLU(), "ps"), (nn.ReLU(), "rate")])
def test_flat_regions_of_table_activations_are_not_clipping(act, method):
    """Beyond ReLU6's 6, below ReLU's 0, ...: the output is exact, nothing is counted or warned about."""
    x = torch.linspace(-10, 10, 101).unsqueeze(1)
    snn, _, _ = _quiet_convert(nn.Sequential(act), method, x)
    far = torch.full((10, 1), 50.0) if not isinstance(act, nn.ReLU) else torch.full((10, 1), -50.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            assert torch.allclose(snn(far), act(far), atol=1e-3)
    assert snn.spike_stats().clipped_fraction == 0 and not caught


def test_a_sigmoid_tail_is_clipping():
    x = torch.linspace(-10, 10, 101).unsqueeze(1)
    snn, _, _ = _quiet_convert(nn.Sequential(nn.Sigmoid()), "ps", x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            snn(torch.full((10, 1), 50.0))
    assert snn.spike_stats().clipped_fraction == 1 and len(caught) == 1


def test_a_precision_the_grid_cannot_give_is_warned_about():
    _, rep, caught = _quiet_convert(nn.Sequential(nn.GELU()), "ps", torch.linspace(-3, 3, 101).unsqueeze(1), dy=1e-5)
    assert rep.rows[0].details["error_bound"] > 10 * 1e-5 and any("mostly snapping" in m for m in caught)


def test_a_lone_inputs_targets_tuple_with_dict_or_tuple_inputs_is_one_batch():
    x, y = torch.randn(8, 4), torch.arange(8)
    for data in ({"x": x}, y), ((x,), y):
        _, rep, _ = _quiet_convert(Optional_(), "ps", data, K=8)
        assert rep.calibration_samples == 8


def test_an_argument_equal_to_its_traced_default_is_accepted():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x, scale=1.0):
            return torch.relu(self.l(x)) * scale
    x = torch.randn(8, 4)
    snn, _, _ = _quiet_convert(Scaled(), "ps", x)
    assert torch.equal(snn(x, scale=1), snn(x))
    with pytest.raises(TypeError, match="traced with its default 1.0"):
        snn(x, scale=2)


def test_save_and_load_keep_the_arguments_traced_at_their_default(tmp_path):
    torch.manual_seed(0)
    model, x = Optional_().eval(), torch.randn(8, 4)
    snn, _, _ = _quiet_convert(model, "ps", x)
    P.save_converted(snn, tmp_path / "snn.json")
    again, _ = P.load_converted(model, tmp_path / "snn.json")  # no calibration: optional arguments at defaults
    assert torch.equal(again(x), snn(x))
    mask = torch.ones(8, 4)
    with_mask, _, _ = _quiet_convert(model, "ps", {"x": x, "scale": mask})
    P.save_converted(with_mask, tmp_path / "mask.json")
    with pytest.raises(P.ConversionError, match="pass calibration="):
        P.load_converted(model, tmp_path / "mask.json")
    assert torch.equal(P.load_converted(model, tmp_path / "mask.json", calibration={"x": x, "scale": mask})[0](
        x=x, scale=mask), with_mask(x=x, scale=mask))


def test_a_quotient_is_labelled_as_one():
    class Divide(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x):
            h = self.l(x)
            return torch.relu(h) / (h * h + 1)
    _, rep, _ = _quiet_convert(Divide(), "ps", torch.randn(8, 4), K=8)
    assert any("(quotient of two signals)" in str(a) for a in rep.kept_analog)
