"""The cost model (psnn_lib.converter.cost) on networks counted by hand: a 2-layer MLP and a
1-conv CNN, each method's spike costs, analog layers, and the checks on bad input."""
import pytest
import torch
from torch import nn

import psnn_lib as P
from psnn_lib.converter.cost import PRESETS, EnergyModel
from psnn_lib.converter.registry import SpikeCost

E = EnergyModel()


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()


def _converted(model, x, method, **options):
    cm, _ = P.convert(model, method, calibration=x, progress=False, **options)
    with torch.no_grad():  # an inference: the converter computes the invariant prefix once
        cm(x)
    return cm, cm.spike_stats().spikes  # spikes per sample, the one measured input of the counts


def test_mlp_ann_counts_by_hand():
    cm, _ = _converted(_mlp(), torch.randn(5, 4), "ps", K=4)
    ann = cm.cost().ann
    assert ann.macs == 4 * 3 + 3 * 2            # every product of both layers, once
    assert ann.acs == 3 + 2                     # one bias add per output
    assert ann.parameter_bytes == 4 * (12 + 3 + 6 + 2)  # float32 weights and biases read once
    assert ann.state_bytes == 0


@pytest.mark.parametrize("K", [4, 8])
def test_mlp_ps_counts_by_hand(K):
    cm, spikes = _converted(_mlp(), torch.randn(5, 4), "ps", K=K)
    snn = cm.cost().snn
    assert snn.macs == 12                       # the first layer, on real-valued input, once
    # 2 synapses per spike; 2 receivers double their sums at each of K steps; 3 + 2 bias adds;
    # 3 neurons update at each of K steps
    assert snn.acs == pytest.approx(spikes * 2 + 2 * K + 3 + 2 + 3 * K)
    assert snn.parameter_bytes == 4 * (12 + 3) + 4 * (K * 6 + 2)  # layer 2's weights at every step
    assert snn.state_bytes == 3 * K * 4 * (2 + 1)  # membrane read and written, reset h_i(t) read


def test_mlp_rate_and_fs_counts_by_hand():
    x = torch.randn(5, 4)
    cm, spikes = _converted(_mlp(), x, "rate", T=8)
    snn = cm.cost().snn
    assert snn.macs == 12                       # the invariant first layer runs once, not T times
    assert snn.acs == pytest.approx(spikes * 2 + 8 * 2 + 3 + 3 * 8)  # no receiver work: theta folds in
    assert snn.parameter_bytes == 4 * (12 + 3) + 4 * 8 * (6 + 2)
    assert snn.state_bytes == 3 * 8 * 4 * 2
    cm.reset_stats()
    cm(x)  # with gradients on, every pass runs the whole graph: the first layer T times
    assert cm.cost().snn.macs == 12 * 8
    cm, spikes = _converted(_mlp(), x, "fs", K=16)
    snn = cm.cost().snn
    assert snn.macs == 12 + 2 * 16              # each receiver multiplies each step's sum by d(t)
    assert snn.acs == pytest.approx(spikes * 2 + 2 + 3 + 3 * 16)


def test_cnn_counts_by_hand():
    x = torch.randn(3, 1, 6, 6)
    cm, spikes = _converted(_cnn(), x, "ps", K=8)
    cost = cm.cost()
    assert cost.ann.macs == 72 * 9 + 72 * 3     # conv: 2 x 6 x 6 outputs of 9 products; linear: 3 x 72
    assert cost.ann.parameter_bytes == 4 * (18 + 2 + 216 + 3)
    assert cost.snn.macs == 72 * 9
    assert cost.snn.acs == pytest.approx(spikes * 3 + 3 * 8 + 2 * 36 + 3 + 72 * 8)
    assert cost.snn.parameter_bytes == 4 * (18 + 2) + 4 * (8 * 216 + 3)
    rows = cost.table()
    assert list(rows.index) == ["0", "3", "_1"] and rows.loc["3", "macs"] == 0
    assert cost.totals()["snn_pj_ops"] == pytest.approx(cost.snn.macs * 4.6 + cost.snn.acs * 0.9)
    memory = cost.snn.parameter_bytes + cost.snn.state_bytes
    assert cost.totals()["snn_pj_total"] == pytest.approx(cost.totals()["snn_pj_ops"] + memory * 24.96)


