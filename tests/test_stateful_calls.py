"""Stateful arguments of multi-pass calls (issue 21): a Hugging Face cache passed to a
rate-coded model is updated once, with the keys and values averaged over the time steps.

The first tests drive :mod:`psnn_lib.converter.stateful` as ``ConvertedModel.forward``
does, on a stand-in model; the GPT-2 tests call a converted model end to end."""
import copy

import pytest
import torch

import psnn_lib as P
from psnn_lib.converter.stateful import PassStates, is_stateful, private_states

transformers = pytest.importorskip("transformers")
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.modeling_outputs import CausalLMOutputWithPast  # noqa: E402

# GPT-2 does not trace with torch.fx: its activation modules are swapped (warned)
pytestmark = pytest.mark.filterwarnings("ignore:torch.fx could not trace:UserWarning")
PASSES = 4


def _layers(cache):
    return [(layer.keys, layer.values) for layer in cache.layers]


def _prefix(tokens=3):
    cache = DynamicCache()
    cache.update(torch.randn(1, 2, tokens, 4), torch.randn(1, 2, tokens, 4), 0)
    return cache


def _step(k, cache=None):
    """A stand-in model at time step ``k``: appends a key and value that depend on the step
    (``k``) to its cache (a new one without), returns it as GPT-2 does."""
    cache = DynamicCache() if cache is None else cache
    key = torch.full((1, 2, 1, 4), float(k))
    cache.update(key, -key, 0)
    return CausalLMOutputWithPast(logits=key.sum((1, 3)), past_key_values=cache)


def _forward(call, step=_step):
    """What ``ConvertedModel.forward`` does with the stateful arguments of one call."""
    with PassStates(call, PASSES) as states:
        outs = []
        for k in range(PASSES):
            outs.append(step(k, *private_states(call)[0]))
            states.add(outs[-1])
    return states.settle(outs[0])


def test_stateful_is_a_transformers_cache():
    assert is_stateful(DynamicCache()) and is_stateful(type("Mine", (DynamicCache,), {})())
    assert not any(map(is_stateful, [torch.zeros(2), {"a": 1}, None, [DynamicCache()]]))


def test_each_pass_runs_on_its_own_copy():
    cache, x = _prefix(), torch.zeros(2)
    (copied, same), kwargs = private_states(((cache, x), {"n": 1}))
    assert same is x and kwargs == {"n": 1} and copied is not cache
    assert all(torch.equal(a, b) and a is not b for pair in zip(_layers(copied), _layers(cache)) for a, b in zip(*pair))
    _step(5, copied)
    assert cache.get_seq_length() == 3 and copied.get_seq_length() == 4


def test_callers_cache_updated_once_with_the_average():
    cache = _prefix()
    before = _layers(copy.deepcopy(cache))
    out = _forward(((cache,), {}))
    assert out.past_key_values is cache and cache.get_seq_length() == 4
    (keys, values), = _layers(cache)
    assert torch.equal(keys[..., :3, :], before[0][0]) and torch.equal(values[..., :3, :], before[0][1])
    mean = torch.full((1, 2, 4), sum(range(PASSES)) / PASSES)
    assert torch.equal(keys[..., 3, :], mean) and torch.equal(values[..., 3, :], -mean)


def test_cache_the_model_makes_is_averaged():
    out = _forward(((), {}))
    (keys, _), = _layers(out.past_key_values)
    assert keys.shape[-2] == 1 and torch.equal(keys, torch.full_like(keys, sum(range(PASSES)) / PASSES))


def test_state_that_cannot_be_averaged_is_refused():
    def counting(k, cache):
        cache.layers[0].count = torch.tensor(k)  # integer state that differs between passes
        return _step(k, cache)
    cache = _prefix()
    before = _layers(copy.deepcopy(cache))
    with pytest.raises(ValueError, match=r"DynamicCache differs between time steps in a Tensor of dtype torch.int64"
                                         r"(.|\n)*use_cache=False"):
        _forward(((cache,), {}), counting)
    assert cache.get_seq_length() == 3 and not hasattr(cache.layers[0], "count")
    assert all(torch.equal(a, b) for pair in zip(_layers(cache), before) for a, b in zip(*pair))


