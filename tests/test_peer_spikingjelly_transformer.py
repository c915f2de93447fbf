"""The SpikingJelly transformer peer: its TD-equivalent conversion of the MiniLM classifier is
the ANN (up to float32 rounding) at the example's T, step 0 carries all of it, no neuron is
inserted, the state is reset between batches, the input model is untouched, bad input is
refused and a missing package names the pinned install command."""
import sys

import pytest
import torch

pytest.importorskip("transformers")

from psnn_lib.models import minilm, sentences  # noqa: E402
from psnn_lib.peers import spikingjelly_transformer as sjt  # noqa: E402

TEXTS = ["a fine film", "dull and long", "the best thing this year, by far",
         "i laughed, i cried, i wanted my money back", "flat", "an uneven but often moving portrait",
         "nothing here works", "smart, funny and surprisingly tender"]
# TD-equivalent: the converted graph computes the ANN's operators on the same inputs; what
# differs is float32 rounding only (the example's eager attention against the ANN's SDPA
# kernel, pooling written as a weighted mean), about 1e-7 per value after 6 layers
ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return minilm.build()


@pytest.fixture(scope="module")
def data():
    return sentences.encode(TEXTS, [1, 0] * 4, minilm.tokenizer(), batch_size=4)


@pytest.fixture(scope="module")
def snn(model):
    return sjt.convert(model, sjt.TIME_STEPS)


def test_output_at_the_examples_t_is_the_anns(model, data, snn):
    ann = minilm.predict(model, data)
    out = minilm.predict(snn, data)
    assert snn.time_steps == sjt.TIME_STEPS == 8
    torch.testing.assert_close(out.logits, ann.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.embedding, ann.embedding, atol=ATOL, rtol=0)
    assert torch.equal(out.logits.argmax(1), ann.logits.argmax(1))


def test_step_zero_carries_everything_and_no_neuron_is_inserted(model, data, snn):
    batch = data.batches[1]
    with torch.no_grad():
        steps = snn.steps(**batch)
        ann = model(**batch)
    n = len(batch["input_ids"])
    assert steps.logits.shape == (sjt.TIME_STEPS, n, 2) and steps.embedding.shape == (sjt.TIME_STEPS, n, 384)
    torch.testing.assert_close(steps.logits[0], ann.logits, atol=ATOL, rtol=0)
    assert not steps.logits[1:].any() and not steps.embedding[1:].any()  # exactly 0.0: float differences, no spikes
    assert sjt.operator_counts(snn) == {"TDLinear": 37, "TDLayerNorm": 12, "TDGELU": 6, "TDSoftmax": 6,
                                        "SNNMatrixOperator": 12, "Dropout": 18, "_StepModeTensorOp": 103}


def test_state_is_reset_between_batches(data, snn):
    batch = data.batches[0]  # the same shape twice: the TD operators would carry on from the last run
    first, again = snn(**batch), snn(**batch)
    assert torch.equal(first.logits, again.logits)
    memories = [m for m in snn.converted.modules() if hasattr(m, "x_cum")]
    assert len(memories) == 73 and all(m.x_cum is None and m.y_cum is None for m in memories)


def test_input_model_is_untouched(model, data):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    ann = minilm.predict(model, data)
    minilm.predict(sjt.convert(model, 2), data)
    assert [type(m) for m in model.modules()] == kinds and not model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(minilm.predict(model, data).logits, ann.logits)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8", None])
def test_bad_time_steps_are_refused(model, bad):
    with pytest.raises(ValueError, match="time_steps must be a positive int"):
        sjt.convert(model, bad)


def test_only_a_bert_sentence_classifier_is_converted():
    with pytest.raises(TypeError, match="SentenceClassifier with a BERT encoder"):
        sjt.convert(torch.nn.Linear(4, 2), 8)


def test_missing_package_names_the_install_command(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "spikingjelly", None)
    with pytest.raises(ImportError, match="pip install --no-deps spikingjelly==2.0.0"):
        sjt.convert(model, 8)