def test_conv_after_a_site_counts_its_fanout():
    """Spikes into a strided convolution: each drives out_channels * kernel area / stride area weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1)).eval()
    x = torch.randn(2, 1, 8, 8)
    cm, spikes = _converted(model, x, "rate", T=4)
    cost = cm.cost()
    assert cost.ann.macs == 4 * 64 * 9 + 6 * 16 * 4 * 9
    assert cost.snn.acs == pytest.approx(spikes * 6 * 9 / 4 + 4 * 6 * 16 + 4 * 64 + 4 * 256)


def test_signed_spikes_by_their_values():
    """A signed neuron is a pair of membranes; a negative spike worth another value than a positive one
    needs a second weight copy (signed), one worth as much is a subtraction (ibt); an augmented
    spike multiplies its weight by its magnitude."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.1), nn.Linear(3, 2)).eval()
    x = torch.randn(20, 4)
    cm, spikes = _converted(model, x, "signed", T=8)
    snn = cm.cost().snn
    # events, receivers subtracting the second sum, 8 x 2 bias adds, layer 1's 3, two membranes per neuron
    assert snn.acs == pytest.approx(spikes * 2 + 2 * 8 + 8 * 2 + 3 + 3 * 8 * 2)
    assert snn.parameter_bytes == 4 * 15 + 4 * (8 * 2 * 6 + 8 * 2)
    assert snn.state_bytes == 3 * 8 * 4 * 2 * 2
    cm, spikes = _converted(model, x, "ibt", T=8)
    snn = cm.cost().snn
    assert snn.acs == pytest.approx(spikes * 2 + 8 * 2 + 3 + 3 * 8 * 2)  # a sign: add or subtract
    assert snn.parameter_bytes == 4 * 15 + 4 * (8 * 6 + 8 * 2)
    cm, spikes = _converted(model, x, "augmented", T=8)
    assert cm.cost().snn.macs == pytest.approx(12 + spikes * 2)  # a magnitude multiplies its weight
    cm, spikes = _converted(model, x, "unsigned", T=8)
    assert cm.cost().snn.state_bytes == 3 * 8 * 4 * 2  # no negative spikes: one membrane


def test_analog_inputs_and_products_cost_macs_at_every_pass():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.norm, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.LayerNorm(6), nn.Linear(6, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            g = self.b(h)
            return self.c(self.norm(g * g))  # a product of two signals, a normalisation, then a layer

    torch.manual_seed(0)
    x = torch.randn(5, 4)
    cm, spikes = _converted(Block().eval(), x, "rate", T=4)
    rows = cm.cost().table()
    assert rows.loc["b", "macs"] == 0 and rows.loc["b", "acs"] == pytest.approx(spikes * 6 + 4 * 6)
    product = [n for n in rows.index if "product" in n]
    norm = [n for n in rows.index if "layer_norm" in n]
    assert len(product) == len(norm) == 1
    assert rows.loc[product[0], "macs"] == 4 * 6 and rows.loc[norm[0], "macs"] == 4 * 6
    assert rows.loc["c", "macs"] == 4 * 12 and rows.loc["c", "parameter_bytes"] == 4 * 4 * 14


def test_matmul_and_attention_macs():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(4, 4)

        def forward(self, x):  # (batch, 3 tokens, 4)
            h = torch.relu(self.q(x))
            scores = h @ h.transpose(-1, -2)
            out = torch.nn.functional.scaled_dot_product_attention(h, h, h)
            return scores.sum() + out.sum() + torch.einsum("bik,bjk->bij", h, h).sum()

    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)
    cm, _ = _converted(Attn().eval(), x, "ps", K=4)
    rows = cm.cost().table()
    macs = {n.split(": ")[1].split(" ")[0]: m for n, m in rows["ann_macs"].items() if ": " in n}
    assert macs["matmul"] == 3 * 3 * 4 and macs["einsum"] == 3 * 3 * 4
    assert macs["scaled_dot_product_attention"] == 3 * 3 * (4 + 4 + 1)


