"""The SpikingJelly peer: its rate-coded SNN converges to the ANN as T grows, its state
is reset between batches, SpikingJelly leaves no activation analog silently, and a missing package says
how to install it."""
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

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


def test_install_command_matches_the_pins():
    pins = set((ROOT / "requirements-data.txt").read_text().split())
    assert {w for w in sj.INSTALL.split() if "==" in w} <= pins
