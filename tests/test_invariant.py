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


class Alias(nn.Module):
    """An in-place site on a view of the input, which the head reads after it (as the ANN does)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act1, self.act2, self.fc2 = nn.Linear(6, 6), nn.ReLU(), nn.ReLU(inplace=True), nn.Linear(6, 3)

    def forward(self, x):
        a = self.act1(self.fc1(x))
        v = self.act2(x.view_as(a))
        return self.fc2(x) + v.sum(-1, keepdim=True)


class Features(nn.Module):
    """Returns a view of a value computed once beside the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)

    def forward(self, x):
        h = self.fc1(x)
        y = self.act(h)
        return self.fc2(y), h.view_as(y)


@pytest.mark.parametrize("model", [Alias, Features, lambda: Net(features=True, slope=0.0)])
def test_no_value_computed_once_is_written_into_or_shared_between_passes(model, monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(8, 6) if model in (Alias, Features) else torch.randn(8, 1, 8, 8)
    snn, _ = P.convert(model().eval(), "rate", calibration=x, T=4, progress=False)
    with torch.no_grad():
        assert snn._split((x,), {}) is None  # an in-place site; a value computed once reaching the output
    fast, slow = _steps(snn, x, True, monkeypatch), _steps(snn, x, False, monkeypatch)
    assert all(torch.equal(a, b) for f, s in zip(fast, slow) for a, b in zip(f if isinstance(f, tuple) else (f,),
                                                                         s if isinstance(s, tuple) else (s,)))


def test_the_cut_is_made_once_and_again_after_a_move_a_copy_or_a_pickle(monkeypatch):
    import copy
    import io

    from psnn_lib.converter import invariant
    cuts = []
    monkeypatch.setattr(invariant, "split", lambda *a, f=invariant.split: cuts.append(1) or f(*a))
    x = torch.randn(4, 1, 8, 8)
    snn, _ = P.convert(Net().eval(), "signed", calibration=x, T=3, progress=False)
    with torch.no_grad():
        snn(x), snn(x)
        assert len(cuts) == 1
        snn.double()
        snn(x.double())  # the cut's graphs would hold the float32 weights: cut again
        assert len(cuts) == 2
        buffer = io.BytesIO()
        torch.save(snn, buffer)
        buffer.seek(0)
        for other in (copy.deepcopy(snn), torch.load(buffer, weights_only=False)):
            assert torch.equal(other(x.double()), snn(x.double()))
        assert len(cuts) == 4


def test_no_value_computed_once_outlives_its_inference():
    x = torch.randn(4, 1, 8, 8)
    snn, _ = P.convert(Net().eval(), "signed", calibration=x, T=3, progress=False)
    with torch.no_grad():
        snn(x)
        assert snn._cut.frontier.values == ()
        steps = snn.steps(x)
        next(steps)
        assert len(snn._cut.frontier.values) == 1  # held while the inference runs
        steps.close()  # a caller that stops half way
        assert snn._cut.frontier.values == ()
