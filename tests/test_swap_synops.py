"""Issue 21: synaptic operations on the module-swap path. The fan-outs observed in one
forward pass (the census, :mod:`psnn_lib.converter.census`) of the swapped model equal those of the traced one, and
Hugging Face models, which do not trace, get them too."""
import copy
import warnings
from collections import Counter

import pytest
import torch
from torch import nn

import psnn_lib as P
from psnn_lib.converter import engine
from psnn_lib.converter.census import take_census


def observed_fanouts(model, sites, run):
    """The fan-outs of the census of one pass ``run()`` (what the converter keeps for a swapped model)."""
    return take_census(model, sites, run, 1).fanouts()


class Res(nn.Module):
    """Grouped and strided convolutions, batch norm, a residual add, an in-place ReLU,
    pooling, a branch into two convolutions, flatten, cat and dropout before a linear layer."""

    def __init__(self):
        super().__init__()
        self.c1, self.r1 = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.c2, self.bn, self.r2 = nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True)
        self.pool, self.c3, self.down = nn.MaxPool2d(2), nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.Conv2d(8, 5, 1, 2)
        self.act, self.drop, self.fc = nn.SiLU(), nn.Dropout(0.2), nn.Linear(12 * 4 + 5 * 4, 10)

    def forward(self, x):
        a = self.r1(self.c1(x))
        p = self.pool(self.r2(self.bn(self.c2(a)) + a))
        h = torch.cat([torch.flatten(self.act(self.c3(p)), 1), self.down(p).flatten(1)], 1)
        return self.fc(self.drop(h))


class Functional(nn.Module):
    """A functional linear layer on a parameter (counted), a tanh whose output reaches no weight."""

    def __init__(self):
        super().__init__()
        self.fc, self.w, self.act, self.head = nn.Linear(4, 6), nn.Parameter(torch.randn(9, 6)), nn.GELU(), nn.Tanh()

    def forward(self, x):
        y = nn.functional.linear(self.act(self.fc(x)).view(-1, 6), self.w)
        return self.head(y).sum(-1)


def _swapped(model):
    work = copy.deepcopy(model).eval()
    return work, engine._swap_sites(work, [])


@pytest.mark.parametrize("build, x", [
    (lambda: Res(), torch.randn(4, 3, 8, 8)),
    (lambda: nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Dropout(), nn.Linear(7, 3), nn.Sigmoid(),
                           nn.Flatten(), nn.Linear(3, 11), nn.Tanh()), torch.randn(6, 5)),
    (lambda: Functional(), torch.randn(3, 4)),
])
def test_observed_fanouts_equal_the_traced_ones(build, x):
    model = build().eval()
    gm, sites, nodes = engine._trace_sites(copy.deepcopy(model), [], None, Counter())
    traced = observed_fanouts(gm, sites, lambda: gm(x))
    assert any(traced.values())
    work, swapped = _swapped(model)
    assert list(observed_fanouts(work, swapped, lambda: work(x)).values()) == list(traced.values())
    cm, rep = P.convert(model, calibration=x, progress=False)
    assert rep.traced and cm.census.fanouts() == traced


def test_expected_numbers():
    work, sites = _swapped(Res())
    fan = observed_fanouts(work, sites, lambda: work(torch.randn(2, 3, 8, 8)))
    # r1: c2 (8 / 2 groups * 9) and, through the add, r2 stops the walk; r2: c3 and down after max
    # pooling, which passes on one spike of four
    assert fan == {"r1": 36.0, "r2": (12 * 9 / 4 + 5 / 4) / 4, "act": 10.0}
    work, sites = _swapped(Functional())
    assert observed_fanouts(work, sites, lambda: work(torch.randn(3, 4))) == {"act": 9.0, "head": 0.0}


class Reused(nn.Module):
    """One ReLU module called twice, into layers of 3 and of 5 outputs."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.act = nn.Linear(4, 2), nn.Linear(4, 6), nn.ReLU()
        self.fa, self.fb = nn.Linear(2, 3), nn.Linear(6, 5)

    def forward(self, x):
        return self.fa(self.act(self.a(x))).sum(-1) + self.fb(self.act(self.b(x))).sum(-1)


def test_reused_site_gets_the_neuron_weighted_mean():
    work, sites = _swapped(Reused())
    fan = observed_fanouts(work, sites, lambda: work(torch.randn(7, 4)))
    assert fan == {"act": pytest.approx((2 * 3 + 6 * 5) / 8)}  # 2 neurons drive 3 weights, 6 drive 5
    assert observed_fanouts(work, sites, lambda: None) == {"act": 0.0}  # no call: no synapse seen


def _bert():
    transformers = pytest.importorskip("transformers")
    return transformers.BertModel(transformers.BertConfig(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=50)).eval()


def _gpt2():
    transformers = pytest.importorskip("transformers")
    return transformers.GPT2Model(transformers.GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=16, bos_token_id=0, eos_token_id=0)).eval()


HF = [(_bert, {"encoder_layer_0_intermediate_intermediate_act_fn": 32.0, "pooler_activation": 0.0}),
      (_gpt2, {"h_0_mlp_act": 32.0})]  # the GELU drives the dense / Conv1D back to hidden size 32; the pooler's
                                        # tanh drives nothing


def _batch():
    ids = torch.randint(0, 50, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("build, expected", HF)
def test_huggingface_fanouts(build, expected):
    work, sites = _swapped(build())
    batch = _batch()
    assert observed_fanouts(work, sites, lambda: work(**batch)) == expected


@pytest.mark.parametrize("build, expected", HF)
def test_huggingface_spike_stats_count_synops(build, expected):
    batch = _batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.fx cannot trace these: modules are swapped
        snn, rep = P.convert(build(), calibration=batch, token_mask="attention_mask", progress=False)
    assert not rep.traced
    assert snn.samples == 0 and all(n.stats.spikes == 0 for n in snn.neurons.values())  # nothing counted yet
    with torch.no_grad():
        snn(**batch)
    st = snn.spike_stats()
    assert st.synops is not None and st.synops > 0
    assert {r["site"]: r["synops"] for r in st.rows} == {r["site"]: pytest.approx(r["spikes"] * expected[r["site"]])
                                                         for r in st.rows}
