"""Paper 2's signed neuron, its conversion methods and the clipped activation."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P
from psnn_lib.converter.engine import ConversionError
from psnn_lib.models.clipping import ClippedLeakyReLU, clipped_leaky_relu, threshold_l2
from psnn_lib.neurons.signed import SignedIFNeuron, signed_step


def _run(neuron: SignedIFNeuron, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Rate (mean output) over the neuron's T steps and the signed spike train."""
    neuron.reset_state()
    outs = [neuron(x) for _ in range(neuron.time_steps)]
    train = [torch.sign(o) for o in outs]
    return torch.stack(outs).mean(0), train


@pytest.mark.parametrize("T", [1, 4, 10, 33])
@pytest.mark.parametrize("v_init", [0.0, 0.5])
def test_rate_is_the_clipped_leaky_relu_within_one_spike(T, v_init):
    alpha, p_th, n_th = 0.1, 2.0, -1.5
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    rate, _ = _run(SignedIFNeuron(p_th, n_th, alpha, T, v_init), x)
    target = F.leaky_relu(x, alpha).clamp(alpha * n_th, p_th)
    err = (rate - target).abs()
    pos, neg = x > 0, x < 0
    assert float(err[pos].max()) <= p_th / T + 1e-12  # one positive spike's worth
    assert float(err[neg].max()) <= alpha * -n_th / T + 1e-12  # one negative spike's worth
    # and not better than chance: at T = 1 a coarse but non-trivial answer
    if T == 33:
        assert float(err.max()) < 0.07


def test_spike_trains_are_signed_events_and_counted_apart():
    torch.manual_seed(0)
    neuron = SignedIFNeuron(1.0, -0.5, 0.2, 16)
    x = torch.randn(1000)
    neuron.reset_state()
    pos = neg = 0
    for _ in range(16):
        out = neuron(x)
        s = torch.where(out > 0, 1, torch.where(out < 0, -1, 0))
        assert set(s.unique().tolist()) <= {-1, 0, 1}
        assert torch.equal(out, s * 1.0 * (s > 0) + s.abs() * neuron.negative_value * (s < 0))
        pos, neg = pos + int((s > 0).sum()), neg + int((s < 0).sum())
    assert neuron.stats.spikes == pos + neg and neuron.stats.negative == neg > 0 and pos > 0
    assert neuron.stats.neurons == 1000 and neuron.stats.time_steps == 16


def test_the_pair_never_fires_both_ways_in_one_step():
    torch.manual_seed(1)
    v_p, v_n = torch.full((5000,), 0.5), torch.full((5000,), -0.25)
    for _ in range(50):
        p, n, v_p, v_n = signed_step(torch.randn(5000) * 2, v_p, v_n, 1.0, -0.5)
        assert not bool((p * n).any())


def test_beta_is_eq16_and_ibt_has_beta_one():
    assert SignedIFNeuron(2.0, -1.0, 0.1, 4).beta == pytest.approx(0.1 * -1.0 / 2.0)
    assert SignedIFNeuron(2.0, -2.0 / 0.1, 0.1, 4).beta == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [dict(positive_threshold=0.0), dict(negative_threshold=0.5),
                                 dict(negative_slope=1.5), dict(negative_slope=-0.1),
                                 dict(positive_threshold=math.nan)])
def test_neuron_rejects_bad_parameters(bad):
    args = dict(positive_threshold=1.0, negative_threshold=-1.0, negative_slope=0.1, time_steps=4)
    with pytest.raises(ValueError):
        SignedIFNeuron(**{**args, **bad})


def test_surrogate_gradient_is_eq32_derivative():
    from psnn_lib.neurons.signed import spike
    u = torch.tensor([-0.3, 0.0, 0.2], requires_grad=True)
    s = spike(u, 6.7)
    assert s.tolist() == [0.0, 0.0, 1.0]
    s.sum().backward()
    g = torch.sigmoid(6.7 * u.detach())
    assert torch.allclose(u.grad, 6.7 * g * (1 - g))