def test_swapped_model_has_the_traced_models_census():
    """A model that does not trace (its modules swapped) is costed like the same model traced."""
    class Untraceable(nn.Sequential):
        def forward(self, x):
            if x.sum() > -1e9:  # data-dependent control flow: torch.fx refuses it
                return super().forward(x)
            return x

    x = torch.randn(3, 1, 6, 6)
    traced, _ = P.convert(_cnn(), "ps", calibration=x, progress=False, K=4)
    with pytest.warns(UserWarning, match="could not trace"):
        swapped, _ = P.convert(Untraceable(*_cnn()), "ps", calibration=x, progress=False, K=4)
    for cm in (traced, swapped):
        cm(x)
    a, b = traced.cost(), swapped.cost()
    assert a.ann == b.ann and a.snn == b.snn


def test_census_on_the_first_call_without_calibration_data():
    """Converted from intervals alone, the model takes its census on its first call: the same cost."""
    x = torch.randn(6, 4)
    plain, _ = P.convert(_mlp(), "ps", interval=(-3.0, 3.0), progress=False, K=4)
    with pytest.raises(RuntimeError, match="no input has run"):
        plain.cost()
    given, _ = P.convert(_mlp(), "ps", interval=(-3.0, 3.0), calibration=x, progress=False, K=4)
    for cm in (plain, given):
        cm(x)
    assert plain.census == given.census and plain.cost().snn == given.cost().snn


def test_energy_models():
    assert PRESETS["fp32"] == E and E.e_mac_pj == pytest.approx(3.7 + 0.9) and E.e_ac_pj == 0.9
    assert EnergyModel.preset("int8").value_bytes == 1
    with pytest.raises(ValueError, match="unknown energy preset"):
        EnergyModel.preset("fp64")
    for bad in ({"e_mac_pj": float("nan")}, {"e_ac_pj": -1.0}, {"value_bytes": 0}, {"value_bytes": 2.0},
                {"e_memory_pj_per_byte": True}):
        with pytest.raises(ValueError):
            EnergyModel(**bad)
    x = torch.randn(5, 4)
    cm, _ = _converted(_mlp(), x, "ps", K=4)
    fp32, int8 = cm.cost(), cm.cost(EnergyModel.preset("int8"))
    assert int8.ann.macs == fp32.ann.macs and int8.ann.parameter_bytes == fp32.ann.parameter_bytes / 4


def test_spike_cost_checks():
    with pytest.raises(ValueError, match="'ac' or 'mac'"):
        SpikeCost(event="shift")
    for bad in ({"receiver_acs": -1}, {"weight_copies": 0}, {"table_values": 1.5}, {"state_values": True}):
        with pytest.raises(ValueError):
            SpikeCost(**bad)


def test_a_curve_priced_at_step_t_is_the_model_run_for_t_steps():
    """The cost of a T = 12 run read at step 8 of its accuracy-against-T curve equals that of the
    same conversion with T = 8 run on the same images (the first 8 passes are the same)."""
    from psnn_lib.paper2.evaluation import accuracy_by_step

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.1), nn.Linear(8, 3)).eval()
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    short, _ = P.convert(model, "signed", calibration=x, progress=False, T=8)
    with torch.no_grad():
        short(x)
    long, _ = P.convert(model, "signed", calibration=x, progress=False, T=12)
    curve = accuracy_by_step(long, x, y)
    assert curve.spikes[-1] > curve.spikes[7] > 0
    at8 = long.cost(spikes=curve.spikes_at(8), steps=8)
    assert at8.snn.acs == pytest.approx(short.cost().snn.acs) and at8.snn == pytest.approx(short.cost().snn)
    assert long.cost(spikes=curve.spikes_at(12), steps=12).snn.acs > at8.snn.acs
    for bad in ({"steps": 13}, {"steps": 0}, {"steps": 8.0}, {"steps": None}):
        with pytest.raises(ValueError, match="steps"):
            long.cost(spikes=curve.spikes_at(8), **bad)
    with pytest.raises(ValueError, match="every site"):
        long.cost(spikes={"nowhere": 1.0}, steps=8)
    with pytest.raises(ValueError, match="finite"):
        long.cost(spikes=dict.fromkeys(curve.site_spikes, float("nan")), steps=8)
    with pytest.raises(ValueError, match="steps goes with spikes"):
        long.cost(steps=8)
    ps, _ = P.convert(model, "ps", calibration=x, progress=False, K=4)
    with pytest.raises(ValueError, match="one pass"):
        ps.cost(spikes={n: 1.0 for n in ps.neurons}, steps=1)


