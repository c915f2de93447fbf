"""The peers. SpikingJelly: its rate-coded SNN converges to the ANN as T grows, its state
is reset between batches, SpikingJelly leaves no activation analog silently. snntorch-ternary:
the IBT wiring computes a Leaky ReLU within one spike, spikes are ternary, the package's own
default spike is not. sinabs: what from_model converts. A missing package says how to install it."""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from psnn_lib.peers import sinabs as sb
from psnn_lib.peers import snntorch_ternary as st
from psnn_lib.peers import spikingjelly as sj

ROOT = Path(__file__).resolve().parents[1]


def _tiny_relu_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5)).eval()


def test_rate_snn_approaches_the_ann_as_t_grows():
    model = _tiny_relu_net()
    x = torch.randn(200, 8)
    with torch.no_grad():
        ann = model(x)
    # thresholds at the maximum of one batch holding every test input: no input is clipped,
    # so the only error left is the rate code's theta / T per neuron
    snn = sj.convert(model, [x], percentile=100.0)
    out = sj.outputs(snn, x, [4, 32, 1024])
    err = {t: float((o - ann).abs().mean()) for t, o in out.items()}
    agree = {t: float((o.argmax(1) == ann.argmax(1)).float().mean()) for t, o in out.items()}
    assert err[4] > 2 * err[32] > 4 * err[1024]
    assert err[1024] < 0.01 * float(ann.abs().mean())
    assert agree[4] < 1.0 and agree[1024] == 1.0
    with torch.no_grad():
        assert torch.equal(model(x), ann)  # the ANN itself is not modified


def test_state_is_reset_between_batches():
    model = _tiny_relu_net()
    x = torch.randn(64, 8)
    snn = sj.convert(model, [x], percentile=99.9)
    whole = sj.outputs(snn, x, [8], batch_size=64)[8]
    batched = sj.outputs(snn, x, [8], batch_size=16)[8]
    torch.testing.assert_close(batched, whole)


def test_no_activation_is_left_analog():
    # the comparison is fair only if SpikingJelly converts every activation or refuses
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3)).eval()
    with pytest.raises(ValueError, match="GELU"):
        sj.convert(model, [torch.randn(32, 8)])


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "spikingjelly", None)
    with pytest.raises(ImportError, match="pip install --no-deps spikingjelly==2.0.0 loguru=="):
        sj.convert(_tiny_relu_net(), [torch.randn(4, 8)])


@pytest.mark.parametrize("peer", [sj, st, sb])
def test_install_command_matches_the_pins(peer):
    pins = set((ROOT / "requirements-data.txt").read_text().split())
    assert {w for w in peer.INSTALL.split() if "==" in w} <= pins


@pytest.mark.parametrize("T", [4, 32])
def test_ternary_site_rate_is_the_leaky_relu_within_one_spike(T):
    theta, alpha = 2.0, 0.1
    site = st.TernarySite(theta, alpha)
    x = torch.linspace(-theta / alpha, theta, 301)
    site.reset()
    outs = torch.stack([site(x) for _ in range(T)])
    assert set(outs.unique().tolist()) <= {-theta, 0.0, theta}  # one spike value, both signs
    target = nn.functional.leaky_relu(x, alpha)
    assert float((outs.mean(0) - target).abs().max()) <= theta / T + 1e-6
    assert site.spikes == int((outs != 0).sum()) > 0


def test_the_packages_default_spike_is_a_sign_not_a_step():
    """Why the peer passes snnTorch's step: with snntorch-ternary's default spike function
    the neuron emits +-2 and a constant negative input averages to a positive output."""
    from snntorch_ternary import TernaryLeaky
    neuron = TernaryLeaky(beta=1.0, threshold=1.0, neg_threshold=10.0, symmetric_threshold=False)
    x = torch.tensor([-1.5, 1.5])
    outs = torch.stack([neuron(x)[0] for _ in range(64)])
    assert float(outs.abs().max()) == 2.0 and float(outs[:, 0].mean()) > 0


