"""snntorch-ternary's ``TernaryLeaky`` neuron in a Leaky ReLU network, wired as a user would.

snntorch-ternary 0.1.3 ships a neuron, not a converter: ``TernaryLeaky`` is
snnTorch's leaky integrate-and-fire neuron with a second threshold; it fires
+1 above ``threshold``, -1 below ``-neg_threshold``, resets by subtraction
(one step later: ``reset_delay``) and starts from 0. Both spikes carry one
value, so the only wiring that computes a Leaky ReLU of slope alpha is the
IBT neuron's (paper 2, Eq. 18): no leak (beta = 1), thresholds theta and
theta / alpha, a spike worth +-theta. :func:`convert` puts that neuron in
place of every ``nn.LeakyReLU`` module, theta the largest input of the
module on the calibration images (data-based normalisation, our min-max
``r``); the SNN is presented the analog image at every step. Other
activation modules, and a Leaky ReLU module used twice, are refused, not
left analog (:func:`convert`).

The package's default spike function (``atan_ternary``) is a sign in its
forward pass, not a step: the neuron's two comparisons then each give -1 or
+1 and their difference emits +-2 and resets by twice a threshold (a
constant input of -1.5 thresholds averages to a *positive* output).
:func:`convert` passes snnTorch's own step with an arctan surrogate
(``snntorch.surrogate.atan``), with which the spikes are the documented
{-1, 0, +1}; ``tests/test_peers.py`` checks both.

Install: ``pip install --no-deps snntorch==1.0.0 snntorch-ternary==0.1.3``
(pinned in ``requirements-data.txt``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..paper2.evaluation import StepCurve
from .activations import is_activation

INSTALL = "pip install --no-deps snntorch==1.0.0 snntorch-ternary==0.1.3"


def _ternary_leaky(**kwargs) -> nn.Module:
    """A TernaryLeaky neuron with snnTorch's Heaviside spike (module docstring), or an
    ImportError naming the install command."""
    try:
        from snntorch import surrogate
        from snntorch_ternary import TernaryLeaky
    except ImportError as err:
        raise ImportError(f"the snntorch-ternary peer needs snntorch-ternary 0.1.3: {INSTALL} "
                          "(requirements-data.txt pins it; 'make' installs it)") from err
    return TernaryLeaky(spike_grad=surrogate.atan(), **kwargs)


class TernarySite(nn.Module):
    """theta * TernaryLeaky(x / theta), thresholds 1 and 1 / alpha; counts its spikes."""

    def __init__(self, theta: float, alpha: float) -> None:
        super().__init__()
        self.theta = theta
        self.neuron = _ternary_leaky(beta=1.0, threshold=1.0, neg_threshold=1.0 / alpha,
                                     symmetric_threshold=False, reset_mechanism="subtract")
        self.spikes = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spk, _ = self.neuron(x / self.theta)
        self.spikes += int((spk != 0).sum())
        return spk * self.theta

    def reset(self) -> None:
        self.neuron.mem = self.neuron.threshold.new_zeros(0)  # on the site's device


@torch.no_grad()
def convert(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with a :class:`TernarySite` for every ``nn.LeakyReLU`` (slope in (0, 1]).

    Refused: any other activation module (what the converter would convert or refuse:
    :func:`psnn_lib.converter.sites.module_activation`), a LeakyReLU module called more than
    once per forward (one module would then hold one membrane for several feature maps:
    torchvision's ResNets reuse their activation), and non-finite or empty calibration
    data. Activations written as functional calls are not modules: this peer does not
    see them (``psnn_lib.convert`` traces them)."""
    if not len(calibration) or not bool(torch.isfinite(calibration).all()):
        raise ValueError("the calibration images must be a non-empty, finite tensor")
    net = copy.deepcopy(model).eval()
    leaky = {name: m for name, m in net.named_modules() if isinstance(m, nn.LeakyReLU)}
    others = [f"{name} ({type(m).__name__})" for name, m in net.named_modules()
              if not isinstance(m, nn.LeakyReLU) and is_activation(m)]
    if not leaky or others:
        raise ValueError("the snntorch-ternary peer converts nn.LeakyReLU modules only; "
                         + (f"found {', '.join(others)}" if others else "the model has none"))
    bad = [f"{name} (slope {m.negative_slope})" for name, m in leaky.items() if not 0 < m.negative_slope <= 1]
    if bad:
        raise ValueError(f"a ternary neuron computes a Leaky ReLU of slope in (0, 1] only: {', '.join(bad)}")
    peak, calls = dict.fromkeys(leaky, 0.0), dict.fromkeys(leaky, 0)

    def observe(key: str, inp: torch.Tensor) -> None:
        peak[key] = max(peak[key], float(inp.max()))
        calls[key] += 1

    hooks = [m.register_forward_hook(lambda _m, inp, _o, key=name: observe(key, inp[0])) for name, m in leaky.items()]
    try:
        net(calibration.to(next(net.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    reused = [f"{name} (x{n})" for name, n in calls.items() if n > 1]
    if reused:
        raise ValueError(f"LeakyReLU modules called more than once per forward: {', '.join(reused)}; "
                         "give each use its own module (one membrane per feature map)")
    for name, m in leaky.items():
        if not peak[name] > 0:
            raise ValueError(f"{name}: no positive input on the calibration images, no threshold")
        parent, _, child = name.rpartition(".")
        site = TernarySite(peak[name], m.negative_slope).to(next(net.parameters()).device)
        setattr(net.get_submodule(parent) if parent else net, child, site)
    return net


@torch.no_grad()
def accuracy_by_step(snn: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int, batch_size: int = 100
                     ) -> StepCurve:
    """Which images are right and each site's spikes per image after t = 1..T steps (the running
    mean of the outputs), the neurons reset before every batch."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    named = {name: m for name, m in snn.named_modules() if isinstance(m, TernarySite)}
    sites = list(named.values())
    if not sites:
        raise ValueError("no TernarySite in this model: convert it with snntorch_ternary.convert first")
    correct = torch.zeros(T, len(x), dtype=torch.bool)
    spikes = torch.zeros(T, len(sites), dtype=torch.float64)
    device = next(snn.parameters()).device
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        for site in sites:
            site.reset()
            site.spikes = 0
        total, before = 0.0, torch.zeros(len(sites), dtype=torch.float64)
        for t in range(T):
            total = total + snn(xb).double()
            correct[t, i:i + batch_size] = (total.argmax(-1) == yb).cpu()
            fired = torch.tensor([site.spikes for site in sites], dtype=torch.float64)
            spikes[t:] += fired - before
            before = fired
    return StepCurve(correct, dict(zip(named, (spikes / len(x)).T.tolist())))
