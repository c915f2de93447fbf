"""Stateful arguments of multi-pass calls: Hugging Face caches (issue 21).

A Hugging Face ``Cache`` (``DynamicCache``, ``StaticCache``, ``EncoderDecoderCache``,
...) passed as ``past_key_values`` is state: the model appends the call's keys and
values to it in place and returns it. A rate-coded method runs the model once per
network time step (``passes``), so the caller's cache would be appended to once per
step (9 cached tokens become 17 after one token at T = 8), each step would attend to
the steps before it, and the output would carry step 1's cache. Here instead:

- every pass runs on its own deep copy of each stateful argument
  (:func:`private_states`); the caller's object is not touched while the passes run;
- ``ConvertedModel.forward`` averages the state tensors of the passes' caches
  (:class:`PassStates`), the rate-coded value, as it averages every tensor output:
  the copies of the caller's caches, and caches the model makes and returns itself
  (``model(input_ids)`` with ``use_cache=True``). Entries equal in every pass (the
  prefix, a layer before any neuron) are kept exactly;
- the caller's cache then holds that average, updated once as the ANN would update
  it (its attributes are replaced by those of the averaged copy; with
  ``use_cache=False`` too, as GPT-2 still appends to a cache it is given), and the
  output returns the caller's object itself where the model returned it, as the ANN
  does; a cache the model made is returned holding the average.

A state that differs between passes but cannot be averaged (integer or float8
tensors such as a ``QuantizedCache``'s, tensor subclasses, tensors of another shape,
another structure) is a ``ValueError`` raised after the passes that says what to do
(no cache, or a one-pass method); the caller's cache is then left as it was.
``ConvertedModel.steps`` alone runs every step on its own copy and never touches the
caller's cache; each step's output carries that step's copy.

Stateful means an instance of a class whose MRO has a class of the ``transformers``
package whose name ends in ``Cache`` (found without importing ``transformers``), given
as a top-level positional or keyword argument. A one-pass method (``ps``) calls the
model once on the caller's objects, exactly as the ANN.
"""
from __future__ import annotations

import contextvars
import copy
from collections.abc import Mapping
from typing import Any, Optional

import torch

from .inputs import Call

# the PassStates of the forward call that is running (None outside one)
_ACTIVE: contextvars.ContextVar[Optional["PassStates"]] = contextvars.ContextVar("psnn_pass_states", default=None)
# dtypes whose differing state is averaged
_AVERAGED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _from_transformers(obj: Any) -> bool:
    """Is ``obj`` an instance of a class from ``transformers`` (or of a subclass of one)?"""
    return any(c.__module__.split(".")[0] == "transformers" for c in type(obj).__mro__)


def is_stateful(value: Any) -> bool:
    """Is ``value`` a Hugging Face cache (``transformers`` class named ``...Cache`` in its MRO)?"""
    return any(c.__module__.split(".")[0] == "transformers" and c.__name__.endswith("Cache")
               for c in type(value).__mro__)


