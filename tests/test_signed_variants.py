"""The signed neuron's generalisations: per-channel thresholds (channel-wise normalisation),
augmented spikes (AugMapping) and shifted initial membranes (the two-stage baseline)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P
from psnn_lib.converter.calibration import Observer
from psnn_lib.converter.engine import ConversionError
from psnn_lib.through_time.membranes import membrane_calibration
from psnn_lib.converter.saving import save_converted
from psnn_lib.neurons.signed import SignedIFNeuron


def _steps(neuron: SignedIFNeuron, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    neuron.reset_state()
    return [neuron(x) for x in xs]


def _augmented_reference(xs, p_th, n_th, alpha, bound):
    """Augmented spikes as repeated binary firing within one step: fire (and reset by one
    threshold) while the membrane is beyond it, at most ``bound`` times."""
    v_p, v_n = torch.zeros_like(xs[0]), torch.zeros_like(xs[0])
    outs, events = [], 0
    for x in xs:
        v_p, v_n = v_p + x, v_n + x
        m_p, m_n = torch.zeros_like(x), torch.zeros_like(x)
        for _ in range(bound):
            fire_p, fire_n = v_p > p_th, v_n < n_th
            v_p, v_n = v_p - fire_p * p_th, v_n - fire_n * n_th
            m_p, m_n = m_p + fire_p, m_n + fire_n
        events += int((m_p > 0).sum() + (m_n > 0).sum())
        outs.append(m_p * p_th + m_n * alpha * n_th)
    return outs, v_p, v_n, events


@pytest.mark.parametrize("bound", [2, 5, None])
def test_augmented_spikes_are_repeated_firing_within_a_step_bit_for_bit(bound):
    torch.manual_seed(0)
    # dyadic inputs and thresholds: every subtraction is exact, so any difference is a real one
    xs = [torch.randint(-96, 96, (4000,), dtype=torch.float64) / 16 for _ in range(6)]
    p_th, n_th, alpha = 0.5, -2.0, 0.25
    neuron = SignedIFNeuron(p_th, n_th, alpha, 6, v_init=0.0, max_magnitude=bound)
    outs = _steps(neuron, xs)
    ref, v_p, v_n, events = _augmented_reference(xs, p_th, n_th, alpha, 1000 if bound is None else bound)
    assert all(torch.equal(a, b) for a, b in zip(outs, ref))
    assert torch.equal(neuron.v_p, v_p) and torch.equal(neuron.v_n, v_n)
    assert neuron.stats.spikes == events
    assert max(float(o.max()) for o in outs) > p_th  # some spike carried more than one threshold


def test_augmented_magnitudes_by_hand_and_binary_as_the_special_case():
    x = torch.tensor([3.5, 3.0, 0.5, -25.0, -5.0], dtype=torch.float64)
    free = SignedIFNeuron(1.0, -10.0, 0.1, 1, v_init=0.0, max_magnitude=None)
    assert free(x).tolist() == [3.0, 2.0, 0.0, -2.0, 0.0]  # v > k P_th for k = 1..m; -25 holds 2 of -10
    capped = SignedIFNeuron(1.0, -10.0, 0.1, 1, v_init=0.0, max_magnitude=2)
    assert capped(x).tolist() == [2.0, 2.0, 0.0, -2.0, 0.0]
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.1), nn.Linear(16, 3))
    data = torch.randn(128, 6)
    with torch.no_grad():
        one, _ = P.convert(net, "augmented", calibration=data, T=8, max_magnitude=1, progress=False)
        ibt, _ = P.convert(net, "ibt", calibration=data, T=8, progress=False)
        assert torch.equal(one(data), ibt(data))
    with pytest.raises(ValueError, match="max_magnitude"):
        SignedIFNeuron(1.0, -1.0, 0.1, 4, max_magnitude=0)
    with pytest.raises(ValueError, match="max_magnitude"):
        P.convert(net, "augmented", calibration=data, max_magnitude=1.5, progress=False)


def test_augmented_spikes_refuse_a_backward_pass():
    neuron = SignedIFNeuron(1.0, -10.0, 0.1, 2, max_magnitude=None)
    x = torch.randn(10, requires_grad=True)
    out = neuron(x * 3)
    with pytest.raises(RuntimeError, match="no surrogate gradient"):
        out.sum().backward()


def test_per_channel_thresholds_fused_equal_differentiable_and_equal_per_layer_when_alike():
    torch.manual_seed(2)
    x = torch.randn(8, 3, 5, 5, dtype=torch.float64) * 2
    p = torch.tensor([0.5, 1.0, 4.0])
    n = torch.tensor([-0.25, -3.0, -1.0])
    fused = _steps(SignedIFNeuron(p, n, 0.1, 5), [x] * 5)
    xg = x.clone().requires_grad_(True)
    stepped = _steps(SignedIFNeuron(p, n, 0.1, 5), [xg] * 5)
    assert all(torch.equal(a, b.detach()) for a, b in zip(fused, stepped))
    # channel c behaves as a per-layer neuron with channel c's thresholds
    for c in range(3):
        alone = _steps(SignedIFNeuron(float(p[c]), float(n[c]), 0.1, 5), [x[:, c]] * 5)
        assert all(torch.equal(a[:, c], b) for a, b in zip(fused, alone))
    same = _steps(SignedIFNeuron(torch.full((3,), 1.5), torch.full((3,), -1.0), 0.1, 5), [x] * 5)
    layer = _steps(SignedIFNeuron(1.5, -1.0, 0.1, 5), [x] * 5)
    assert all(torch.equal(a, b) for a, b in zip(same, layer))
    with pytest.raises(ValueError, match="channels on dimension 1"):
        SignedIFNeuron(p, n, 0.1, 5)(torch.randn(8, 4))
    with pytest.raises(ValueError, match="different lengths"):
        SignedIFNeuron(p, n[:2], 0.1, 5)
    with pytest.raises(ValueError, match="every channel"):
        SignedIFNeuron(torch.tensor([1.0, -1.0]), None, 0.1, 5)


class _Scaled(nn.Module):
    """A conv whose channels differ in scale by 20x: channel-wise thresholds matter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        with torch.no_grad():
            self.conv.weight.mul_(torch.tensor([1.0, 20.0, 0.5, 5.0]).view(4, 1, 1, 1))
        self.act = nn.LeakyReLU(0.1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


def test_channel_wise_thresholds_are_each_channels_range_and_help_small_channels():
    torch.manual_seed(3)
    net, x = _Scaled(), torch.randn(256, 1, 8, 8)
    with torch.no_grad():
        pre = net.conv(x)  # the site's inputs, computed apart from the converter
        snn, report = P.convert(net, "signed", calibration=x, T=16, channel_wise=True, progress=False)
        layer, _ = P.convert(net, "signed", calibration=x, T=16, progress=False)
        neuron = snn.neurons[report.rows[0].site]
        assert torch.allclose(neuron.p_th, pre.amax(dim=(0, 2, 3)).double())
        assert torch.allclose(neuron.n_th, pre.amin(dim=(0, 2, 3)).double())
        assert report.rows[0].details["channels"] == 4 and report.rows[0].details["P_th"] == pytest.approx(float(pre.max()))
        err = {k: float((m(x) - net(x)).abs().mean()) for k, m in (("channel", snn), ("layer", layer))}
    assert err["channel"] < 0.7 * err["layer"]
    for bad in ({"observer": 99.9}, {"interval": (-1.0, 1.0)}):
        with pytest.raises(ConversionError, match="observer='minmax'"):
            P.convert(net, "ibt", calibration=x, channel_wise=True, progress=False, **bad)
    with pytest.raises(ValueError, match="channel_wise is True or False"):
        P.convert(net, "ibt", calibration=x, channel_wise=1, progress=False)


def test_per_channel_neurons_are_not_saved_as_json(tmp_path):
    torch.manual_seed(4)
    net, x = _Scaled(), torch.randn(64, 1, 8, 8)
    snn, _ = P.convert(net, "ibt", calibration=x, T=4, channel_wise=True, progress=False)
    with pytest.raises(ValueError, match="torch.save the converted model"):
        save_converted(snn, tmp_path / "snn.json")
    assert not (tmp_path / "snn.json").exists()


def test_observer_channel_ranges_skip_nonfinite_and_refuse_varying_channels():
    obs = Observer(F.relu)
    x = torch.tensor([[1.0, -2.0], [float("nan"), 5.0], [3.0, float("inf")]])
    obs(x)
    lo, hi = obs.channel_interval()
    assert lo.tolist() == [1.0, -2.0] and hi.tolist() == [3.0, 5.0]
    obs(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="2 and 3 channels"):
        obs.channel_interval()


def test_membrane_calibration_cancels_each_layers_mean_error(tmp_path):
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.LeakyReLU(0.1), nn.Conv2d(6, 6, 3), nn.LeakyReLU(0.1),
                        nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    x = torch.randn(256, 1, 8, 8)
    snn, _ = P.convert(net, "ibt", calibration=x, T=4, v_init=0.0, progress=False)
    with torch.no_grad():
        before = float((snn(x) - net(x)).abs().mean())
        history = membrane_calibration(snn, x, progress=False)
        after = float((snn(x) - net(x)).abs().mean())
    record = history.epochs[0]
    assert len(record["before"]) == len(history.layers) == 2
    assert all(a < 0.7 * b for a, b in zip(record["after"], record["before"]))  # a wrong sign would grow it
    assert record["undone"] == [0, 0]
    assert after < before
    shift = snn.neurons[history.layers[0]].v_shift
    assert torch.is_tensor(shift) and shift.shape == (6,) and bool((shift != 0).any())
    with pytest.raises(ValueError, match="different lengths"):
        snn.neurons[history.layers[0]].shift_membranes(torch.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        snn.neurons[history.layers[0]].shift_membranes(float("nan"))
    with pytest.raises(ValueError, match="torch.save the converted model"):
        save_converted(snn, tmp_path / "unused.json")
    with pytest.raises(ValueError, match="signed-spike method"):
        membrane_calibration(P.convert(net, "ps", calibration=x, progress=False)[0], x, progress=False)


def test_membrane_calibration_moves_negative_channels_as_much_as_positive_ones():
    # channels 1 and 2 only negative: only their negative membranes (spikes worth alpha |N_th|)
    # can cancel their errors, which a shift in the positive side's units moves by alpha only
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.1), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([0.3, -2.0, -1.3]))
    x = torch.randn(512, 4) * 0.3
    snn, _ = P.convert(net, "ibt", calibration=x, T=4, v_init=0.0, progress=False)
    with torch.no_grad():
        record = membrane_calibration(snn, x, progress=False).epochs[0]
    assert record["after"][0] < 0.5 * record["before"][0]


