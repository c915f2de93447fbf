"""The time-invariant prefix of multi-pass inference (psnn_lib.converter.invariant): computed
once per inference, every pass's output bit for bit as with the whole graph per pass."""
import pytest
import torch
from torch import fx, nn

import psnn_lib as P
from psnn_lib.converter.engine import ConvertedModel
from psnn_lib.converter.invariant import split


class Net(nn.Module):
    def __init__(self, inplace: bool = False, noise: bool = False, features: bool = False, slope: float = 0.1) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 36, 3)
        self.act = nn.LeakyReLU(slope, inplace=inplace) if slope else nn.ReLU(inplace=inplace)
        self.noise, self.features = noise, features

    def forward(self, x):
        h = self.conv(x)
        if self.noise:
            h = h + 1e-3 * torch.rand_like(h)
        out = self.fc(self.act(h).flatten(1))
        return (out, h) if self.features else out


def _steps(snn, x, split: bool, monkeypatch) -> list:
    with monkeypatch.context() as m:
        if not split:
            m.setattr(ConvertedModel, "_split", lambda self, args, kwargs: None)
        with torch.no_grad():
            return [tuple(t.clone() for t in out) if isinstance(out, tuple) else out.clone() for out in snn.steps(x)]


@pytest.mark.parametrize("method,options", [("signed", {"T": 6}), ("rate", {"T": 5}), ("augmented", {"T": 4})])
def test_passes_give_the_same_bits_with_the_prefix_computed_once(method, options, monkeypatch):
    torch.manual_seed(0)
    model, x = Net(slope=0.0 if method == "rate" else 0.1).eval(), torch.randn(16, 1, 8, 8)
    snn, _ = P.convert(model, method, calibration=x, progress=False, **options)
    with torch.no_grad():
        cut = snn._split((x,), {})
    assert cut is not None and "conv" in cut.prefix.code and "self.conv(" not in cut.step.code
    calls = []
    monkeypatch.setattr(model.conv.__class__, "forward", lambda self, t, f=nn.Conv2d.forward: calls.append(1) or f(self, t))
    fast = _steps(snn, x, True, monkeypatch)
    assert len(calls) == 1  # once per inference, not once per pass
    slow = _steps(snn, x, False, monkeypatch)
    assert len(calls) == 1 + options["T"] and all(torch.equal(a, b) for a, b in zip(fast, slow))
    with torch.no_grad():
        averaged = snn(x)
        monkeypatch.setattr(ConvertedModel, "_split", lambda self, args, kwargs: None)
        assert torch.equal(averaged, snn(x))  # forward averages the same passes


def test_the_split_is_refused_where_skipping_could_change_a_result(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    snn, _ = P.convert(Net(inplace=True).eval(), "signed", calibration=x, T=3, progress=False)
    with torch.no_grad():
        assert snn._split((x,), {}) is None  # an in-place site writing into the value computed once
    graph = fx.symbolic_trace(Net(noise=True))  # a random prefix (the converter refuses such a model anyway)
    assert split(graph, lambda node: node.target == "act") is None
    assert split(fx.symbolic_trace(Net()), lambda node: node.target == "act") is not None
    snn, _ = P.convert(Net().eval(), "signed", calibration=x, T=3, progress=False)
    assert snn._split((x,), {}) is None  # gradients on: training through time keeps every pass whole
    snn.model.conv.train()
    with torch.no_grad():
        assert snn._split((x,), {}) is None  # a module of the prefix in training mode
        snn, _ = P.convert(Net().eval(), "ps", calibration=x, progress=False)
        assert len(_steps(snn, x, True, monkeypatch)) == 1  # one pass: nothing to split


def test_an_output_computed_once_is_a_fresh_tensor_at_every_pass(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    snn, _ = P.convert(Net(features=True).eval(), "signed", calibration=x, T=3, progress=False)
    with torch.no_grad():
        outs = list(snn.steps(x))
        assert snn._split((x,), {}) is not None
    features = [h for _, h in outs]
    features[0].add_(1.0)  # a caller writing into one pass's output touches no other pass
    assert torch.equal(features[1], features[2]) and not torch.equal(features[0], features[1])
    assert features[1].data_ptr() != features[2].data_ptr()
