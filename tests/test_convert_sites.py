"""What the converter finds: in-place activations, ReLU's spellings, models
without sites, and the analog non-linearities it lists (issue 9, part 1)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psnn_lib as P


class InPlace(nn.Module):
    """One ReLU written in place, its result used or ignored."""

    def __init__(self, spelling: str, use_result: bool):
        super().__init__()
        self.l, self.o = nn.Linear(8, 32), nn.Linear(32, 4)
        self.act = nn.ReLU(inplace=True)
        self.spelling, self.use_result = spelling, use_result

    def forward(self, x):
        y = self.l(x)
        z = {
            "torch.relu_": lambda: torch.relu_(y),
            "F.relu(inplace=True)": lambda: F.relu(y, inplace=True),
            "F.relu_": lambda: F.relu_(y),
            "x.relu_()": lambda: y.relu_(),
            "nn.ReLU(inplace=True)": lambda: self.act(y),
            "x.clamp_(min=0)": lambda: y.clamp_(min=0),
            "F.hardtanh_(0, 6)": lambda: F.hardtanh_(y, 0.0, 6.0),
            "on a view": lambda: torch.relu_(y[:, :16]),
        }[self.spelling]()
        return self.o(z if self.use_result and self.spelling != "on a view" else y)


SPELLINGS = ["torch.relu_", "F.relu(inplace=True)", "F.relu_", "x.relu_()", "nn.ReLU(inplace=True)",
             "x.clamp_(min=0)", "F.hardtanh_(0, 6)", "on a view"]


@pytest.mark.parametrize("use_result", [True, False])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_in_place_activations_convert_with_or_without_their_result_used(spelling, use_result):
    torch.manual_seed(0)
    model, x = InPlace(spelling, use_result).eval(), torch.randn(256, 8) * 2
    with torch.no_grad():
        ann = model(x.clone())
        without = model.o(model.l(x))  # the model with its activation dropped
    snn, rep = P.convert(model, calibration=x, progress=False)
    assert len(rep.rows) == 1 and rep.rows[0].activation in ("relu", "relu6")
    with torch.no_grad():
        out = snn(x.clone())
    assert float((out - ann).abs().max()) < 2e-3  # the ReLU is there ...
    assert float((without - ann).abs().max()) > 0.1  # ... and dropping it would show


class Spelt(nn.Module):
    def __init__(self, spelling):
        super().__init__()
        self.l, self.o, self.spelling = nn.Linear(8, 32), nn.Linear(32, 4), spelling
        self.mod = {"nn.Hardtanh(0, 6)": nn.Hardtanh(0.0, 6.0), "nn.Threshold(0, 0)": nn.Threshold(0.0, 0.0)}.get(
            spelling, nn.Identity())

    def forward(self, x):
        y = self.l(x)
        y = {
            "clamp(min=0)": lambda: y.clamp(min=0),
            "torch.clamp(y, 0, 6)": lambda: torch.clamp(y, 0, 6),
            "clamp_min(0)": lambda: y.clamp_min(0),
            "maximum(y, 0)": lambda: torch.maximum(y, torch.tensor(0.0)),
            "maximum(y, zeros_like)": lambda: torch.maximum(y, torch.zeros_like(y)),
            "F.hardtanh(0, 6)": lambda: F.hardtanh(y, 0.0, 6.0),
            "F.threshold(0, 0)": lambda: F.threshold(y, 0.0, 0.0),
            "nn.Hardtanh(0, 6)": lambda: self.mod(y),
            "nn.Threshold(0, 0)": lambda: self.mod(y),
        }[self.spelling]()
        return self.o(y)


@pytest.mark.parametrize("spelling,activation", [
    ("clamp(min=0)", "relu"), ("torch.clamp(y, 0, 6)", "relu6"), ("clamp_min(0)", "relu"),
    ("maximum(y, 0)", "relu"), ("maximum(y, zeros_like)", "relu"), ("F.hardtanh(0, 6)", "relu6"),
    ("F.threshold(0, 0)", "relu"), ("nn.Hardtanh(0, 6)", "relu6"), ("nn.Threshold(0, 0)", "relu")])
def test_relu_spellings_are_relu_sites_and_convert_to_rate_too(spelling, activation):
    torch.manual_seed(0)
    model, x = Spelt(spelling).eval(), torch.randn(128, 8) * 4
    snn, rep = P.convert(model, "rate", calibration=x, progress=False, T=8)
    assert [r.activation for r in rep.rows] == [activation]
    assert not rep.notes


def test_other_clamps_are_not_activations():
    class Eps(nn.Module):
        def forward(self, x):
            return torch.log(x.clamp(min=1e-6)) + x.clamp(-1, 1)

    with pytest.warns(UserWarning, match="no activation site"):
        snn, rep = P.convert(Eps(), calibration=torch.rand(8, 3), progress=False)
    assert rep.rows == [] and "no activation site" in rep.notes[0]


def test_a_model_without_sites_says_so():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with pytest.warns(UserWarning, match="no activation site in Sequential was converted: .*nothing spikes"):
        snn, rep = P.convert(model, calibration=torch.randn(4, 3), progress=False)
    assert rep.rows == [] and len(rep.notes) == 1


class Gated(nn.Module):
    """Squeeze-excitation, LayerNorm, multi-head attention and SDPA."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.scale = nn.Parameter(torch.ones(8))

    def forward(self, x):
        y = torch.relu(self.conv(x))
        gate = torch.sigmoid(self.fc(y.mean((2, 3))))
        y = y * gate[:, :, None, None]  # squeeze-excitation: a product of two signals
        seq = self.norm(y.flatten(2).transpose(1, 2)) * self.scale  # a weight: not a gate
        seq = self.mha(seq, seq, seq, need_weights=False)[0]
        return F.scaled_dot_product_attention(seq, seq, seq).mean(1)