def test_membrane_calibration_undoes_a_shift_that_overshoots():
    # channel 0: input 0.1225 at P_th = 1 (channel 1's input), T = 4, membranes from 0.5: no spike
    # in 4 steps (error +0.1225); its first-order shift 0.49 makes one spike (error -0.1275), worse
    net = nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(2, 1))
    x = torch.tensor([[0.1225, 1.0]]).repeat(8, 1)
    snn, _ = P.convert(net, "ibt", calibration=x, T=4, progress=False)
    with torch.no_grad():
        record = membrane_calibration(snn, x, progress=False).epochs[0]
    assert record["undone"] == [1]
    assert record["after"] == pytest.approx(record["before"]) == [pytest.approx(0.1225 / 2)]
    assert next(iter(snn.neurons.values())).v_shift.tolist() == [0.0, 0.0]  # channel 1 had no error


def test_channel_wise_thresholds_stay_inside_a_clipped_activations_bounds():
    from psnn_lib.models.clipping import ClippedLeakyReLU
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(3, 4), ClippedLeakyReLU(0.1, 1.0, -0.05)).eval()
    x = torch.randn(256, 3) * 5  # most inputs beyond the clip
    snn, report = P.convert(net, "signed", calibration=x, T=8, channel_wise=True, progress=False)
    neuron = snn.neurons[report.rows[0].site]
    assert float(neuron.p_th.max()) <= 1.0 and float(neuron.n_th.min()) >= -0.5 * (1 + 1e-6)  # theta_N / alpha
    assert report.rows[0].clipped_fraction == 0.0
    with pytest.raises(ConversionError, match="would not clip"):  # unbounded augmented spikes cannot clip
        P.convert(net, "augmented", calibration=x, progress=False)


