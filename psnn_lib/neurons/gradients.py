"""Outputs that pass no gradient: a backward pass through them is an error, never a silent zero.

PS and FS neurons compute from tables, rate-coded IF neurons and augmented spikes from
Heaviside steps without a surrogate: none of them has a gradient. Where such an output
enters a graph whose input needs gradients, :func:`no_gradient` ties it to that input
so that ``backward()`` raises with ``why`` instead of leaving the weights before it
without gradient.
"""
from __future__ import annotations

import torch


class _NoGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, out: torch.Tensor, why: str) -> torch.Tensor:
        ctx.why = why
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        raise RuntimeError(ctx.why)


def no_gradient(x: torch.Tensor, out: torch.Tensor, why: str) -> torch.Tensor:
    """``out`` as it is, unless gradients are on and ``x`` needs them: then ``out`` in the graph,
    where a backward pass raises ``RuntimeError(why)``."""
    if torch.is_grad_enabled() and x.requires_grad and not out.requires_grad:
        return _NoGradient.apply(x, out, why)
    return out
