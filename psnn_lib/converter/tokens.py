"""Padding in sequence models: which entries of an activation are real tokens.

A batch of sentences is padded to its longest sentence; a Hugging Face
model marks the padding with zeros in its ``attention_mask`` input and
masks it out of attention, so nothing a padded position computes reaches
a real token's output. ``convert(model, ..., token_mask="attention_mask")``
names that input. While a call runs, :func:`token_positions` holds the
mask, and a site whose input is batch-first per token, ``(batch, length,
features...)`` with the mask's ``(batch, length)``, is *per token*: only its
entries at real tokens are calibrated, run by the neurons and counted in
the spike statistics (so padding shapes no interval and adds no spike);
padded entries run the exact activation. A site of another shape (a
pooler's tanh on the ``(batch, hidden)`` sentence vector, or a
``(batch, length)`` tensor without a feature dimension) counts every entry,
and the converter notes it. A sequence-first input ``(length, batch, ...)``
is an error when length and batch differ; when they are equal the two
layouts cannot be told apart, so a token mask needs a batch-first model.
"""
from __future__ import annotations

import contextvars
from typing import Any, Optional

import torch

_MASK: contextvars.ContextVar[Optional[torch.Tensor]] = contextvars.ContextVar("psnn_token_mask", default=None)


def check_mask(mask: Any, name: str) -> torch.Tensor:
    """The boolean ``(batch, length)`` mask of a call's ``name`` input (1 or True at a real
    token, 0 or False at padding); anything else is an error."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"token_mask={name!r}: every call must pass {name} as a tensor "
                         f"(keyword argument), got {type(mask).__name__}")
    if mask.dim() != 2:
        raise ValueError(f"token_mask={name!r}: {name} must be (batch, length), got shape {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"token_mask={name!r}: {name} must hold only 0 and 1 (or booleans)")
    return mask.bool()


class token_positions:
    """Context: ``mask`` (boolean ``(batch, length)``) marks the real tokens of the call."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def __enter__(self) -> torch.Tensor:
        self._token = _MASK.set(self.mask)
        return self.mask

    def __exit__(self, *exc: Any) -> None:
        _MASK.reset(self._token)


def active_mask() -> Optional[torch.Tensor]:
    """The mask of the call that is running (None outside :class:`token_positions`)."""
    return _MASK.get()


def real_tokens(x: torch.Tensor, mask: torch.Tensor, where: str) -> Optional[torch.Tensor]:
    """``mask`` (on ``x``'s device) where ``x`` is batch-first per token, else None; a
    sequence-first per-token input (``(length, batch, ...)``, length != batch) is an error."""
    b, n = mask.shape
    if x.dim() > 2 and x.shape[:2] == mask.shape:
        return mask.to(x.device)
    if x.dim() > 2 and x.shape[:2] == (n, b):
        raise ValueError(f"{where}: its input {tuple(x.shape)} is sequence-first (length {n}, batch {b}); "
                         "token_mask needs batch-first activations (batch, length, features...)")
    return None
