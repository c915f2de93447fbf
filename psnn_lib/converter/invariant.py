"""The time-invariant part of a multi-pass inference, computed once per inference.

A rate-coded SNN (``rate``, paper 2's neurons) runs its network ``passes`` times on
the same input. Whatever depends on no converted site (in a CNN the first
convolution of the input) gives the same values at every pass. :func:`split` cuts a
traced model's graph in two:

- ``prefix``: the nodes that depend on no site, evaluated once per inference, up
  to the *frontier* (those of them that a site-dependent node reads);
- ``step``: the rest, evaluated at every pass, reading the frontier's values from a
  :class:`Frontier` module instead of recomputing them.

Both graphs share the model's modules (parameters, sites and neurons), and the
values are the very tensors a pass would compute again, so every pass gives the
same bits as running the whole graph (``tests/test_invariant.py``).

The split is refused (None: every pass runs the whole graph, as before) wherever
skipping a node or sharing a value between passes could change anything:

- a node outside the sites that writes in place (``relu_``, ``+=``, ``out=``,
  ``x[i] = v``) or has side effects, and any in-place site (it could write into a
  value computed once, through a view);
- among the nodes computed once, a random function (``rand``, ``dropout``,
  ``bernoulli``, ``gumbel_softmax``, ...) or a normalisation that may update its
  running statistics (``batch_norm``, ``instance_norm`` called functionally);
- a frontier value that reaches the output without passing a site (a pass's output
  would share its memory with the other passes').

The caller (``ConvertedModel``) uses it only in inference (no gradients) with every
module of the prefix in eval mode, and for calls without stateful arguments
(:mod:`.stateful`: a cache is updated once per pass).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import fx, nn

from .sites import is_inplace

# calls that may give another value at every pass: random, or updating running statistics
_NOT_ONCE = ("rand", "dropout", "bernoulli", "normal", "multinomial", "poisson", "uniform", "exponential", "gumbel",
             "binomial", "rrelu", "gamma", "dirichlet", "batch_norm", "instance_norm")
_INPLACE_OPERATORS = {operator.setitem, operator.iadd, operator.isub, operator.imul, operator.itruediv,
                      operator.ifloordiv, operator.imod, operator.ipow, operator.iand, operator.ior,
                      operator.ixor, operator.ilshift, operator.irshift, operator.imatmul}


class Frontier(nn.Module):
    """The frontier's values of the current inference, by index."""

    def __init__(self) -> None:
        super().__init__()
        self.values: tuple = ()

    def forward(self, index: int) -> Any:
        return self.values[index]


@dataclass
class Split:
    """A graph cut at its frontier: run ``prefix`` once (:meth:`start`), then ``step`` per pass."""

    prefix: fx.GraphModule
    step: fx.GraphModule
    frontier: Frontier
    modules: list[nn.Module]  # the prefix's modules: every one must be in eval mode

    def start(self, values: Any) -> None:
        """Hold an inference's frontier values (``()`` once it has run: nothing outlives it)."""
        self.frontier.values = tuple(values)

    def usable(self) -> bool:
        """Every module of the prefix in eval mode (a training one may be random)."""
        return not any(m.training for m in self.modules)


def _name(node: fx.Node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _writes(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Does this node write into a tensor (in place, ``out=``, ``x[i] = v``) or have side effects?"""
    if node.op in ("placeholder", "get_attr", "output"):
        return False
    if node.op == "call_module":
        return bool(getattr(gm.get_submodule(node.target), "inplace", False))
    return node.is_impure() or node.target in _INPLACE_OPERATORS or "out" in node.kwargs or is_inplace(node)


def _random(node: fx.Node) -> bool:
    """Is this a call of a random function, or of a normalisation that may update running
    statistics (modules are judged at run time: eval mode)?"""
    return node.op in ("call_function", "call_method") and any(w in _name(node).lower() for w in _NOT_ONCE)


def _site_free_to_output(gm: fx.GraphModule, sites: Callable[[fx.Node], bool]) -> set[fx.Node]:
    """The nodes from which a path reaches the output without passing a site."""
    found: set[fx.Node] = set()
    todo = [n for n in gm.graph.nodes if n.op == "output"]
    while todo:
        for a in todo.pop().all_input_nodes:
            if a not in found and not sites(a):
                found.add(a)
                todo.append(a)
    return found


def split(gm: fx.GraphModule, sites: Callable[[fx.Node], bool]) -> Optional[Split]:
    """Cut ``gm`` at the frontier of the nodes that depend on no site (``sites(node)``: is it one);
    None where no computation lies before the sites or skipping a node could change a result."""
    varying: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op != "output" and (sites(node) or any(a in varying for a in node.all_input_nodes)):
            varying.add(node)
    fixed = [n for n in gm.graph.nodes if n not in varying and n.op != "output"]
    if any(_writes(gm, n) or _random(n) for n in fixed) \
            or any(gm.get_submodule(n.target).inplace if sites(n) else _writes(gm, n) for n in varying):
        return None
    frontier = [n for n in fixed if n.op not in ("placeholder", "get_attr")
                and any(u in varying or u.op == "output" for u in n.users)]
    if not frontier or set(frontier) & _site_free_to_output(gm, sites):
        return None
    holder = Frontier()

    prefix_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in fixed:
        env[node] = prefix_graph.node_copy(node, lambda n: env[n])
    prefix_graph.output(tuple(env[n] for n in frontier))  # with every placeholder: the model's arguments

    step_graph = fx.Graph()
    env = {}
    index = {n: i for i, n in enumerate(frontier)}
    for node in gm.graph.nodes:
        if node in index:
            env[node] = step_graph.call_module("psnn_frontier", (index[node],))
        elif node in varying or node.op in ("placeholder", "get_attr", "output"):
            env[node] = step_graph.node_copy(node, lambda n: env[n])
    gm.psnn_frontier = holder  # for a moment a submodule of the model, where the step graph finds it
    try:
        prefix = fx.GraphModule(gm, prefix_graph, class_name="InvariantPrefix")
        step = fx.GraphModule(gm, step_graph, class_name="Step")
    finally:
        del gm.psnn_frontier
    modules = [prefix.get_submodule(n.target) for n in prefix_graph.nodes if n.op == "call_module"]
    return Split(prefix, step, holder, modules)