def _tensors(obj: Any, seen: Optional[set[int]] = None) -> list[torch.Tensor]:
    """The state tensors of a cache, in a fixed order: found through its attributes,
    those of the ``transformers`` objects it holds (layers, sub-caches) and lists,
    tuples and dicts, each tensor once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    elif _from_transformers(obj) and hasattr(obj, "__dict__"):
        items = list(vars(obj).values())
    else:
        return []
    return [t for item in items for t in _tensors(item, seen)]


def _with_tensors(obj: Any, new: list[torch.Tensor]) -> Any:
    """A deep copy of the cache ``obj`` holding ``new`` in place of its state tensors."""
    return copy.deepcopy(obj, {id(t): n for t, n in zip(_tensors(obj), new)})


def private_states(call: Call) -> Call:
    """``call`` with each stateful argument replaced by a deep copy (tensors cloned),
    registered with the running :class:`PassStates` (if any)."""
    states = _ACTIVE.get()
    copies: dict[int, Any] = {} if states is None else states.copies
    def own(value: Any) -> Any:
        if not is_stateful(value):
            return value
        copies[id(value)] = _with_tensors(value, [t.clone() for t in _tensors(value)])
        return copies[id(value)]
    args, kwargs = call
    return tuple(own(a) for a in args), {k: own(v) for k, v in kwargs.items()}


def _stateful_in(out: Any) -> list[Any]:
    """The stateful objects of a model output (tensor, tuple, list, dict, Hugging Face output)."""
    if is_stateful(out):
        return [out]
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [s for item in out for s in _stateful_in(item)]
    return []


def _swap(out: Any, table: dict[int, Any]) -> Any:
    """``out`` with each object whose id is in ``table`` replaced by its entry."""
    if id(out) in table:
        return table[id(out)]
    if isinstance(out, Mapping):
        return type(out)(**{k: _swap(v, table) for k, v in out.items()})
    if isinstance(out, (tuple, list)):
        items = [_swap(v, table) for v in out]
        return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)
    return out


class PassStates:
    """Context of one multi-pass forward call: the caller's stateful arguments, and the
    running average of the passes' states. Inside it, :func:`private_states` registers
    each pass's copies; :meth:`add` takes in each pass's output after it ran, and
    :meth:`settle` writes the averages and returns the output to give the caller."""

    def __init__(self, call: Call, passes: int) -> None:
        found = {id(v): v for v in (*call[0], *call[1].values()) if is_stateful(v)}
        self.originals, self.passes = list(found.values()), passes
        self.copies: dict[int, Any] = {}  # id of an original -> its copy in the pass that runs
        self._objects: list[Any] = []  # pass 1's stateful objects: copies of the originals, then new ones
        self._first: list[torch.Tensor] = []  # their state tensors
        self._sums: list[Optional[torch.Tensor]] = []  # per tensor: sum over passes of (pass - pass 1), if any differs
        self._added = 0
        self._problem: Optional[str] = None

    def __enter__(self) -> "PassStates":
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.reset(self._token)

    def add(self, out: Any) -> None:
        """Take in one pass: the state of its copies of the caller's objects and of
        the stateful objects new in its output."""
        mine = [self.copies[id(o)] for o in self.originals]
        objects = mine + [s for s in _stateful_in(out) if all(s is not c for c in mine)]
        state = [(type(o).__name__, t) for o in objects for t in _tensors(o)]
        self._added += 1
        if self._added == 1:
            self._objects, self._first, self._sums = objects, [t for _, t in state], [None] * len(state)
            return
        if [type(o) for o in objects] != [type(o) for o in self._objects] or len(state) != len(self._first):
            self._problem = self._problem or (
                f"the stateful objects {[type(o).__name__ for o in objects]} (state of {len(state)} tensors) of "
                f"time step {self._added} are not those of step 1 ({[type(o).__name__ for o in self._objects]})")
            return
        for i, ((owner, t), f) in enumerate(zip(state, self._first)):
            if t.shape == f.shape and t.dtype == f.dtype and torch.equal(t, f):
                continue
            if t.shape != f.shape or t.dtype != f.dtype or t.dtype not in _AVERAGED or type(t) is not torch.Tensor:
                self._problem = self._problem or (
                    f"the state of a {owner} differs between time steps in a {type(t).__name__} of dtype "
                    f"{t.dtype} and shape {tuple(t.shape)} (step 1: {f.dtype}, {tuple(f.shape)}), which cannot "
                    "be averaged")
                return
            acc = torch.promote_types(t.dtype, torch.float32)
            diff = t.to(acc) - f.to(acc)
            self._sums[i] = diff if self._sums[i] is None else self._sums[i] + diff

    def settle(self, out: Any) -> Any:
        """Each object of pass 1 set to the average over the passes (the caller's
        objects updated in their place), and ``out`` returning the caller's objects
        where it returned pass 1's copies of them."""
        if self._problem is not None:
            raise ValueError(f"a multi-pass method ({self.passes} time steps) averages a Hugging Face cache over "
                             f"its time steps, but {self._problem}; the caller's cache is left as it was. Call "
                             "without a cache (use_cache=False, no past_key_values) or convert with a one-pass "
                             "method ('ps')")
        means = [f if s is None else (f.to(s.dtype) + s / self.passes).to(f.dtype)
                 for f, s in zip(self._first, self._sums)]
        table: dict[int, Any] = {}
        for i, obj in enumerate(self._objects):
            n = len(_tensors(obj))
            averaged, means = _with_tensors(obj, means[:n]), means[n:]
            target = self.originals[i] if i < len(self.originals) else obj
            vars(target).clear()
            vars(target).update(vars(averaged))
            table[id(obj)] = target
        return _swap(out, table) if table else out