class Sliced(nn.Module):
    """One ReLU's 6 outputs, the first 2 into one layer and the other 4 into another."""

    def __init__(self):
        super().__init__()
        self.a, self.c, self.d = nn.Linear(4, 6), nn.Linear(2, 5), nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(h[:, :2]) + self.d(h[:, 2:])


def test_a_slice_passes_on_its_share_of_the_spikes():
    cm, _ = _converted(Sliced().eval(), torch.randn(8, 4), "rate", T=4)
    assert cm.census.fanouts() == {"relu": pytest.approx(5.0)}  # each neuron reaches one layer of 5
    rows = cm.cost().table()
    assert rows.loc["c", "ann_macs"] == 10 and rows.loc["d", "ann_macs"] == 20
    assert [n for n in rows.index if "add" in n]  # the sum of the two layers: one add per output


class Products(nn.Module):
    """Weights used as matrices: ``h @ W``, ``einsum`` with a weight, ``F.linear`` on a view of one."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.W, self.V, self.U = (nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(3, 2)),
                                  nn.Parameter(torch.randn(2, 4)))

    def forward(self, x):
        h = torch.relu(self.a(x))
        g = h @ self.W
        return torch.einsum("bi,ij->bj", g, self.V) + nn.functional.linear(h, self.U.t()[:, :2].t())


def test_products_with_weights_are_weight_layers():
    cm, spikes = _converted(Products().eval(), torch.randn(6, 4), "rate", T=4)
    cost = cm.cost()
    assert cost.ann.macs == 16 + 12 + 6 + 8  # a, h @ W, the einsum, the functional linear
    rows = cost.table()
    einsum = rows.loc[[n for n in rows.index if "einsum" in n][0]]
    assert einsum["macs"] == 4 * 6  # its input came out of a weight layer: analog, dense at every pass
    assert cm.census.fanouts() == {"relu": pytest.approx(3 + 2)}  # h drives W's 3 and the linear's 2


def test_multihead_attention_counts_its_projections_and_weights():
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.mha = nn.Linear(8, 8), nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            return self.mha(h, h, h, need_weights=False)[0]

    x = torch.randn(3, 5, 8)
    cm, _ = _converted(Block().eval(), x, "ps", K=4)
    rows = cm.cost().table()
    mha = rows.loc[[n for n in rows.index if "attention" in n][0]]
    L, E, heads = 5, 8, 2
    assert mha["ann_macs"] == 4 * L * E * E + L * L * (2 * E + heads)
    assert mha["parameter_bytes"] == 4 * (3 * E * E + E * E + 3 * E + E)


def test_batch_norm_counts_as_folded_and_transposed_convolutions_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.ConvTranspose2d(2, 3, 2, stride=2)).eval()
    x = torch.randn(2, 1, 4, 4)
    cm, spikes = _converted(model, x, "rate", T=4)
    cost = cm.cost()
    assert cost.ann.macs == 32 * 9 + 32 * 3 * 4  # the conv; each of 32 inputs into 3 x 2 x 2 outputs
    assert cost.ann.acs == 32 + 3 * 8 * 8  # batch norm's folded bias, the transposed conv's bias
    assert cost.snn.acs == pytest.approx(spikes * 12 + 4 * 192 + 32 + 32 * 4)
    assert cm.census.fanouts() == {"_2": 12.0}


def test_every_shape_has_its_census():
    """A sequence model run on longer inputs than it was calibrated on is priced at their length."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    cm, _ = P.convert(model, "ps", calibration=torch.randn(2, 5, 4), progress=False, K=4)
    cm(torch.randn(3, 20, 4))
    assert cm.cost().ann.macs == 20 * (24 + 12)  # per sample: 20 positions, not the calibration's 5
    cm.reset_stats()
    cm(torch.randn(2, 5, 4)), cm(torch.randn(2, 20, 4))
    assert cm.cost().ann.macs == (5 + 20) / 2 * 36  # each call at its own shapes


def test_einsum_with_an_ellipsis():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(4, 4)

        def forward(self, x):
            h = torch.relu(self.q(x))
            return torch.einsum("...ij,...kj->...ik", h, h).sum()

    cm, _ = _converted(Attn().eval(), torch.randn(2, 3, 4), "ps", K=4)
    rows = cm.cost().table()
    assert rows.loc[[n for n in rows.index if "einsum" in n][0], "ann_macs"] == 3 * 3 * 4


