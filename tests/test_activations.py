import pytest
import torch

from psnn_lib.activations import known_activations, register_activation, resolve_activation

ISSUE_LIST = ["relu", "relu6", "leaky_relu", "gelu", "gelu_tanh", "silu", "mish", "selu", "elu",
              "softplus", "hardswish", "hardsigmoid", "sigmoid", "tanh"]


def test_registry_holds_every_listed_activation():
    assert set(ISSUE_LIST) <= set(known_activations())


def test_gelu_exact_and_tanh_are_distinct_entries():
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    exact = resolve_activation("gelu")[1](x)
    approx = resolve_activation("gelu_tanh")[1](x)
    assert torch.allclose(exact, 0.5 * x * (1 + torch.erf(x / 2 ** 0.5)))
    assert 1e-5 < float((exact - approx).abs().max()) < 1e-3


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'swishy'.*gelu.*tanh"):
        resolve_activation("swishy")


def test_leaky_relu_slope_and_bad_slope():
    name, f = resolve_activation("leaky_relu:0.2")
    assert name == "leaky_relu:0.2"
    assert float(f(torch.tensor(-1.0))) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="slope"):
        resolve_activation("leaky_relu:abc")


def test_callable_passes_through_and_register_refuses_duplicates():
    name, f = resolve_activation(torch.sin)
    assert name.startswith("callable:") and f is torch.sin
    with pytest.raises(ValueError, match="already registered"):
        register_activation("gelu", torch.sin)


def test_one_table_serves_functions_modules_and_the_converter():
    from torch import nn

    from psnn_lib.activations import activation_module, activation_spec
    from psnn_lib.converter.sites import module_activation

    x = torch.linspace(-5, 5, 41)
    for name in known_activations():
        spec = activation_spec(name)
        module = activation_module(name)
        assert torch.allclose(module(x), spec.fn(x)), name
        assert module_activation(module).name == name  # the converter recognises the table's module
    assert module_activation(nn.LeakyReLU(0.2)).name == "leaky_relu:0.2"
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        activation_module("swishy")
