"""How batches reach a model: calibration data, model inputs and outputs.

A calibration batch (or a :class:`~psnn_lib.converter.engine.ConvertedModel`
call) may be

- a tensor: ``model(x)``;
- a dict (a tokenizer's output, a Hugging Face batch): ``model(**batch)``;
- a tuple or list ``(inputs, targets, ...)`` as torchvision loaders yield
  them: its first element is the input, itself a tensor, a dict, or a
  tuple/list of positional arguments (``((ids, mask), labels)``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import torch

Call = tuple[tuple, dict]


def as_call(batch: Any) -> Call:
    """The positional and keyword arguments of ``model(...)`` for one batch."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("an empty tuple is not a calibration batch")
        batch = batch[0]
        if isinstance(batch, (tuple, list)):
            return tuple(batch), {}
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, torch.Tensor):
        return (batch,), {}
    raise TypeError(f"a calibration batch is a tensor, a dict or a tuple (inputs, targets), "
                    f"not {type(batch).__name__}")


def batches(calibration: Union[torch.Tensor, Mapping, Iterable], limit: Optional[int]) -> Iterator[Call]:
    """The calls of the calibration data: one tensor or dict is one batch, and so is a lone
    ``(inputs, targets)`` tuple whose inputs hold as many samples as its targets tensor (as
    ``[(x, y)]``; never two batches ``x`` and ``y``; two input batches of one size given as a
    tuple are read that way too: give them as a list)."""
    if isinstance(calibration, (torch.Tensor, Mapping)) or _is_one_batch(calibration):
        calibration = [calibration]
    for i, batch in enumerate(calibration):
        if limit is not None and i >= limit:
            return
        yield as_call(batch)


def _is_one_batch(data: Any) -> bool:
    """A tuple ``(inputs, targets)`` whose inputs (a tensor, a dict or a tuple of model inputs) hold
    as many samples as the targets tensor: one batch, not two."""
    if not (isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], torch.Tensor) and data[1].dim()):
        return False
    try:
        return batch_size(as_call(data)) == len(data[1])
    except (TypeError, ValueError):
        return False


def _each_tensor(call: Call, fn: Callable[[torch.Tensor], torch.Tensor]) -> Call:
    args, kwargs = call
    def each(v: Any) -> Any:
        return fn(v) if isinstance(v, torch.Tensor) else v
    return tuple(each(a) for a in args), {k: each(v) for k, v in kwargs.items()}


def to_device(call: Call, device: torch.device) -> Call:
    return _each_tensor(call, lambda t: t.to(device))


def clone(call: Call) -> Call:
    """A copy whose tensors a model may overwrite in place."""
    return _each_tensor(call, torch.clone)


def batch_size(call: Call) -> int:
    """Samples in a call: the first dimension of its first tensor, however nested (1 for a scalar)."""
    found = tensors([*call[0], *call[1].values()])
    if not found:
        raise ValueError("a model call without any tensor argument")
    return found[0].shape[0] if found[0].dim() else 1


def tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor of a model output (tensor, tuple, list, dict, Hugging Face output)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in tensors(item)]
    return []


def tree_map(fn: Callable[..., torch.Tensor], first: Any, *rest: Any) -> Any:
    """``fn`` applied to the tensors of model outputs of one structure (tensor,
    tuple, named tuple, list, dict, Hugging Face output); other leaves are kept."""
    if isinstance(first, torch.Tensor):
        return fn(first, *rest)
    if isinstance(first, Mapping):
        return type(first)(**{k: tree_map(fn, first[k], *(r[k] for r in rest)) for k in first})
    if isinstance(first, (tuple, list)):
        items = [tree_map(fn, *group) for group in zip(first, *rest)]
        return type(first)(*items) if hasattr(first, "_fields") else type(first)(items)
    return first
