"""Models that take more than one tensor, calibration batches of every shape,
option checks and hostile calibration data (issue 9, parts 3 and 5)."""
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import psnn_lib as P


class Tokens(nn.Module):
    """A model called like a Hugging Face one: ids and an attention mask."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc, self.out = nn.Embedding(50, 16), nn.Linear(16, 16), nn.Linear(16, 2)

    def forward(self, input_ids, attention_mask=None):
        h = nn.functional.gelu(self.fc(self.emb(input_ids)))
        mask = attention_mask[..., None].float() if attention_mask is not None else torch.ones_like(h[..., :1])
        return self.out((h * mask).sum(1) / mask.sum(1))


@pytest.fixture
def tokens():
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (12, 7))
    mask = torch.ones(12, 7, dtype=torch.long)
    mask[:, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("shape", ["dict", "list of dicts", "tuple of args", "(args, labels)"])
def test_calibration_batches_as_loaders_yield_them(tokens, shape):
    ids, mask = tokens
    model = Tokens().eval()
    calibration = {
        "dict": {"input_ids": ids, "attention_mask": mask},
        "list of dicts": [{"input_ids": ids[:6], "attention_mask": mask[:6]},
                          {"input_ids": ids[6:], "attention_mask": mask[6:]}],
        "tuple of args": [((ids, mask), torch.zeros(12))],
        "(args, labels)": [((ids[:6], mask[:6]), None), ((ids[6:], mask[6:]), None)],
    }[shape]
    snn, rep = P.convert(model, calibration=calibration, progress=False)
    assert rep.calibration_samples == 12 and rep.rows[0].activation == "gelu"
    with torch.no_grad():
        ann = model(ids, attention_mask=mask)
        assert float((snn(ids, attention_mask=mask) - ann).abs().max()) < 1e-3
        assert float((snn(input_ids=ids, attention_mask=mask) - ann).abs().max()) < 1e-3
    assert snn.samples == 24


def test_bad_calibration_batches():
    model = Tokens().eval()
    with pytest.raises(TypeError, match="a tensor, a dict or a tuple"):
        P.convert(model, calibration=["not a batch"], progress=False)
    with pytest.raises(ValueError, match="no batch"):
        P.convert(model, calibration=[], progress=False)


@pytest.mark.parametrize("options,match", [
    ({"K": 3, "dy": 1e-3}, "not both"), ({"K": True}, "positive int"), ({"K": 0}, "positive int"),
    ({"K": 2.5}, "positive int"), ({"dy": -1.0}, "positive number"), ({"step": float("nan")}, "positive number"),
    ({"mode": "slow"}, "mode must be"), ({"first_weight": "papr"}, "first_weight must be")])
def test_ps_options_are_checked_before_calibration(options, match):
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match=match):
        P.convert(relu, "ps", calibration=iter(()), **options)  # fails before touching the data


def test_rate_and_fs_options_are_checked():
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(ValueError, match="T must be a positive int"):
        P.convert(relu, "rate", interval=(0, 1), T=True)
    with pytest.raises(ValueError, match="v_init must be a number"):
        P.convert(relu, "rate", interval=(0, 1), v_init="a")
    with pytest.raises(ValueError, match="K must be a positive int"):
        P.convert(relu, "fs", interval=(0, 1), K=0)
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        P.convert(relu, "fs", interval=(0, 1), alpha="a")
    _, rep = P.convert(relu, "ps", interval=(0, 1), K=np.int64(8))  # a NumPy int counts
    assert rep.rows[0].time_steps == 8


def test_ps_dy_sets_k_and_k_defaults_to_16():
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    _, rep = P.convert(relu, interval=(0.0, 4.0), dy=2 ** -10)
    assert rep.rows[0].time_steps == 12  # Eq. 17: s = -10, M = 4 = 2^2
    _, rep = P.convert(relu, interval=(0.0, 4.0))
    assert rep.rows[0].time_steps == 16


def test_one_outlier_is_warned_and_noted_with_the_percentile_hint():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), nn.GELU())
    x = torch.randn(20_000)
    x[123] = 1e4
    with pytest.warns(UserWarning) as caught:
        _, rep = P.convert(model, calibration=x, progress=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert re.search(r"site _1: .* wider than the range .* of the central 98% .*observer=99.9", messages)
    # the grid is bounded, and the coarser step is named by site, noted and in the table
    assert re.search(r"site _1: fit_ps: .* needs more than 131072 grid points; using step 0.0763", messages)
    assert len(rep.notes) == 2 and rep.rows[0].r == 1e4 and rep.rows[0].details["step"] == pytest.approx(0.0763, 1e-3)
    with pytest.warns() as caught:  # a percentile observer is not warned about
        warnings.warn("sentinel")
        _, rep = P.convert(model, calibration=x, observer=99.9, progress=False)
    assert [str(w.message) for w in caught] == ["sentinel"] and rep.notes == [] and rep.rows[0].r < 4


def test_one_corrupt_sample_is_noted_at_every_site_it_widens():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU()).eval()
    x = torch.randn(256, 8)
    x[0, 0] = 1e4  # one sample of 256: its whole row of activations is extreme
    with pytest.warns(UserWarning, match="a few outliers set it"):
        _, rep = P.convert(model, calibration=x, progress=False)
    assert sum("a few outliers set it" in note for note in rep.notes) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ordinary data: no note at all
        _, rep = P.convert(model, calibration=torch.randn(256, 8), progress=False)
    assert rep.notes == []


def test_per_site_intervals_must_name_every_site():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.GELU())
    snn, rep = P.convert(model, interval={"_1": (0, 2), "_3": (-3, 3)})
    assert [(r.site, r.l, r.r) for r in rep.rows] == [("_1", 0, 2), ("_3", -3, 3)]
    with pytest.raises(ValueError, match=r"missing \['_3'\]"):
        P.convert(model, interval={"_1": (0, 2)})
    with pytest.raises(ValueError, match=r"unknown \['fc'\]"):
        P.convert(model, interval={"_1": (0, 2), "_3": (0, 1), "fc": (0, 1)})
    with pytest.raises(ValueError, match=r"site _3 \(1, inf\) is empty or not finite"):
        P.convert(model, interval={"_1": (0, 2), "_3": (1, float("inf"))})


def test_a_random_model_is_not_silently_converted():
    class Noisy(nn.Module):
        def forward(self, x):
            return torch.relu(x) + torch.rand_like(x)

    with pytest.raises(P.ConversionError, match="not deterministic"):
        P.convert(Noisy(), calibration=torch.randn(8, 4), progress=False)


def test_rate_coding_averages_every_output_of_a_structured_model():
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.l, self.a, self.b = nn.Linear(4, 16), nn.Linear(16, 3), nn.Linear(16, 2)

        def forward(self, x):
            h = torch.relu(self.l(x))
            return {"logits": self.a(h), "aux": (self.b(h), x.shape[0])}

    torch.manual_seed(0)
    model, x = Heads().eval(), torch.randn(32, 4)
    snn, _ = P.convert(model, "rate", calibration=x, progress=False, T=64)
    with torch.no_grad():
        ann, out = model(x), snn(x)
    assert set(out) == {"logits", "aux"} and out["aux"][1] == 32
    assert float((out["logits"] - ann["logits"]).abs().max()) < 0.1
    assert float((out["aux"][0] - ann["aux"][0]).abs().max()) < 0.1


def test_every_build_error_names_its_site():
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with pytest.raises(P.ConversionError, match=r"site _1 \(module 1 \(ReLU\), \[-3, -1\]\): .*never positive"):
        P.convert(relu, "rate", interval=(-3, -1))
    overflows = nn.Sequential(nn.Linear(2, 2), nn.Softplus(threshold=1e9))  # exp(x) is inf beyond 709.8
    with pytest.raises(P.ConversionError, match=r"site _1 .*: activation is not finite on the grid"):
        P.convert(overflows, interval=(700, 720))


def test_optional_arguments_missing_from_the_calibration_batch_are_traced_at_their_default(tokens):
    ids, _ = tokens
    model = Tokens().eval()
    snn, rep = P.convert(model, calibration=ids, progress=False)  # no attention_mask: traced as None
    assert rep.traced
    with torch.no_grad():
        assert float((snn(ids) - model(ids)).abs().max()) < 1e-3


def test_a_model_of_a_list_of_tensors_and_a_bad_batch_named():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 2)

        def forward(self, xs):
            return self.l(torch.relu(xs[0] + xs[1]))

    x = torch.randn(8, 4)
    snn, rep = P.convert(Pair().eval(), calibration=[(([x, x],), None)], progress=False)
    assert rep.calibration_samples == 8
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
    with pytest.raises(RuntimeError) as caught:  # a list of two batches, the second the labels
        P.convert(model, calibration=[x, torch.arange(8)], progress=False)
    assert "while running calibration batch 1" in " ".join(getattr(caught.value, "__notes__", []))


def test_a_lone_inputs_targets_tuple_is_one_batch():
    """(x, y) given bare is the batch [(x, y)]: float targets never reach the model (issue 21)."""
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 1)).eval()
    x, y = torch.randn(64, 4), 100 * torch.randn(64, 4)  # targets that the model would accept as inputs
    _, bare = P.convert(model, calibration=(x, y), progress=False, K=8)
    _, listed = P.convert(model, calibration=[(x, y)], progress=False, K=8)
    assert bare.calibration_samples == 64 and (bare.rows[0].l, bare.rows[0].r) == \
        (listed.rows[0].l, listed.rows[0].r)
    _, both = P.convert(model, calibration=[x, y], progress=False, K=8)  # two batches, as asked
    assert both.calibration_samples == 128 and both.rows[0].r > 10 * bare.rows[0].r


def test_options_are_one_dataclass_per_method_with_their_defaults_in_it():
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    snn, rep = P.convert(relu, "ps", interval=(-1, 1))
    assert snn.options == P.get_method("ps").parse({}) and snn.options.K == 16  # the default, set once
    assert P.convert(relu, "ps", interval=(-1, 1), dy=0.01)[0].options.K is None  # K follows from dy per site
    with pytest.raises(TypeError, match=r"no option\(s\) \['steps'\]; it takes .*'train_steps'"):
        P.convert(relu, "fs", interval=(0, 1), steps=10)  # FS's optimiser steps are not time steps
    signed = P.convert(relu, "signed", interval=(-1, 1), T=5)[0]
    assert signed.options.T == 5 == signed.passes == next(iter(signed.neurons.values())).time_steps
    row = rep.rows[0]
    assert (row.time_steps, row.l, row.r) == (16, -1, 1) and {"step", "error_bound", "table_bytes"} <= set(row.details)
    assert list(rep.table().columns[:3]) == ["activation", "l", "r"] and rep.table()["time_steps"].tolist() == [16]


def test_kept_analog_records_are_typed_and_summed_without_parsing():
    from psnn_lib.paper1.language import analog_summary

    class Gate(nn.Module):
        def forward(self, x):
            return torch.softmax(x, -1) * torch.tanh(x).relu() + torch.softmax(x, -1)

    _, rep = P.convert(Gate(), "ps", calibration=torch.randn(8, 4), strict=False, progress=False)
    softmax = [a for a in rep.kept_analog if a.op == "softmax"]
    assert len(softmax) == 1 and softmax[0].calls == 2 and softmax[0].where == "<Gate, top level>"
    assert analog_summary(rep).loc["softmax (softmax)", "calls per forward pass"] == 2


def test_the_package_has_no_import_circle():
    import ast
    import pathlib
    root = pathlib.Path(P.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                found |= {target} | {f"{target}.{a.name}" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("psnn_lib"):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = found
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for t in edges[m]:
            assert state.get(t) != "open", "import circle: " + " -> ".join(path + [t])
            if t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])


def test_option_values_are_stored_as_plain_python_numbers_and_fs_flags_are_checked():
    relu = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    snn, _ = P.convert(relu, "ps", interval=(-1, 1), K=np.int64(8))
    assert type(snn.options.K) is int
    snn, _ = P.convert(relu, "signed", interval=(-1, 1), T=np.int64(4), v_init=np.float32(0.25))
    assert (type(snn.options.T), type(snn.options.v_init)) == (int, float)
    assert P.convert(relu, "ps", interval=(-1, 1), dy=np.float32(0.05))[1].rows[0].time_steps > 0
    with pytest.raises(ValueError, match="train is True or False"):
        P.convert(relu, "fs", interval=(0, 1), train="yes")
    with pytest.raises(ValueError, match="table is the path"):
        P.convert(relu, "fs", interval=(0, 1), table=123)
