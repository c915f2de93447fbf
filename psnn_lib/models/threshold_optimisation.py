"""Threshold optimisation (paper 2, Sect. 4.1): a fine-tuning of the ANN, not a conversion.

Two stages, each a few epochs of :func:`~psnn_lib.models.training.train`
with its own loss:

1. :class:`VariancePenalty`: cross-entropy plus lambda_1 times the penalty
   of Eq. 23, eta = sigma^3 / (|m| + eps)^3, per channel of every activation
   output (sigma and m over the batch and the spatial positions), averaged
   over channels and layers. lambda_1 = 0.1 |Lambda_c| / eta, detached
   (Sect. 5.1, Eq. 31), keeps the penalty at a tenth of the task loss
   whatever its scale. For networks with batch norm before the activation,
   ``form="bn"`` takes sigma and m from the BN parameters (|gamma|, beta):
   the "BN-parameter form" of the paper.
2. :func:`add_clipping` puts a trainable clipping layer (:class:`ClippedLeakyReLU`)
   in place of every LeakyReLU, initialised at the range the activations
   reach on the given data, and :func:`clipping_loss` trains the thresholds
   with the L2 term of Eq. 24.

The converter then normalises by the learned thresholds (the clipped
activation's ``bounds``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .clipping import ClippedLeakyReLU, threshold_l2

EPSILON = 1e-2  # eps of Eq. 23 (the paper: "a very small positive number")
PENALTY_SHARE = 0.1  # lambda_1 = 0.1 |Lambda_c| / eta (Sect. 5.1)


def variance_penalty(a: torch.Tensor, eps: float = EPSILON) -> torch.Tensor:
    """Eq. 23 per channel of an activation output (N, C, ...), averaged over channels."""
    if a.dim() < 2:
        raise ValueError(f"an activation output has a batch and a channel dimension, got shape {tuple(a.shape)}")
    per_channel = a.transpose(0, 1).reshape(a.shape[1], -1)
    sigma, m = per_channel.std(dim=1, unbiased=False), per_channel.mean(dim=1)  # defined for one sample
    return (sigma / (m.abs() + eps)).pow(3).mean()


def bn_variance_penalty(bn: nn.BatchNorm2d, eps: float = EPSILON) -> torch.Tensor:
    """Eq. 23 from a batch norm's parameters: sigma = |gamma|, m = beta, averaged over channels."""
    return (bn.weight.abs() / (bn.bias.abs() + eps)).pow(3).mean()


def adaptive_weight(task_loss: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """lambda_1 = 0.1 |Lambda_c| / eta, detached from both (Sect. 5.1)."""
    return PENALTY_SHARE * task_loss.detach().abs() / penalty.detach().clamp_min(1e-12)


def _is_activation(m: nn.Module) -> bool:
    return isinstance(m, (nn.LeakyReLU, ClippedLeakyReLU))


class VariancePenalty:
    """The loss of Eq. 31, Lambda_c + lambda_1 eta, for :func:`~psnn_lib.models.training.train`.

    ``form="activations"`` hooks every LeakyReLU output of ``model``;
    ``form="bn"`` uses the batch norms that feed an activation (VGG, ResNet).
    ``last`` holds (task loss, eta) of the last batch.
    """

    def __init__(self, model: nn.Module, form: str = "activations", eps: float = EPSILON) -> None:
        if form not in ("activations", "bn"):
            raise ValueError(f"form must be 'activations' or 'bn', got {form!r}")
        self.form, self.eps, self.model = form, eps, model
        self._outputs: list[torch.Tensor] = []
        acts = [m for m in model.modules() if _is_activation(m)]
        if not acts:
            raise ValueError(f"{type(model).__name__} has no LeakyReLU: threshold optimisation needs one")
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        if form == "bn" and not self.bns:
            raise ValueError(f"{type(model).__name__} has no batch norm: use form='activations'")
        self.hooks = [m.register_forward_hook(lambda _m, _i, out: self._outputs.append(out)) for m in acts] \
            if form == "activations" else []
        self.last = (float("nan"), float("nan"))

    def eta(self) -> torch.Tensor:
        if self.form == "bn":
            terms = [bn_variance_penalty(bn, self.eps) for bn in self.bns]
        else:
            terms = [variance_penalty(a, self.eps) for a in self._outputs]
        self._outputs.clear()
        return torch.stack(terms).mean()

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        task = F.cross_entropy(logits, y)
        eta = self.eta()
        self.last = (float(task.detach()), float(eta.detach()))
        return task + adaptive_weight(task, eta) * eta

    def remove(self) -> None:
        """Take the hooks off the model."""
        for h in self.hooks:
            h.remove()


@torch.no_grad()
def add_clipping(model: nn.Module, x: torch.Tensor, symmetric: bool = False, batch_size: int = 500) -> nn.Module:
    """Replace every ``nn.LeakyReLU`` of ``model`` (in place) by a :class:`ClippedLeakyReLU`
    whose thresholds start at the largest and smallest output it gives on ``x``
    (so nothing is clipped at first); ``symmetric`` ties theta_N = -theta_P. A LeakyReLU
    module called at several places gets one clipping layer (shared thresholds)."""
    found = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, nn.LeakyReLU)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.LeakyReLU module to clip")
    lo = {id(c): torch.inf for _, _, c in found}
    hi = {id(c): -torch.inf for _, _, c in found}

    def record(m, _inp, out):
        lo[id(m)], hi[id(m)] = min(lo[id(m)], float(out.min())), max(hi[id(m)], float(out.max()))
    hooks = [c.register_forward_hook(record) for _, _, c in found]
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    for parent, name, child in found:
        top, bottom = max(hi[id(child)], 1e-3), min(lo[id(child)], -1e-3)
        if symmetric:
            top = max(top, -bottom)
        try:
            clip = ClippedLeakyReLU(child.negative_slope, top, bottom, symmetric)
        except ValueError as err:
            raise ValueError(f"{type(parent).__name__}.{name}: {err}") from None
        setattr(parent, name, clip.to(device))
    return model


def clipping_loss(model: nn.Module, weight: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy plus ``weight`` times Eq. 24 (the thresholds' L2 norm)."""
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y) + weight * threshold_l2(model)
    return loss
