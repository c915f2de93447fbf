"""The a-priori error bound of a PS fit (psnn_lib.ps.bound): d(K) + L delta / 2, or
d(K) + the change of f over each half cell when no Lipschitz constant is known.

The functions below are none of the activation table's, so the fit has never
been tuned to them; the last tests show the bound failing where its condition does."""
import math

import numpy as np
import pytest
import torch

from psnn_lib import PSNeuron, fit_ps
from psnn_lib.activations import activation_spec, known_activations, known_lipschitz, registered_activations
from psnn_lib.ps.bound import error_bound


def _max_error(p, f, l, r, n=200_000):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(n, dtype=torch.float64, generator=gen) * (r - l) + l
    x = torch.cat([x, (p.grid[:-1] + p.delta * 0.4999999), (p.grid[1:] - p.delta * 0.4999999)])  # cell edges
    return float((PSNeuron(p)(x) - f(x)).abs().max())


def test_table_lipschitz_constants_bound_the_slope():
    x = torch.linspace(-30, 30, 3_000_001, dtype=torch.float64)
    for spec in registered_activations():
        y = spec.fn(x)
        slope = float(((y[1:] - y[:-1]) / (x[1:] - x[:-1])).abs().max())
        assert spec.lipschitz is not None, spec.name
        assert slope <= spec.lipschitz * (1 + 1e-9) and spec.lipschitz <= slope * 1.01 + 1e-3, spec.name
    assert activation_spec("leaky_relu:3").lipschitz == 3.0
    assert known_lipschitz(activation_spec("gelu").fn) == activation_spec("gelu").lipschitz
    assert known_lipschitz(lambda v: v) is None


@pytest.mark.parametrize("name", known_activations())
def test_bound_of_a_table_activation_is_quantum_plus_lipschitz_term(name):
    p = fit_ps(name, -8, 8, 0.02, 1e-3)
    L = activation_spec(name).lipschitz
    assert p.error_bound == pytest.approx(float(p.d[-1]) + L * p.delta / 2, rel=1e-12)
    assert "Lipschitz" in p.bound_condition
    assert _max_error(p, activation_spec(name).fn, -8, 8) <= p.error_bound * (1 + 1e-9)


UNSEEN = [  # (f, l, r, sup |f'| on [l, r])
    (lambda x: torch.sin(3 * x), -2.0, 2.0, 3.0),
    (lambda x: x ** 3 / 10, -2.0, 2.0, 1.2),
    (lambda x: torch.tanh(20 * x), -1.0, 1.0, 20.0),
    (lambda x: x + 0.3 * torch.sin(50 * x), -1.0, 1.0, 16.0),
    (lambda x: torch.where(x > 0.3, 2 * x - 0.3, x), -1.0, 1.0, 2.0),
]


@pytest.mark.parametrize("f, l, r, L", UNSEEN)
@pytest.mark.parametrize("dy, step", [(0.05, 1e-2), (0.01, 1e-3), (1e-3, 1e-3)])
def test_bound_holds_on_unseen_functions(f, l, r, L, dy, step):
    with_l = fit_ps(f, l, r, dy, step, lipschitz=L)
    measured = _max_error(with_l, f, l, r)
    assert measured <= with_l.error_bound * (1 + 1e-9)
    assert with_l.error_bound == pytest.approx(float(with_l.d[-1]) + L * with_l.delta / 2)
    # without L: the change of f over each half cell, exact where f is monotone on it
    without = fit_ps(f, l, r, dy, step)
    assert "monotone" in without.bound_condition and without.error_bound <= with_l.error_bound * (1 + 1e-9)


def test_monotone_form_holds_for_monotone_functions():
    for f in (lambda x: x ** 3 / 10, lambda x: torch.tanh(20 * x), torch.exp):
        p = fit_ps(f, -1.5, 1.5, 0.01, 1e-2)
        assert _max_error(p, f, -1.5, 1.5) <= p.error_bound * (1 + 1e-9)


def _bump(center, width):
    return lambda x: torch.exp(-((x - center) / width) ** 2)