def _net(slope=0.1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 40), nn.LeakyReLU(slope), nn.Linear(40, 30), nn.LeakyReLU(slope),
                         nn.Linear(30, 4)).eval()


def test_signed_conversion_tracks_the_ann_and_beats_ibt_at_short_T():
    net, x = _net(), torch.randn(512, 12)
    with torch.no_grad():
        ref = net(x)
        errs = {}
        for method in ("signed", "ibt", "symmetric", "unsigned"):
            snn, report = P.convert(net, method, calibration=x, T=8, progress=False)
            errs[method] = float((snn(x) - ref).abs().mean())
            assert report.spikes.startswith({"unsigned": "binary"}.get(method, "signed"))
        long, _ = P.convert(net, "signed", calibration=x, T=256, progress=False)
        assert float((long(x) - ref).abs().mean()) < errs["signed"] / 8
    assert errs["signed"] < errs["ibt"] and errs["signed"] < errs["unsigned"]


def test_unsigned_drops_negative_spikes_and_stats_count_signs():
    net, x = _net(), torch.randn(256, 12)
    with torch.no_grad():
        snn, _ = P.convert(net, "signed", calibration=x, T=8, progress=False)
        snn(x)
        rows = snn.spike_stats().rows
        assert all(r["negative_spikes"] > 0 for r in rows)
        plain, _ = P.convert(net, "unsigned", calibration=x, T=8, progress=False)
        plain(x)
        assert all(r["negative_spikes"] == 0 for r in plain.spike_stats().rows)


def test_one_run_gives_the_accuracy_and_spikes_of_every_shorter_run():
    """accuracy_by_step reads T = 1..T_max from one run; each must be what a run of exactly T gives."""
    from psnn_lib.models.training import accuracy
    from psnn_lib.paper2.evaluation import accuracy_by_step
    net, x = _net(), torch.randn(300, 12)
    with torch.no_grad():
        y = net(x).argmax(1)
        long, _ = P.convert(net, "signed", calibration=x, T=12, progress=False)
        curve = accuracy_by_step(long, x, y, batch_size=64)
        acc, spikes = curve.accuracy, curve.spikes
        for T in (1, 5, 12):
            short, _ = P.convert(net, "signed", calibration=x, T=T, progress=False)
            out = torch.cat([short(x[i:i + 64]) for i in range(0, 300, 64)])
            assert acc[T - 1] == pytest.approx(accuracy(out, y))
            assert spikes[T - 1] == pytest.approx(short.spike_stats().spikes)
    assert acc[0] < acc[-1] and 0 < spikes[0] < spikes[-1]


def test_bad_input_to_the_signed_methods():
    net, x = _net(), torch.randn(64, 12)
    with pytest.raises(ValueError, match="T must be a positive int"):
        P.convert(net, "signed", calibration=x, T=0, progress=False)
    with pytest.raises(ConversionError, match="ReLU family"):
        P.convert(_net(slope=1.5), "signed", calibration=x, progress=False)
    with pytest.raises(ConversionError, match="ReLU family"):
        P.convert(nn.Sequential(nn.Linear(12, 5), nn.GELU()), "signed", calibration=x, progress=False)
    with pytest.raises(ValueError, match="v_init"):
        P.convert(net, "signed", calibration=x, v_init=1.5, progress=False)


def test_clipped_leaky_relu_gradients_and_spec():
    m = ClippedLeakyReLU(0.1, 1.0, -0.2)
    x = torch.tensor([-5.0, -1.0, 0.5, 3.0])
    y = m(x)
    assert torch.allclose(y, clipped_leaky_relu(x, 0.1, -0.2, 1.0))
    assert y.tolist() == pytest.approx([-0.2, -0.1, 0.5, 1.0])
    y.sum().backward()
    assert float(m.theta_p.grad) == 1.0 and float(m.theta_n.grad) == 1.0  # one clipped input each
    spec = m.activation_spec()
    assert spec.negative_slope == 0.1 and spec.bounds == pytest.approx((-2.0, 1.0))
    assert float(threshold_l2(nn.Sequential(m)).detach()) == pytest.approx(1.0 + 0.04)
    sym = ClippedLeakyReLU(1.0, 0.7, -0.1, symmetric=True)
    assert sym.values() == (pytest.approx(0.7), pytest.approx(-0.7))
    with pytest.raises(ValueError):
        ClippedLeakyReLU(0.1, -1.0, -2.0)


