"""Paper 2's threshold optimisation and calibration through time, on hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P
from psnn_lib.through_time.layer_weights import COSINE_FLOOR, kappa_at, layer_weights
from psnn_lib.converter.engine import analog_twin
from psnn_lib.through_time.calibrate import (calibration_loss, joint_calibration, layer_kl,
                                             layerwise_calibration)
from psnn_lib.models.clipping import ClippedLeakyReLU
from psnn_lib.models.threshold_optimisation import (VariancePenalty, adaptive_weight, add_clipping,
                                                     bn_variance_penalty, variance_penalty)


def test_variance_penalty_eq23_by_hand():
    a = torch.tensor([[1.0], [2.0], [3.0], [4.0]])  # one channel, four samples
    sigma, m = math.sqrt(1.25), 2.5  # the population standard deviation (defined for one sample too)
    assert float(variance_penalty(a, eps=0.01)) == pytest.approx((sigma / (m + 0.01)) ** 3)
    # scale-free (Eq. 22): scaling the activations leaves eta (almost: eps) unchanged
    assert float(variance_penalty(10 * a, eps=0.0)) == pytest.approx(float(variance_penalty(a, eps=0.0)))
    two = torch.tensor([[1.0, 0.0], [3.0, 0.0]])  # second channel constant: eta 0
    assert float(variance_penalty(two, eps=0.01)) == pytest.approx(((1 / 2.01) ** 3) / 2)
    assert torch.isfinite(variance_penalty(torch.tensor([[1.0, 2.0]])))  # a batch of one


def test_bn_form_and_adaptive_weight():
    bn = nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, -1.0]))
        bn.bias.copy_(torch.tensor([1.0, 0.5]))
    assert float(bn_variance_penalty(bn, eps=0.0).detach()) == pytest.approx((8 + 8) / 2)
    task, eta = torch.tensor(2.0, requires_grad=True), torch.tensor(50.0, requires_grad=True)
    lam = adaptive_weight(task, eta)
    assert float(lam * eta) == pytest.approx(0.1 * 2.0) and not lam.requires_grad


@pytest.mark.parametrize("name,L,p,expected", [
    ("average", 4, 0.3, [0.25] * 4),
    ("cosine", 2, 0.0, [math.cos(math.pi / 4) / (math.cos(math.pi / 4) + COSINE_FLOOR),
                        COSINE_FLOOR / (math.cos(math.pi / 4) + COSINE_FLOOR)]),
    ("cosine", 2, 0.5, [1 / (1 + math.cos(math.pi / 4)), math.cos(math.pi / 4) / (1 + math.cos(math.pi / 4))]),
    ("sigmoid", 2, 0.5, [1 / 1.419974, 0.419974 / 1.419974]),
])
def test_layer_weights_by_hand(name, L, p, expected):
    assert layer_weights(name, L, p) == pytest.approx(expected, rel=1e-5)


def test_layer_weights_move_attention_from_shallow_to_deep():
    for name in ("cosine", "sigmoid"):
        start, end = layer_weights(name, 5, 0.0), layer_weights(name, 5, 1.0)
        assert start == sorted(start, reverse=True) and end == sorted(end)
        assert min(start) > 0
        middle = layer_weights(name, 5, 0.6)
        assert max(range(5), key=middle.__getitem__) == 2  # layer round(pL) = 3


def test_kappa_schedule():
    assert [kappa_at(e) for e in (0, 9, 10, 18, 19, 40)] == [6.7, 6.7, 10.0, 10.0, 15.0, 15.0]


@pytest.mark.parametrize("bad", [("nope", 3, 0.5), ("cosine", 0, 0.5), ("cosine", 3, 1.5)])
def test_layer_weights_bad_input(bad):
    with pytest.raises(ValueError):
        layer_weights(*bad)


def test_layer_kl_is_eq33_on_softmax_maps():
    a, b = torch.tensor([[0.5, -0.2, 0.1]]), torch.tensor([[0.1, 0.0, 0.3]])
    p, q = F.softmax(a, 1), F.softmax(b, 1)
    assert float(layer_kl(a, b)) == pytest.approx(float((p * (p / q).log()).sum()))
    assert float(layer_kl(a, a)) == pytest.approx(0.0, abs=1e-7)


def _snn(method="signed", T=4):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 32), nn.LeakyReLU(0.1), nn.Linear(32, 24), nn.LeakyReLU(0.1),
                        nn.Linear(24, 3)).eval()
    x = torch.randn(256, 10)
    snn, _ = P.convert(net, method, calibration=x, T=T, progress=False)
    return snn, x


def test_one_joint_calibration_epoch_lowers_the_loss():
    """With fixed (average) weights the loss it trains is one function: one epoch lowers it,
    and the output layer's most (a layer fed by the exact input has only its rounding
    to T steps left, which no weight removes)."""
    snn, x = _snn()
    ann = analog_twin(snn)  # the original ANN: the reference before and after
    before = calibration_loss(snn, x)
    history = joint_calibration(snn, x, epochs=1, weighting="average", lr=1e-3, batch_size=32, progress=False)
    after = calibration_loss(snn, x, reference=ann)
    assert history.layers == ["_1", "_3", "output"] and len(history.epochs) == 1
    assert sum(after) < sum(before) and after[-1] < 0.9 * before[-1]


def test_layerwise_trains_one_layer_at_a_time():
    snn, x = _snn("ibt")
    params = dict(snn.model.named_parameters())
    frozen = {k: v.detach().clone() for k, v in params.items()}
    layerwise_calibration(snn, x, epochs=1, lr=1e-2, progress=False, layers=1)
    changed = {k for k, v in params.items() if not torch.equal(v.detach(), frozen[k])}
    assert changed == {"0.weight", "0.bias"}


def test_calibration_bad_input():
    snn, x = _snn()
    bad = x.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        joint_calibration(snn, bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="weighting"):
        joint_calibration(snn, x, epochs=1, weighting="linear", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        joint_calibration(snn, x, epochs=0, progress=False)
    ps, _ = P.convert(nn.Sequential(nn.Linear(10, 4), nn.LeakyReLU(0.1)), "ps", calibration=x, progress=False)
    with pytest.raises(ValueError, match="signed-spike method"):
        joint_calibration(ps, x, epochs=1, progress=False)


def test_threshold_optimisation_stages():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.1), nn.Linear(16, 3))
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    penalty = VariancePenalty(net)
    loss = penalty(net(x), y)
    task, eta = penalty.last
    assert float(loss) == pytest.approx(task * 1.1, rel=1e-5)  # Lambda_c + 0.1 |Lambda_c|
    penalty.remove()
    add_clipping(net, x)
    clip = net[1]
    assert isinstance(clip, ClippedLeakyReLU)
    with torch.no_grad():
        out = F.leaky_relu(net[0](x), 0.1)
    assert clip.values() == (pytest.approx(float(out.max())), pytest.approx(float(out.min())))
    with pytest.raises(ValueError, match="no LeakyReLU"):
        VariancePenalty(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    with pytest.raises(ValueError, match="no nn.LeakyReLU"):
        add_clipping(nn.Sequential(nn.Linear(3, 3)), torch.randn(4, 3))


def test_calibration_keeps_the_reference_stats_and_kappa():
    snn, x = _snn("ibt")
    ann = analog_twin(snn)
    with torch.no_grad():
        snn(x[:10])
    stats = {k: (n.stats.spikes, n.stats.neurons) for k, n in snn.neurons.items()}
    kappas = {k: n.kappa for k, n in snn.neurons.items()}
    layerwise_calibration(snn, x, epochs=1, lr=1e-2, progress=False)
    assert {k: (n.stats.spikes, n.stats.neurons) for k, n in snn.neurons.items()} == stats
    assert {k: n.kappa for k, n in snn.neurons.items()} == kappas
    assert snn.spike_stats().samples == 10
    # every layer was compared with the original ANN: its outputs are unchanged
    with torch.no_grad():
        assert torch.equal(ann(x), analog_twin(_snn("ibt")[0])(x))
    assert all(p.grad is None for p in snn.model.parameters())


class _InPlaceAfterSite(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(6, 12), nn.Linear(12, 2)

    def forward(self, x):
        y = F.leaky_relu(self.l1(x), 0.1, inplace=True)
        y.mul_(3.0)  # the model changes the site's output in place afterwards
        return self.l2(y)


def test_maps_are_not_changed_by_in_place_code_after_a_site():
    torch.manual_seed(0)
    net, x = _InPlaceAfterSite().eval(), torch.randn(64, 6)
    snn, _ = P.convert(net, "signed", calibration=x, T=256, progress=False)
    assert calibration_loss(snn, x)[0] < 1e-3


def test_neuron_kl_is_eq33_per_neuron_and_sees_offsets():
    from psnn_lib.through_time.calibrate import neuron_kl, site_loss
    from psnn_lib.neurons.signed import SignedIFNeuron
    p, q = torch.tensor([0.2, 0.5, 1.0]), torch.tensor([0.4, 0.5, 0.9])
    by_hand = [0.2 * math.log(0.2 / 0.4) + 0.8 * math.log(0.8 / 0.6), 0.0, math.log(1 / 0.9)]
    assert float(neuron_kl(p, q)) == pytest.approx(sum(by_hand) / 3, rel=1e-5)
    assert float(neuron_kl(q, q)) == pytest.approx(0.0, abs=1e-7)  # (a rate of exactly 1 is floored)
    neuron = SignedIFNeuron(2.0, -1.0, 0.1, 8)  # range [alpha N_th, P_th] = [-0.1, 2]
    ann = torch.rand(4, 50) * 2.1 - 0.1
    shifted = ann + 0.3  # a common offset: the softmax over the map cannot see it, Eq. 33 per neuron does
    assert float(site_loss("kl_map", neuron, ann, shifted)) == pytest.approx(0.0, abs=1e-6)
    assert float(site_loss("kl_neuron", neuron, ann, shifted)) > 0.05
    assert float(site_loss("mse", neuron, ann, shifted)) > 0.01
    with pytest.raises(ValueError, match="unknown calibration loss"):
        joint_calibration(P.convert(nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2)), "signed",
                                    calibration=torch.randn(16, 3), T=4, progress=False)[0],
                          torch.randn(16, 3), epochs=1, loss="kl")