def _tiny_leaky_net(slope: float = 0.1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(slope), nn.Linear(32, 5)).eval()


def test_ternary_snn_approaches_the_ann_and_counts_spikes():
    model, x = _tiny_leaky_net(), torch.randn(300, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    curve = st.accuracy_by_step(st.convert(model, x), x, y, 64)
    acc, spikes = curve.accuracy, curve.spikes
    assert curve.correct.shape[1] == 300 and curve.correct.dtype == torch.bool
    assert acc[-1] >= 97.0 and acc[0] < acc[-1]
    assert all(b >= a for a, b in zip(spikes, spikes[1:])) and spikes[-1] > spikes[0]


class _Reused(nn.Module):
    """One LeakyReLU module applied to two feature maps (as torchvision's ResNets do)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(8, 16), nn.Linear(16, 5), nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)) + self.act(x).sum(1, keepdim=True))


@pytest.mark.parametrize("model, match", [
    (_tiny_relu_net(), "LeakyReLU modules only.*ReLU"),
    (nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.Hardswish(), nn.Linear(8, 5)), "Hardswish"),
    (nn.Sequential(nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.PReLU(), nn.Linear(8, 5)), "PReLU"),
    (_tiny_leaky_net(0.0), "slope in \\(0, 1\\]"),
    (_Reused(), "called more than once.*act \\(x2\\)")])
def test_ternary_peer_refuses_what_it_cannot_compute(model, match):
    with pytest.raises(ValueError, match=match):
        st.convert(model, torch.randn(16, 8))


@pytest.mark.parametrize("bad", [torch.full((4, 8), float("nan")), torch.empty(0, 8)])
def test_ternary_peer_refuses_bad_calibration_data(bad):
    with pytest.raises(ValueError, match="non-empty, finite"):
        st.convert(_tiny_leaky_net(), bad)


def test_sinabs_converts_relu_and_leaves_other_activations_analog():
    assert sb.spiking_layers(_tiny_relu_net()) == {"spiking": ["1", "3"], "analog": []}
    assert sb.spiking_layers(_tiny_leaky_net()) == {"spiking": [], "analog": ["1 (LeakyReLU)"]}
    mixed = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Hardswish(), nn.Linear(8, 5))
    assert sb.spiking_layers(mixed) == {"spiking": ["1"], "analog": ["3 (Hardswish)"]}


@pytest.mark.parametrize("peer, package, call", [
    (st, "snntorch_ternary", lambda: st.convert(_tiny_leaky_net(), torch.randn(4, 8))),
    (sb, "sinabs", lambda: sb.spiking_layers(_tiny_relu_net()))])
def test_signed_peers_name_their_install_command(monkeypatch, peer, package, call):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ImportError, match=peer.INSTALL.split()[-1]):
        call()


def test_spikingjelly_energy_counter_beside_ours():
    """Where SpikingJelly's counter and our cost model count the same thing (the ANN's MACs in its
    convolutions and linear layers; membranes read and written), they agree exactly."""
    from psnn_lib.paper1.conversion import compare_costs

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 36, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x = torch.rand(16, 1, 6, 6)
    out = compare_costs(model, [x[:8], x[8:]], x[:6], 8, [2, 8])
    rows = {r["quantity"].split(":")[0] + ":" + r["quantity"].split(":")[1]: r for r in out["comparison"]}
    for r in out["comparison"]:
        assert (r["SpikingJelly"] == r["ours"]) == (r["definition"] == "the same"), r
    assert rows["ANN: MACs of convolutions and linear layers"]["ours"] == 36 * 4 * 9 + 144 * 5 + 5 * 3
    assert rows["SNN, T = 8: neuron state bytes read and written"]["ours"] == (144 + 5) * 8 * 4 * 2
    energies = [p["energy (µJ)"] for p in out["spikingjelly"]]
    assert [p["K or T"] for p in out["spikingjelly"]] == [2, 8] and energies[0] < energies[1]
    with pytest.raises(ValueError, match="time steps"):
        sj.energy(model, x, [0])
