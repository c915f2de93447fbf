import math

import pytest
import torch

from psnn_lib import PSNeuron, fit_ps, known_activations
from psnn_lib.activations import resolve_activation


def test_eqs_17_to_19_choose_s_k_and_weights():
    p = fit_ps("relu", -10, 10, 0.01, 1e-3)
    assert p.s == math.floor(math.log2(0.01)) == -7
    assert p.K == math.ceil(math.log2(10) + 7) == 11
    assert p.d.tolist() == [2.0 ** (p.s + p.K - t) for t in range(1, p.K + 1)]
    assert p.b == 0.0
    code = fit_ps("relu", -10, 10, 0.01, 1e-3, first_weight="code")
    assert code.d[0] == 16.0 and code.d[-1] == 2.0 ** -6
    assert code.T[0] == math.inf  # the code's first weight >= M never fires


def test_grid_includes_both_ends_and_respects_step():
    p = fit_ps("tanh", -1.0, 2.0, 0.01, 0.007)
    assert p.grid[0] == -1.0 and p.grid[-1] == 2.0
    assert p.delta <= 0.007


@pytest.mark.parametrize("name", known_activations())
def test_resets_are_inverses_on_the_rising_branch(name):
    p = fit_ps(name, -10, 10, 0.01, 1e-2)
    f = resolve_activation(name)[1]
    # h(t+1) = f^-1(remaining) (Eq. 14): f at the reset equals the remaining value
    remaining = p.target - p.b
    for t in range(p.K):
        if t:
            remaining = remaining - torch.where(p.h[t] != p.h[t - 1], p.d[t - 1], 0.0)
        assert torch.allclose(f(p.h[t]) - p.b, remaining.clamp(min=0), atol=2e-3)


@pytest.mark.parametrize("name", known_activations() + ["leaky_relu:0.3"])
def test_grid_error_is_at_most_the_smallest_weight(name):
    p = fit_ps(name, -8, 8, 0.02, 1e-3)
    assert p.grid_error <= float(p.d[-1]) * (1 + 1e-12)


def test_outside_interval_saturates_and_is_counted():
    p = fit_ps("relu", -1, 1, 0.01, 1e-3)
    n = PSNeuron(p)
    out = n(torch.tensor([-5.0, 5.0, 0.5]))
    assert out[0] == pytest.approx(0.0) and out[1] == pytest.approx(float(p.output[-1]))
    assert n.stats.clipped == 2 and n.stats.clipped_fraction == pytest.approx(2 / 3)


def test_decreasing_function_is_mirrored():
    p = fit_ps(lambda x: torch.exp(-x), -2, 2, 0.01, 1e-3)
    assert p.direction == -1
    x = torch.rand(5000, dtype=torch.float64) * 4 - 2
    fast, stepped = PSNeuron(p, "fast"), PSNeuron(p, "stepped")
    assert torch.equal(fast(x), stepped(x)) and fast.stats.spikes == stepped.stats.spikes
    assert float((fast(x) - torch.exp(-x)).abs().max()) <= p.error_bound * (1 + 1e-9)


def test_fig2_sigmoid_spike_times():
    from psnn_lib.paper1.fitting import trace

    assert trace(fit_ps("sigmoid", -10, 10, 2 ** -5, 1e-3), 2.5)["spike_times"] == [1, 2, 3, 5]
    assert trace(fit_ps("sigmoid", -10, 10, 2 ** -5, 1e-3, first_weight="code"), 2.5)["spike_times"] == [2, 3, 4]
    assert trace(fit_ps("sigmoid", -10, 10, 0.01, 1e-3), 2.5)["spike_times"] == [1, 2, 3, 5, 6]


@pytest.mark.parametrize("args, message", [
    ((-1, -1, 0.1, 0.01), "empty interval"),
    ((2, 1, 0.1, 0.01), "empty interval"),
    ((-1, 1, 0.0, 0.01), "dy must be > 0"),
    ((-1, 1, -0.1, 0.01), "dy must be > 0"),
    ((-1, 1, 0.1, 0.0), "step must be > 0"),
    ((float("nan"), 1, 0.1, 0.01), "finite"),
    ((-1, float("inf"), 0.1, 0.01), "finite"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        fit_ps("gelu", *args)


def test_function_not_finite_on_grid():
    with pytest.raises(ValueError, match="not finite on the grid"):
        fit_ps(torch.log, -1, 1, 0.1, 0.01)


def test_unknown_options_and_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        fit_ps("nope", -1, 1, 0.1)
    with pytest.raises(ValueError, match="first_weight"):
        fit_ps("relu", -1, 1, 0.1, first_weight="other")


def test_constant_function_fits_exactly():
    p = fit_ps(lambda x: torch.full_like(x, 3.0), -1, 1, 0.1, 0.01)
    assert p.K == 1 and p.grid_error == 0.0


def test_fixed_number_of_steps():
    """K given instead of dy: s = ceil(log2 M) - K (Eq. 18 solved for s)."""
    for K in (4, 13, 16):
        p = fit_ps("relu6", -1.0, 7.0, K=K)
        assert p.K == K and p.s == 3 - K and p.dy == 2.0 ** p.s
        assert p.grid_error <= 2.0 ** p.s * (1 + 1e-9)  # d(K) = 2^s, up to rounding
    with pytest.raises(ValueError, match="exactly one"):
        fit_ps("relu", -1, 1)
    with pytest.raises(ValueError, match="exactly one"):
        fit_ps("relu", -1, 1, 0.01, K=8)
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match="positive int"):
            fit_ps("relu", -1, 1, K=bad)


def test_tiny_interval_gives_a_near_constant_neuron():
    p = fit_ps("sigmoid", 0, 1e-13, K=16)
    assert p.points == 2 and p.grid[0] == 0 and p.grid[-1] == 1e-13 and p.delta == 1e-13
    x = torch.tensor([-1.0, 0.0, 4e-14, 1e-13, 1.0], dtype=torch.float64)
    assert float((PSNeuron(p)(x) - 0.5).abs().max()) <= 1e-13


def test_wide_interval_is_capped_at_max_grid_points():
    from psnn_lib.ps.grid import MAX_GRID_POINTS

    with pytest.warns(UserWarning, match=r"needs more than 131072 grid points; using step 0\.3052"):
        p = fit_ps("gelu", -2e4, 2e4, K=16)
    assert MAX_GRID_POINTS == 2 ** 17 and p.points == MAX_GRID_POINTS == p.grid.numel()
    assert p.step == 1e-3 and p.delta == pytest.approx(4e4 / (MAX_GRID_POINTS - 1))
    x = torch.rand(200_000, dtype=torch.float64) * 4e4 - 2e4
    err = (PSNeuron(p)(x) - resolve_activation("gelu")[1](x)).abs().max()
    assert float(err) <= p.error_bound * (1 + 1e-9)


def test_refit_rebuilds_the_same_tables_without_touching_the_original():
    p = fit_ps("silu", -4, 4, 0.01, 1e-3)
    slim = p.slim()
    assert slim.tables is None and p.tables is not None
    assert torch.equal(slim.h, p.h) and torch.equal(slim.accumulated, p.accumulated)
    assert slim.tables is not None and slim.tables is not p.tables