def test_conversion_normalises_by_the_learned_thresholds():
    """A clipped site's interval is its clipping range, not the (wider) calibration range."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 20), ClippedLeakyReLU(0.1, 0.3, -0.05), nn.Linear(20, 3)).eval()
    x = torch.randn(256, 6) * 3
    snn, report = P.convert(net, "signed", calibration=x, T=64, progress=False)
    (row,) = report.rows
    assert (row.l, row.r) == pytest.approx((-0.5, 0.3), rel=1e-6)
    assert row.details["P_th"] == pytest.approx(0.3) and row.details["N_th"] == pytest.approx(-0.5)
    with torch.no_grad():
        assert float((snn(x) - net(x)).abs().max()) < 0.3 / 64 * 20 * float(net[2].weight.abs().max()) + 1e-3


def test_steps_average_to_the_forward_and_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 20), ClippedLeakyReLU(0.1, 0.8, -0.1), nn.Linear(20, 8), nn.LeakyReLU(0.2),
                        nn.Linear(8, 3)).eval()
    x = torch.randn(64, 6)
    snn, _ = P.convert(net, "signed", calibration=x, T=6, progress=False)
    with torch.no_grad():
        mean = torch.stack(list(snn.steps(x))).mean(0)
        out = snn(x)
    assert torch.allclose(mean, out, atol=1e-6)
    path = tmp_path / "snn.json"
    P.save_converted(snn, path)
    again, _ = P.load_converted(net, path)
    with torch.no_grad():
        assert torch.equal(again(x), out)
    assert again.activations == snn.activations and again.options == snn.options


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_signed_neuron_every_dtype_gives_the_float32_spikes(dtype):
    torch.manual_seed(0)
    x = (torch.randn(4000) * 2).to(dtype)  # float64: exactly the float32 values it came from
    a, b = SignedIFNeuron(1.5, -0.7, 0.1, 8), SignedIFNeuron(1.5, -0.7, 0.1, 8)
    for _ in range(8):
        got, ref = a(x), b(x.float())
        assert got.dtype == dtype
        assert torch.equal(torch.sign(got), torch.sign(ref).to(dtype))
        if dtype == torch.float64:  # keeps the float64 result, not the float32 rounding
            assert torch.allclose(got, ref.double(), rtol=0, atol=1e-7)
        else:
            assert torch.equal(got, ref.to(dtype))
    assert a.stats.spikes == b.stats.spikes and a.stats.negative == b.stats.negative


def test_clipped_fraction_counts_what_each_neuron_cannot_represent():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 1), nn.LeakyReLU(0.1)).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
    x = torch.linspace(-10, 1, 1101)[:, None]
    share = {}
    for method in ("signed", "symmetric", "ibt", "unsigned"):
        _, report = P.convert(net, method, calibration=x, T=4, progress=False)
        share[method] = report.rows[0].clipped_fraction
    below = float((x < -1).float().mean())  # symmetric covers [-r, r] = [-1, 1]
    assert share["signed"] == 0.0 and share["ibt"] == 0.0  # -r / alpha = -10: all covered
    assert share["symmetric"] == pytest.approx(below, abs=2e-3)
    assert share["unsigned"] == pytest.approx(float((x < 0).float().mean()), abs=2e-3)
    clipped = nn.Sequential(nn.Linear(1, 1), ClippedLeakyReLU(0.1, 0.5, -0.2)).eval()
    _, report = P.convert(clipped, "signed", calibration=x, T=4, progress=False)
    assert report.rows[0].clipped_fraction == 0.0  # flat beyond the bounds: nothing lost


def test_ibt_refuses_a_clip_it_cannot_reproduce_and_bad_trained_thresholds_are_errors():
    net = nn.Sequential(nn.Linear(3, 4), ClippedLeakyReLU(0.1, 1.0, -0.05)).eval()
    x = torch.randn(64, 3) * 5
    with pytest.raises(ConversionError, match="would not clip"):
        P.convert(net, "ibt", calibration=x, progress=False)
    sym = nn.Sequential(nn.Linear(3, 4), ClippedLeakyReLU(0.1, 1.0, symmetric=True)).eval()
    P.convert(sym, "ibt", calibration=x, progress=False)  # the two-stage baseline's clip: consistent
    with torch.no_grad():
        net[1].theta_n.fill_(0.3)  # training moved it above zero
    with pytest.raises((ValueError, ConversionError), match="theta_P > 0 > theta_N"):
        P.convert(net, "signed", calibration=x, progress=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("n_th, v_init", [(-0.7, 0.5), (None, 0.5), (-0.7, 0.0)])
def test_fused_inference_step_is_the_differentiable_step_bit_for_bit(dtype, n_th, v_init):
    """No-grad calls take the fused in-place step; with gradients on they take signed_step:
    the same spikes, membranes, outputs and counts, step by step (thresholds that are not
    exact in binary, inputs on and around them, more elements than one chunk, a transposed
    input)."""
    from psnn_lib.neurons.fused import CHUNK
    torch.manual_seed(1)
    p_th = 0.3
    x = torch.cat([torch.randn(2 * CHUNK + 5000) * 0.4, torch.tensor([p_th, -0.7, 0.0, -0.0, 0.1, 0.2])])
    x = x[: len(x) // 6 * 6].reshape(6, -1).t().to(dtype)  # not contiguous
    assert not x.is_contiguous() and x.numel() > 2 * CHUNK
    fused, grad = SignedIFNeuron(p_th, n_th, 0.1, 12, v_init), SignedIFNeuron(p_th, n_th, 0.1, 12, v_init)
    for _ in range(12):
        with torch.no_grad():
            a = fused(x)
        b = grad(x.clone().requires_grad_(True))
        assert a.dtype == b.dtype == dtype and not a.requires_grad and b.requires_grad
        assert torch.equal(a, b.detach()) and torch.equal(torch.signbit(a), torch.signbit(b.detach()))
        assert torch.equal(fused.v_p, grad.v_p.detach()) and torch.equal(fused.v_n, grad.v_n.detach())
        assert int(fused.spike_total()) == grad.stats.spikes
    assert (fused.stats.spikes, fused.stats.negative, fused.stats.neurons) == \
        (grad.stats.spikes, grad.stats.negative, grad.stats.neurons)
    assert grad.stats.negative > 0 if n_th is not None else grad.stats.negative == 0


def test_fused_counts_survive_inference_mode_and_no_grad_in_turn():
    x = torch.randn(1000)
    a, b = SignedIFNeuron(0.5, -0.5, 0.1, 4), SignedIFNeuron(0.5, -0.5, 0.1, 4)
    with torch.inference_mode():  # one inference in inference mode, the next without it
        for _ in range(4):
            a(x)
    a.reset_state()
    with torch.no_grad():
        for _ in range(4):
            a(x)
        for _ in range(4):
            b(x)
        b.reset_state()
        for _ in range(4):
            b(x)
    assert (a.stats.spikes, a.stats.negative) == (b.stats.spikes, b.stats.negative) and a.stats.spikes > 0


@pytest.mark.parametrize("grad", [False, True])
def test_an_input_of_another_shape_is_refused_on_either_path(grad):
    """The fused and the differentiable step both refuse an input that would broadcast onto the
    membranes; the refused step leaves the step count as it was."""
    neuron = SignedIFNeuron(1.0, -1.0, 0.1, 4)
    x = torch.ones(2, 3, requires_grad=grad)
    with torch.set_grad_enabled(grad):
        neuron(x)
        with pytest.raises(ValueError, match="one input shape"):
            neuron(torch.ones(1, 3, requires_grad=grad))
    assert neuron.t == 1
