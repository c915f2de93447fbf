"""Paper 2's measurement rules: paired standard errors and the time-step rule."""
import math

import pytest
import torch

from psnn_lib.paper2.evaluation import StepCurve, binomial_se, paired_se, settled_steps


def _curve(rights: list[int], n: int = 100) -> StepCurve:
    """A curve whose step t gets the first rights[t] of n images right."""
    correct = torch.zeros(len(rights), n, dtype=torch.bool)
    for t, k in enumerate(rights):
        correct[t, :k] = True
    return StepCurve(correct, [0.0] * len(rights))


def test_paired_and_binomial_standard_errors_by_hand():
    a = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    d = torch.tensor([0.0, 1.0, -1.0, 0.0])
    assert paired_se(a, b) == pytest.approx(100 * float(d.std()) / 2)
    assert paired_se(a, a) == 0.0  # the same answers: no paired error
    assert binomial_se(a) == pytest.approx(100 * math.sqrt(0.25 / 4))
    with pytest.raises(ValueError, match="paired images differ"):
        paired_se(a, b[:3])


def test_a_lucky_step_does_not_settle_a_noisy_curve():
    ann = torch.zeros(100, dtype=torch.bool)
    ann[:90] = True  # the ANN: 90 %, the first 90 images
    # reaches 90 % at T = 2 by luck, falls back, settles from T = 5
    c = _curve([80, 90, 85, 86, 90, 90, 90])
    assert settled_steps(c, ann, gap=0.0) == 5
    first_touch = next(t + 1 for t, a in enumerate(c.accuracy) if a >= 90)
    assert first_touch == 2  # what the old rule took
    # a wider allowance admits the dip (85 % is within 5 points): settled from the lucky step on
    assert settled_steps(c, ann, gap=5.0) == 2
    # the paired SE widens the allowance by itself: at 89 of 90 the SE is about 1 point
    assert settled_steps(_curve([80, 89, 89]), ann, gap=0.0) == 2
    assert settled_steps(_curve([80, 90, 80]), ann, gap=0.0) is None  # not settled at T_max


def test_the_binomial_interval_by_hand_and_its_edges():
    from scipy.stats import binomtest

    from psnn_lib.statistics import binomial_interval

    for k, n in ((0, 500), (3, 500), (250, 500), (500, 500), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert binomial_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert binomial_interval(0, 500)[1] == pytest.approx(1 - 0.025 ** (1 / 500))  # the rule of three's exact form
    for bad in ((-1, 5), (6, 5), (1, 0), (1.5, 5), (True, 5)):
        with pytest.raises(ValueError, match="whole numbers"):
            binomial_interval(*bad)
    with pytest.raises(ValueError, match="level"):
        binomial_interval(1, 5, level=1.0)