def test_every_analog_nonlinearity_is_listed():
    torch.manual_seed(0)
    snn, rep = P.convert(Gated().eval(), calibration=torch.randn(4, 3, 6, 6), progress=False)
    assert sorted(r.activation for r in rep.rows) == ["relu", "sigmoid"]
    analog = " | ".join(map(str, rep.kept_analog))
    for kind in ["mul (product of two signals)", "layer_norm (normalisation)", "mha: ", "attention",
                 "scaled_dot_product_attention (attention (softmax of products))"]:
        assert kind in analog, (kind, analog)
    assert sum("product of two signals" in str(a) for a in rep.kept_analog) == 1  # x * self.scale is a weight


def test_leftover_relu_clamp_in_an_untraceable_model_is_found():
    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(3, 3)

        def forward(self, x):
            y = self.l(x)
            return y.clamp(min=0) if y.sum() > -1e9 else y

    with pytest.warns(UserWarning, match="could not trace"), pytest.raises(P.ConversionError, match="clamp"):
        P.convert(Untraceable(), calibration=torch.randn(4, 3), progress=False)


@pytest.mark.parametrize("module", [nn.Hardtanh(-1.0, 1.0, inplace=True), nn.ELU(0.5, inplace=True),
                                    nn.CELU(0.7, inplace=True), nn.Threshold(0.1, -1.0, inplace=True)])
def test_in_place_modules_outside_the_table_are_fitted_on_their_function(module):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), module, nn.Linear(16, 4)).eval()
    x = torch.randn(64, 16)
    with torch.no_grad():
        ann = model(x.clone())
    snn, rep = P.convert(model, calibration=x, progress=False)
    assert rep.rows[0].activation.startswith("module:")
    with torch.no_grad():
        err = float((snn(x.clone()) - ann).abs().max())
    assert err < (0.05 if isinstance(module, nn.Threshold) else 2e-3)  # a step: one grid cell of error


def test_an_in_place_activation_of_the_input_sees_the_input_at_every_pass():
    class FirstRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.Linear(6, 3)

        def forward(self, x):
            torch.relu_(x)
            return self.h(x)

    torch.manual_seed(0)
    model, x = FirstRelu().eval(), torch.randn(64, 6)
    calibration = x.clone()
    snn, _ = P.convert(model, "rate", calibration=calibration, progress=False, T=256)
    assert torch.equal(calibration, x)  # the user's calibration data is not overwritten
    with torch.no_grad():
        ann, out = model(x.clone()), snn(x.clone())
    assert float((out - ann).abs().max()) < 0.05


def test_an_integer_clamp_is_an_index_not_an_activation():
    class LastToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.l = nn.Embedding(20, 8), nn.Linear(8, 2)

        def forward(self, ids, mask):
            last = (mask.sum(-1) - 1).clamp(min=0)
            h = torch.relu(self.emb(ids))
            return self.l(h[torch.arange(ids.shape[0]), last])

    torch.manual_seed(0)
    model = LastToken().eval()
    ids, mask = torch.randint(0, 20, (8, 5)), torch.ones(8, 5, dtype=torch.long)
    mask[:4, 3:] = 0
    with pytest.warns(UserWarning, match="sees integer inputs: not an activation"):
        snn, rep = P.convert(model, calibration={"ids": ids, "mask": mask}, progress=False)
    assert [r.activation for r in rep.rows] == ["relu"]
    with torch.no_grad():
        assert float((snn(ids, mask) - model(ids, mask)).abs().max()) < 2e-3


def test_a_layer_scale_is_a_weight_and_max_pooling_is_analog():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.gamma = nn.Conv2d(3, 4, 3, padding=1), nn.Parameter(torch.ones(4))
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            y = torch.relu(self.conv(x)) * self.gamma[:, None, None]  # a view of a parameter
            return self.pool(y).clamp(-1, 1)  # a clamp that is not a ReLU

    _, rep = P.convert(Scaled().eval(), calibration=torch.randn(4, 3, 8, 8), progress=False)
    analog = " | ".join(map(str, rep.kept_analog))
    assert "product of two signals" not in analog
    assert "pool: max_pool2d (max pooling)" in analog and "clamp (clamp)" in analog


def test_a_transformer_layer_converts_or_says_why_not():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 16)
    layer = nn.TransformerEncoderLayer(16, 2, 32, activation=nn.GELU(), batch_first=True, dropout=0.0).eval()
    with pytest.warns(UserWarning, match="could not trace"):
        snn, rep = P.convert(layer, calibration=x, progress=False)
    with torch.no_grad():  # the fused inference path would bypass the swapped GELU: it is switched off
        assert float((snn(x) - layer(x)).abs().max()) < 2e-3 and snn.spike_stats().spikes > 0
    assert any("self_attn: multi_head_attention_forward" in str(a) for a in rep.kept_analog)
    relu = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0).eval()  # F.relu, a function
    with pytest.warns(UserWarning), pytest.raises(P.ConversionError, match="relu .*outside any converted site"):
        P.convert(relu, calibration=x, progress=False)