@pytest.fixture(scope="module")
def gpt2():
    """A tiny random GPT-2 (ReLU, so rate-coded methods convert it) and 9 tokens of two sentences."""
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, activation_function="relu",
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval(), torch.randint(0, 50, (2, 9)), torch.randint(0, 50, (2, 1))


def _convert(gpt2, method):
    model, ids, _ = gpt2
    options = {"T": 8} if method == "rate" else {}
    return P.convert(model, method, calibration={"input_ids": ids}, progress=False, **options)[0]


def _steps(snn, **call):
    """Each time step's output (``steps`` runs each on its own copy of a cache passed in),
    and per layer the keys and values of their caches averaged over the steps."""
    outs = list(snn.steps(**call))
    caches = [_layers(out.past_key_values) for out in outs]
    return outs, [tuple(torch.stack(kv).mean(0) for kv in zip(*layer)) for layer in zip(*caches)]


def _assert_layers_close(got, expected):
    for (k, v), (ek, ev) in zip(got, expected, strict=True):
        torch.testing.assert_close(k, ek)
        torch.testing.assert_close(v, ev)


@pytest.mark.parametrize("method", ["rate", "signed"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_multi_pass_updates_a_passed_cache_once(gpt2, method, use_cache):
    """Needs the wiring in ConvertedModel.forward/steps. Before it, the cache grew from
    9 to 17 tokens at T = 8, each time step attending to the steps before it."""
    model, ids, token = gpt2
    snn = _convert(gpt2, method)
    assert snn.passes == 8
    with torch.no_grad():
        cache = model(input_ids=ids).past_key_values
        ann_cache = copy.deepcopy(cache)
        model(input_ids=token, past_key_values=ann_cache, use_cache=use_cache)
        outs, expected = _steps(snn, input_ids=token, past_key_values=copy.deepcopy(cache), use_cache=True)
        out = snn(input_ids=token, past_key_values=cache, use_cache=use_cache)
    assert cache.get_seq_length() == ann_cache.get_seq_length() == 10  # one token more, as the ANN's
    assert out.past_key_values is (cache if use_cache else None)
    got, ann = _layers(cache), _layers(ann_cache)
    _assert_layers_close(got, expected)
    for (k, v), (ak, av) in zip(got, ann):  # the prefix kept exactly
        assert torch.equal(k[..., :9, :], ak[..., :9, :]) and torch.equal(v[..., :9, :], av[..., :9, :])
    assert torch.equal(got[0][0], ann[0][0])  # layer 0's keys come before any neuron: equal in every step
    torch.testing.assert_close(out.logits, torch.stack([o.logits for o in outs]).mean(0))


def test_default_call_returns_the_averaged_cache(gpt2):
    """Needs the wiring: before it, ``snn(input_ids)`` returned the cache of time step 1."""
    _, ids, _ = gpt2
    snn = _convert(gpt2, "rate")
    with torch.no_grad():
        outs, expected = _steps(snn, input_ids=ids)
        got = _layers(snn(ids).past_key_values)
    assert got[1][0].shape[-2] == 9 and not torch.allclose(got[1][0], _layers(outs[0].past_key_values)[1][0])
    _assert_layers_close(got, expected)


def test_one_pass_updates_the_callers_cache_in_place(gpt2):
    model, ids, token = gpt2
    snn = _convert(gpt2, "ps")
    with torch.no_grad():
        cache = model(input_ids=ids).past_key_values
        out = snn(input_ids=token, past_key_values=cache)
    assert snn.passes == 1 and out.past_key_values is cache and cache.get_seq_length() == 10
