import pytest
import torch

from psnn_lib import PSNeuron, fit_ps, known_activations


@pytest.fixture(scope="module")
def fits():
    return {name: fit_ps(name, -6, 6, 0.01, 1e-3) for name in known_activations()}


@pytest.mark.parametrize("name", known_activations())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stepped_and_fast_agree_spike_for_spike(fits, name, dtype):
    p = fits[name]
    x = (torch.randn(4, 3000, dtype=torch.float64) * 4).to(dtype)  # includes inputs beyond [-6, 6]
    fast, stepped = PSNeuron(p, "fast"), PSNeuron(p, "stepped")
    a, b = fast(x), stepped(x)
    assert a.dtype == dtype and a.shape == x.shape
    assert torch.equal(a, b)
    assert fast.stats.spikes == stepped.stats.spikes > 0
    assert fast.stats.clipped == stepped.stats.clipped > 0


def test_spikes_are_binary_and_membrane_follows_eq2(fits):
    p = fits["gelu"]
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    tr = PSNeuron(p, "stepped").simulate(x, record=True)
    assert tr.spikes.dtype == torch.bool
    idx = torch.round((x + 6) / p.delta).long()
    for t in range(p.K - 1):  # v(t+1) = z h(t+1) + (1 - z) v(t)
        z = tr.spikes[t].double()
        assert torch.equal(tr.membrane[t + 1], z * p.h[t + 1][idx] + (1 - z) * tr.membrane[t])
        assert torch.equal(tr.spikes[t], tr.membrane[t] >= p.T[t])  # Eq. 1
    # Eq. 3: the final output is sum d z + b
    assert torch.allclose(tr.accumulated[-1], (tr.spikes.double() * p.d[:, None]).sum(0) + p.b)


def test_spike_count_matches_table_and_fire_rate(fits):
    p = fits["silu"]
    n = PSNeuron(p, "stepped")
    x = torch.rand(1000, dtype=torch.float64) * 12 - 6
    tr = n.simulate(x, record=True)
    assert n.stats.spikes == int(tr.spikes.sum()) == int(p.spike_count[torch.round((x + 6) / p.delta).long()].sum())
    assert n.stats.neurons == 1000
    assert n.stats.fire_rate == pytest.approx((n.stats.spikes / 1000 + 1) / p.K)  # Eq. 26


@pytest.mark.parametrize("mode", ["fast", "stepped"])
def test_nan_gives_nan_and_no_spikes(fits, mode):
    n = PSNeuron(fits["relu"], mode)
    out = n(torch.tensor([float("nan"), 1.0, float("nan")]))
    assert torch.isnan(out[0]) and torch.isnan(out[2]) and out[1] == pytest.approx(1.0, abs=0.01)
    assert n.stats.spikes == int(fits["relu"].spike_count[int(round(7 / fits["relu"].delta))])


@pytest.mark.parametrize("mode", ["fast", "stepped"])
def test_empty_input(fits, mode):
    n = PSNeuron(fits["gelu"], mode)
    out = n(torch.empty(0, 5))
    assert out.shape == (0, 5) and n.stats.neurons == 0


def test_bad_mode_and_integer_input(fits):
    with pytest.raises(ValueError, match="mode"):
        PSNeuron(fits["gelu"], "analog")
    with pytest.raises(TypeError, match="floating-point"):
        PSNeuron(fits["gelu"])(torch.arange(3))


def test_neuron_is_an_nn_module_in_a_model(fits):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), PSNeuron(fits["gelu"]), torch.nn.Linear(8, 2))
    with torch.no_grad():
        ref = torch.nn.Sequential(model[0], torch.nn.GELU(), model[2])
        x = torch.randn(16, 4)
        assert torch.allclose(model(x), ref(x), atol=0.05)


def test_fast_neuron_holds_no_reset_table_and_builds_it_for_the_stepped_path(fits):
    p = fits["gelu"]
    n = PSNeuron(p)
    x = torch.randn(5000) * 4
    fast = n(x)
    assert n.params.tables is None and p.tables is not None  # the caller's params are not touched
    small = n.table_bytes()
    assert small == (p.grid.numel() + 2) * 8 + 2 * p.K * 8  # float32 output and count packed in 8 bytes, d, T
    assert small * (p.K - 1) < p.h.numel() * p.h.element_size()  # h holds K float64 per point
    n.mode = "stepped"
    spikes = n.stats.spikes
    assert torch.equal(n(x), fast) and n.stats.spikes == 2 * spikes > 0
    assert torch.equal(n.params.h, p.h) and n.table_bytes() > small + p.h.numel() * 8


def test_neuron_pickles_and_rebuilds_its_reset_table(tmp_path, fits):
    n = PSNeuron(fit_ps("gelu", -6, 6, 0.01, 1e-3), "stepped")  # refit recipe: fit_ps on a name
    torch.save(n, tmp_path / "n.pt")
    loaded = torch.load(tmp_path / "n.pt", weights_only=False)
    x = torch.randn(1000) * 4
    assert loaded.params.tables is None and torch.equal(loaded(x), PSNeuron(fits["gelu"])(x))


def test_back_to_the_fast_path_frees_the_reset_table(fits):
    n = PSNeuron(fits["gelu"], "stepped")
    x = torch.randn(1000) * 4
    n(x)
    stepped = n.table_bytes()
    n.mode = "fast"
    assert n.table_bytes() * 10 < stepped and torch.equal(n(x), PSNeuron(fits["gelu"])(x))
    with pytest.raises(ValueError, match="mode must be one of"):
        n.mode = "slow"


def test_stepped_trace_of_nan_and_clipped_inputs(fits):
    """Inputs simulated once per grid point and read back: a NaN input never spikes and its
    membrane reads NaN; inputs beyond [l, r] follow the end points' dynamics."""
    p = fits["gelu"]
    x = torch.tensor([float("nan"), -9.0, -6.0, 0.5, 6.0, 9.0, float("nan")], dtype=torch.float64)
    tr = PSNeuron(p, "stepped").simulate(x, record=True)
    nan = torch.isnan(x)
    assert not tr.spikes[:, nan].any() and torch.isnan(tr.membrane[:, nan]).all()
    assert torch.isnan(tr.accumulated[:, nan]).all()
    assert torch.equal(tr.membrane[:, 1], tr.membrane[:, 2]) and torch.equal(tr.membrane[:, 4], tr.membrane[:, 5])
    assert torch.equal(tr.accumulated[-1][~nan], PSNeuron(p, "fast")(x)[~nan])