def test_bound_fails_for_a_feature_narrower_than_a_cell():
    """A bump of width delta / 20 between two grid points and off the half-cell edges: no
    sample sees it, so without a Lipschitz constant the stated condition (f monotone on each
    half cell) is false and the bound (about d(K)) is far below the error (about 1)."""
    step = 0.01
    f = _bump(0.1 + step / 4, step / 20)
    p = fit_ps(f, -1, 1, 0.01, step)
    x = torch.tensor([0.1 + step / 4], dtype=torch.float64)
    error = float((PSNeuron(p)(x) - f(x)).abs())
    assert p.error_bound < 0.02 and error > 0.99 > 10 * p.error_bound
    # with its Lipschitz constant sqrt(2 / e) / width the bound holds again (and says little)
    L = math.sqrt(2 / math.e) / (step / 20)
    q = fit_ps(f, -1, 1, 0.01, step, lipschitz=L)
    assert error <= q.error_bound and _max_error(q, f, -1, 1) <= q.error_bound


def test_bound_fails_with_a_wrong_lipschitz_constant():
    f = lambda x: torch.tanh(20 * x)  # noqa: E731 - sup |f'| = 20
    p = fit_ps(f, -1, 1, 1e-3, 1e-2, lipschitz=1.0)
    assert _max_error(p, f, -1, 1) > p.error_bound * 2


def test_bad_lipschitz_constants_are_refused():
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    for bad in (-1.0, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="lipschitz"):
            error_bound(torch.sin, grid, torch.sin(grid), 0.01, bad)
    with pytest.raises(ValueError, match="lipschitz"):
        fit_ps("relu", -1, 1, 0.1, lipschitz=True)
    assert fit_ps("relu", -1, 1, 0.1, lipschitz=np.float32(2.0)).error_bound > 0
    assert error_bound(torch.sin, grid[:1], torch.sin(grid[:1]), 0.01).value == 0.01  # one point: no snapping


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("first_weight", ["paper", "code"])
@pytest.mark.parametrize("f, l, r, setting", [
    ("relu", -1.0, 5.0, {"dy": 0.01}),  # the code's first weight 8 > M = 5
    ("relu", -1.0, 4.0, {"dy": 0.01}),  # M = 4: a weight equal to M
    (lambda x: 0 * x + 3, -1.0, 1.0, {"K": 5}),  # constant: a one-point branch
    (lambda x: torch.exp(-x), -2.0, 2.0, {"K": 6}),  # falling: the mirrored branch
    (lambda x: 100 * x, -1.0, 1.0, {"dy": 0.01, "step": 1e-5}),  # capped grid
])
def test_quantisation_term_holds_for_every_spike_rule(strict, first_weight, f, l, r, setting):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the capped grid warns
        p = fit_ps(f, l, r, first_weight=first_weight, strict=strict, **setting)
    assert p.grid_error <= float(p.d[-1]) * (1 + 1e-12)
    fn = activation_spec(f).fn if isinstance(f, str) else f
    assert _max_error(p, fn, l, r, n=20_000) <= p.error_bound * (1 + 1e-9)


@pytest.mark.parametrize("args, kwargs", [
    ((torch.exp, 5, 5 + 1e-9, 1e-12, 1e-13), {}),  # dy near float64's resolution of exp at 5
    ((lambda x: 1e6 * x, -10, 10, 0.01), {}),
    (("gelu", 3, 3 + 1e-10, 1e-20, 1e-14), {}),
])
def test_membrane_resolution_is_in_the_bound(args, kwargs):
    """Decisions on the membrane scale resolve x to a few ulps; the bound's quantisation term
    adds L * 4 ulp(max(|l|, |r|)) to d(K), and the grid error stays within it."""
    p = fit_ps(*args, **kwargs)
    f = activation_spec(args[0]).fn if isinstance(args[0], str) else args[0]
    bound = error_bound(f, p.grid, p.target, float(p.d[-1]), known_lipschitz(args[0]))
    assert bound.quantisation > float(p.d[-1]) and p.error_bound == bound.value
    assert p.grid_error <= bound.quantisation
    assert _max_error(p, f, args[1], args[2], n=20_000) <= p.error_bound


def test_spike_counts_of_a_very_long_neuron_do_not_overflow():
    p = fit_ps("relu", 0, 1, K=40000, step=0.25)
    neuron = PSNeuron(p)
    neuron(torch.tensor([0.5, 0.75, 1.0], dtype=torch.float64))
    stepped = PSNeuron(p, "stepped")
    stepped(torch.tensor([0.5, 0.75, 1.0], dtype=torch.float64))
    assert neuron.stats.spikes == stepped.stats.spikes > 32767