def test_a_model_pickled_before_censuses_takes_them_anew():
    cm, _ = _converted(_mlp(), torch.randn(5, 4), "ps", K=4)
    state = cm.__getstate__()
    for key in ("_censuses", "_runs"):
        del state[key]
    state["_synapses"] = {"_1": 2.0}  # what older models held
    old = type(cm).__new__(type(cm))
    old.__setstate__(state)
    old.reset_stats()
    old(torch.randn(5, 4))
    assert old.cost().ann == cm.cost().ann and not hasattr(old, "_synapses")


def test_a_census_during_training_changes_nothing():
    """A call in training mode with inputs of a new shape takes its census in eval mode, with the
    random state restored: batch norm's running statistics and the random stream are untouched."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2))
    cm, _ = P.convert(model.eval(), "signed", interval=(-3.0, 3.0), progress=False, T=4)
    bn = cm.model.get_submodule("1")
    cm.train()
    x = torch.randn(8, 4)
    torch.manual_seed(1)
    cm._take_census(((x,), {}))
    after_census = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after_census)  # no draw was consumed
    assert torch.equal(bn.running_mean, torch.zeros(6)) and cm.training and bn.training


def test_a_failing_census_never_stops_a_call(monkeypatch):
    """A census that fails (here: an operation it cannot follow) is a warning after the call has run,
    and the costs of those shapes are an error that says so; the call's own result is unchanged."""
    from psnn_lib.converter import engine

    cm, _ = _converted(_mlp(), torch.randn(5, 4), "ps", K=4)

    def fails(*args, **kwargs):
        raise RuntimeError("cannot follow")

    monkeypatch.setattr(engine, "take_census", fails)
    x = torch.randn(3, 7, 4)
    with pytest.warns(UserWarning, match="census of this model's layers failed.*cannot follow"):
        out = cm(x)
    assert out.shape == (3, 7, 2) and cm.spike_stats().synops is None
    with pytest.raises(ValueError, match="census failed"):
        cm.cost()
    with pytest.raises(TypeError, match="preset's name"):
        cm.cost(3.0)


def test_energy_by_preset_name():
    cm, _ = _converted(_mlp(), torch.randn(5, 4), "ps", K=4)
    assert cm.cost("int8").energy == EnergyModel.preset("int8")
    with pytest.raises(ValueError, match="unknown energy preset"):
        cm.cost("fp64")


def test_products_of_two_signals_in_every_spelling_and_attention_by_keyword():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.W = nn.Linear(4, 4), nn.Parameter(torch.randn(8, 4))

        def forward(self, x):  # (batch, 3, 4)
            h = torch.relu(self.a(x))
            m = torch.bmm(h, h.transpose(1, 2)).sum() + torch.mm(h[0], h[0].t()).sum()
            e = torch.einsum("de,b...d->b...e", self.W[:4], h.unsqueeze(1)).sum()
            att = nn.functional.scaled_dot_product_attention(query=h, key=h, value=h)
            return m + e + att.sum()

    cm, _ = _converted(Model().eval(), torch.randn(2, 3, 4), "ps", K=4)
    macs = {n.split(": ")[1].split(" ")[0]: m for n, m in cm.cost().table()["ann_macs"].items() if ": " in n}
    assert macs["bmm"] == 3 * 3 * 4 and macs["mm"] == 3 * 3 * 4 / 2  # one of the two samples' rows, per sample
    assert macs["einsum"] == 3 * 4 * 4 and macs["scaled_dot_product_attention"] == 3 * 3 * 9
    report = P.convert(Model().eval(), "ps", calibration=torch.randn(2, 3, 4), progress=False, K=4)[1]
    assert {op.op for op in report.kept_analog} >= {"bmm", "mm"}  # listed as analog, as matmul is


def test_an_average_passes_on_graded_values_not_spikes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    x = torch.randn(4, 1, 6, 6)
    cm, spikes = _converted(model, x, "rate", T=8)
    rows = cm.cost().table()
    pool = rows.loc[[n for n in rows.index if "adaptive_avg_pool2d" in n][0]]
    assert pool["ann_macs"] == 0 and pool["acs"] == 8 * 144  # its 144 inputs added at each of 8 passes
    assert rows.loc["4", "macs"] == 8 * 12  # the layer after it: dense at every pass, not spikes x 3
    assert cm.spike_stats().synops == 0
