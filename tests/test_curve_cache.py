"""Paper 2's curve cache (psnn_lib.paper2.curve_cache): a second call reads what the first
computed, any other network, option or image set computes, and a damaged file is recomputed
with a warning, never read."""
import pytest
import torch
from torch import nn

import psnn_lib as P
from psnn_lib.paper2 import curve_cache
from psnn_lib.paper2.evaluation import accuracy_by_step


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 40), nn.LeakyReLU(0.1), nn.Linear(40, 4)).eval()


def _snn(net, x, T=6, **options):
    return P.convert(net, "signed", calibration=x, T=T, progress=False, **options)[0]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder, and a count of the curves actually computed."""
    monkeypatch.setenv("PSNN_CURVE_CACHE", str(tmp_path))
    runs = []

    def counted(*args, **kwargs):
        runs.append(1)
        return accuracy_by_step(*args, **kwargs)

    monkeypatch.setattr(curve_cache, "accuracy_by_step", counted)
    return tmp_path, runs


def _data():
    x = torch.randn(40, 12)
    return x, _net()(x).argmax(1)


def _same(a, b):
    return torch.equal(a.correct, b.correct) and a.spikes == b.spikes


@torch.no_grad()
def test_second_call_reads_the_first_curve(cache):
    folder, runs = cache
    x, y = _data()
    first = curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    second = curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    assert runs == [1] and len(list(folder.glob("*.pt"))) == 1
    assert _same(first, second) and _same(second, accuracy_by_step(_snn(_net(), x), x, y))


@torch.no_grad()
def test_another_network_option_image_set_or_label_computes(cache):
    _, runs = cache
    x, y = _data()
    curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    other = _net()
    other[0].weight.data[0, 0] += 1e-6  # one weight
    variants = [(_snn(other, x), x, y, "net"), (_snn(_net(), x, v_init=0.0), x, y, "net"),
                (_snn(_net(), x, T=7), x, y, "net"), (_snn(_net(), x[:20]), x, y, "net"),  # thresholds
                (_snn(_net(), x), x[1:], y[1:], "net"), (_snn(_net(), x), x, 1 - y, "net"),
                (_snn(_net(), x), x, y, "another label")]
    for snn, xs, ys, label in variants:
        got = curve_cache.cached_curve(snn, xs, ys, label)
        assert _same(got, accuracy_by_step(snn, xs, ys))
    assert len(runs) == 1 + len(variants)


@pytest.mark.parametrize("change", ["membrane shift", "threshold", "magnitude"])
def test_a_neuron_changed_after_conversion_is_another_network(change):
    x = torch.randn(8, 12)
    snn = _snn(_net(), x)
    before = curve_cache.model_digest(snn)
    neuron = next(iter(snn.neurons.values()))
    if change == "membrane shift":
        neuron.shift_membranes(1e-9)
    elif change == "threshold":
        neuron.p_th = neuron.p_th * (1 + 2 ** -52)
    else:
        neuron.max_magnitude = None
    assert curve_cache.model_digest(snn) != before


@torch.no_grad()
@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other key"])
def test_a_damaged_file_is_recomputed_with_a_warning(cache, damage):
    folder, runs = cache
    x, y = _data()
    first = curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    (path,) = folder.glob("*.pt")
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        stored = torch.load(path, weights_only=True)
        if damage == "flipped":
            stored["correct"][0, 0] = ~stored["correct"][0, 0]
        else:
            stored["key"] = "0" * 64
        torch.save(stored, path)
    with pytest.warns(RuntimeWarning, match="computing the curve again"):
        again = curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    assert runs == [1, 1] and _same(first, again)
    curve_cache.cached_curve(_snn(_net(), x), x, y, "net")  # rewritten: read without a warning
    assert runs == [1, 1]


@torch.no_grad()
def test_off_computes_every_time(cache, monkeypatch):
    _, runs = cache
    monkeypatch.setenv("PSNN_CURVE_CACHE", "off")
    x, y = _data()
    for _ in range(2):
        curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    assert runs == [1, 1]


class _Skip(nn.Module):
    """Net's weights with another forward (a flag read when it was traced)."""

    def __init__(self, skip: bool) -> None:
        super().__init__()
        self.net, self.skip = _net(), skip

    def forward(self, x):
        h = self.net[1](self.net[0](x))
        return self.net[2](h + h if self.skip else h)


@torch.no_grad()
def test_the_same_weights_with_another_graph_compute_and_an_unwritable_cache_warns(cache, monkeypatch):
    folder, runs = cache
    x = torch.randn(40, 12)
    y = _net()(x).argmax(1)
    curve_cache.cached_curve(_snn(_Skip(False).eval(), x), x, y, "net")
    curve_cache.cached_curve(_snn(_Skip(True).eval(), x), x, y, "net")
    assert runs == [1, 1]
    monkeypatch.setenv("PSNN_CURVE_CACHE", str(folder / "a-file"))
    (folder / "a-file").write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot write"):
        curve = curve_cache.cached_curve(_snn(_net(), x), x, y, "net")
    assert runs == [1, 1, 1] and _same(curve, accuracy_by_step(_snn(_net(), x), x, y))


def test_two_callers_at_once_compute_one_curve(cache):
    """Two notebooks asking for one curve at the same time (the runner's two jobs): the one
    that takes the lock computes it, the other waits and reads it."""
    import threading
    import time

    folder, runs = cache
    x, y = _data()
    slow = curve_cache.accuracy_by_step

    def slower(*args, **kwargs):
        time.sleep(0.5)  # long enough for the second caller to arrive meanwhile
        return slow(*args, **kwargs)

    curve_cache.accuracy_by_step = slower
    try:
        curves, snns = [], [_snn(_net(), x) for _ in range(2)]  # made here: the threads share one RNG

        def ask(snn):
            with torch.no_grad():
                curves.append(curve_cache.cached_curve(snn, x, y, "net"))

        threads = [threading.Thread(target=ask, args=(snn,)) for snn in snns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        curve_cache.accuracy_by_step = slow
    assert runs == [1] and len(curves) == 2 and _same(*curves)