def test_channel_wise_clipped_fraction_counts_each_input_against_its_own_channel():
    # two channels through an identity: ranges [-0.5, 9.5] and [-5, 0.1]
    net = nn.Sequential(nn.Identity(), nn.LeakyReLU(0.1))
    x = torch.stack([torch.linspace(-0.5, 9.5, 1001), torch.linspace(-5.0, 0.1, 1001)], dim=1)
    share = {}
    for method in ("signed", "symmetric", "ibt"):
        _, report = P.convert(net, method, calibration=x, T=4, channel_wise=True, progress=False)
        share[method] = report.rows[0].clipped_fraction
    # symmetric: channel 2's thresholds are +-0.1, so its inputs below -0.1 are clipped (half the
    # inputs are channel 2's); ibt: -0.1 / alpha = -1 for channel 2
    by_hand = {"signed": 0.0, "symmetric": float((x[:, 1] < -0.1).double().mean()) / 2,
               "ibt": float((x[:, 1] < -1.0).double().mean()) / 2}
    assert share == pytest.approx(by_hand, abs=5e-3) and share["ibt"] > 0.3


def test_shifted_membranes_keep_float64_thresholds_and_refuse_json(tmp_path):
    torch.manual_seed(7)
    x = torch.randn(4, 3, 6) * 0.3
    shift = torch.tensor([0.05, -0.1, 0.0])
    fused = _steps(SignedIFNeuron(0.1, -0.3, 0.1, 6, v_shift=shift), [x] * 6)
    stepped = _steps(SignedIFNeuron(0.1, -0.3, 0.1, 6, v_shift=shift), [x.clone().requires_grad_(True)] * 6)
    assert all(torch.equal(a, b.detach()) for a, b in zip(fused, stepped))
    # a zero shift changes nothing (thresholds stay float64, not rounded to float32)
    edge = torch.full((1, 3, 1), 0.1000000001, dtype=torch.float64)
    assert torch.equal(SignedIFNeuron(0.1, None, 0.0, 1, v_init=0.0, v_shift=torch.zeros(3))(edge),
                       SignedIFNeuron(0.1, None, 0.0, 1, v_init=0.0)(edge))
    net = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1))
    snn, report = P.convert(net, "ibt", calibration=torch.randn(32, 3), T=4, progress=False)
    snn.neurons[report.rows[0].site].shift_membranes(0.2)
    with pytest.raises(ValueError, match="shifted by 0.2"):
        save_converted(snn, tmp_path / "snn.json")


def test_scalar_tensors_and_numpy_ints_are_numbers():
    import numpy as np
    a = SignedIFNeuron(torch.tensor(0.5), torch.tensor(-1.0), 0.1, 4, max_magnitude=np.int64(3),
                       v_shift=torch.tensor(0.1))
    assert a.channels is None and a.p_th == 0.5 and a.max_magnitude == 3 and a.v_shift == pytest.approx(0.1)


def test_channel_wise_on_a_3d_input_is_noted():
    net = nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(0.1))
    with pytest.warns(UserWarning, match="one threshold per position"):
        _, report = P.convert(net, "signed", calibration=torch.randn(4, 5, 8), channel_wise=True, progress=False)
    assert any("one threshold per position" in n for n in report.notes)
