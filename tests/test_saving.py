"""A converted model round-trips: torch.save of the whole model, and the
converted state as JSON, rebuilt in a fresh process (issue 9, part 4)."""
import io
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import psnn_lib as P

NETWORKS = {
    "gelu": lambda: nn.Sequential(nn.Linear(6, 24), nn.GELU(), nn.Linear(24, 24), nn.LeakyReLU(0.1),
                                  nn.Linear(24, 3)),
    "leaky": lambda: nn.Sequential(nn.Linear(6, 24), nn.LeakyReLU(), nn.Linear(24, 3)),
    "relu": lambda: nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 3)),
}


def build(kind: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return NETWORKS[kind]().eval(), torch.randn(64, 6) * 2


def outputs_and_spikes(snn, x):
    snn.reset_stats()
    with torch.no_grad():
        out = snn(x)
    return out, snn.spike_stats().spikes


@pytest.mark.parametrize("kind,method,options", [("gelu", "ps", {}), ("leaky", "ps", {"mode": "stepped"}),
                                                  ("relu", "fs", {}), ("relu", "rate", {"T": 8})])
def test_torch_save_and_load_of_the_whole_model(kind, method, options):
    model, x = build(kind)
    snn, _ = P.convert(model, method, calibration=x, progress=False, **options)
    before = outputs_and_spikes(snn, x)
    buffer = io.BytesIO()
    torch.save(snn, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    after = outputs_and_spikes(again, x)
    assert torch.equal(before[0], after[0]) and before[1] == after[1] > 0


@pytest.mark.parametrize("kind,method", [("gelu", "ps"), ("relu", "fs"), ("relu", "rate")])
def test_saved_state_rebuilds_an_identical_snn_in_a_fresh_process(tmp_path, kind, method):
    model, x = build(kind)
    snn, _ = P.convert(model, method, calibration=x, progress=False, observer=99.0)
    out, spikes = outputs_and_spikes(snn, x)
    path = P.save_converted(snn, tmp_path / "snn.json")
    state = json.loads(path.read_text())
    assert state["method"] == method and set(state["sites"]) == set(snn.neurons)
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from test_saving import build, outputs_and_spikes
        import psnn_lib as P
        model, x = build({kind!r})
        snn, _ = P.load_converted(model, {str(path)!r})
        out, spikes = outputs_and_spikes(snn, x)
        torch.save({{"out": out, "spikes": spikes}}, {str(tmp_path / 'out.pt')!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    fresh = torch.load(tmp_path / "out.pt")
    assert torch.equal(fresh["out"], out) and fresh["spikes"] == spikes


def test_a_file_that_does_not_match_is_a_clear_error(tmp_path):
    model, x = build("gelu")
    snn, _ = P.convert(model, calibration=x, progress=False)
    path = P.save_converted(snn, tmp_path / "snn.json")
    with pytest.raises(ValueError, match=r"unknown \['_3'\]"):
        P.load_converted(nn.Sequential(nn.Linear(6, 24), nn.GELU()), path)
    other = nn.Sequential(nn.Linear(6, 24), nn.SiLU(), nn.Linear(24, 24), nn.LeakyReLU(0.1), nn.Linear(24, 3))
    with pytest.raises(P.ConversionError, match=r"_1 \(saved gelu, now silu\)"):
        P.load_converted(other, path)
    state = json.loads(path.read_text())
    state["sites"]["_1"]["fingerprint"] = "0" * 16  # as if another version built another neuron
    path.write_text(json.dumps(state))
    with pytest.raises(P.ConversionError, match=r"_1 \(its neuron differs\)"):
        P.load_converted(model, path)
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a saved converted model"):
        P.load_converted(model, path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="not a saved converted model"):
        P.load_converted(model, path)


def test_a_conversion_with_sites_kept_analog_reloads_with_them_analog(tmp_path):
    _, x = build("relu")
    model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 24), nn.GELU(), nn.Linear(24, 3)).eval()
    with pytest.warns(UserWarning, match="not converted"):
        snn, rep = P.convert(model, "rate", calibration=x, progress=False, strict=False, T=8)
    assert [r.site for r in rep.rows] == ["_1"] and rep.unconverted
    out, spikes = outputs_and_spikes(snn, x)
    path = P.save_converted(snn, tmp_path / "snn.json")
    with pytest.warns(UserWarning, match="not converted"):
        again, _ = P.load_converted(model, path)
    again_out, again_spikes = outputs_and_spikes(again, x)
    assert torch.equal(again_out, out) and again_spikes == spikes > 0
