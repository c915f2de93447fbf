"""Calibration of a converted SNN through time (paper 2, Sect. 4.2, Fig. 2).

Not the converter's ``calibration=`` (data that sets each site's interval):
this *trains* the weights of a converted rate-coded SNN with
backpropagation through its T time steps, so that every layer's firing
rate matches the ANN's activation (the ANN: :func:`~.engine.analog_twin`,
the converted model with exact activations and the original weights).

The layers are the converted sites in the order they run, then the
network output, l = 1..L. A site's loss compares the ANN's activation with
the SNN's rate (mean output over the T steps), both in units of the
neuron's range [alpha N_th, P_th] (so 0 and 1 are the two thresholds), by
one of ``LOSSES``:

- ``"kl_neuron"``: Eq. 33 per neuron i, P(i) the ANN's normalised activation
  and Q(i) the firing rate, each the probability of a spike per step, so
  KL(P || Q) = P ln(P / Q) + (1 - P) ln((1 - P) / (1 - Q)), averaged over
  neurons: the reading of Sect. 5.1's words ("P(i) is the activation values
  in the ANN model, and Q(i) is the firing rate in the SNN model").
- ``"kl_map"``: KL between softmaxes over each sample's whole map (an earlier
  reading: about 1e-4 on Net4 and blind to a common offset of the map).
- ``"mse"``: the mean squared difference (a control).

The output layer's loss is always the KL of the softmaxes of the logits
(the usual distillation loss). Two schedules on one code path:

- ``joint_calibration``: all layers at once, Lambda = sum_l w_l(p) Lambda_l
  with the weights of :mod:`.layer_weights` (average, cosine, sigmoid) at
  progress p (Eqs. 25-29); every weight is trained.
- ``layerwise_calibration``: the two-stage baseline (Wang et al. 2025):
  layer l alone for ``epochs`` epochs (loss Lambda_l, only the weights that
  feed layer l trainable), l = 1..L in turn.

Spikes back-propagate by the sigmoid surrogate of Eq. 32, kappa following
the schedule of Sect. 5.1. The optimiser is Adam (the paper names none).

The reference ANN is frozen when a calibration starts (``reference=`` gives
another, e.g. the twin taken before an earlier calibration), so every layer
of a layer-wise run and :func:`calibration_loss` afterwards compare with the
original ANN. The SNN's spike statistics and neuron ``kappa`` are restored
when a calibration or a loss measurement ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import copy
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..neurons.signed import SignedIFNeuron
from ..progress import progress_bar
from ..converter.engine import ActivationSite, ConvertedModel, analog_twin
from .layer_weights import KAPPA_SCHEDULE, kappa_at, layer_weights
from ..converter.registry import positive_int

LR = 1e-4
LOSSES = ("kl_neuron", "kl_map", "mse")
RATE_FLOOR = 1e-4  # Q of kl_neuron valued in [floor, 1 - floor]: a rate of exactly 0 or 1 has a finite loss


def layer_kl(ann: torch.Tensor, snn: torch.Tensor) -> torch.Tensor:
    """KL(softmax(ann) || softmax(snn)) over each sample's map, averaged over the batch."""
    p = F.log_softmax(ann.flatten(1).float(), dim=1)
    q = F.log_softmax(snn.flatten(1).float(), dim=1)
    return F.kl_div(q, p, log_target=True, reduction="batchmean")


def neuron_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Eq. 33 per neuron on spike probabilities in [0, 1] (module docstring), averaged."""
    p = p.float().clamp(0, 1)
    q = q.float()
    q = q + (q.clamp(RATE_FLOOR, 1 - RATE_FLOOR) - q).detach()  # floored value, the gradient of q itself:
    # a neuron that fires at every step (or never) where the ANN asks less still learns
    return (torch.xlogy(p, p) - torch.xlogy(p, q) + torch.xlogy(1 - p, 1 - p) - torch.xlogy(1 - p, 1 - q)).mean()


def site_loss(loss: str, neuron: SignedIFNeuron, ann: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """One site's loss (``LOSSES``) between the ANN's activation and the SNN's rate."""
    if loss == "kl_map":
        return layer_kl(ann, rate)
    lo, hi = neuron.shaped(neuron.negative_value, ann), neuron.shaped(neuron.p_th, ann)
    p, q = (ann - lo) / (hi - lo), (rate - lo) / (hi - lo)
    return neuron_kl(p, q) if loss == "kl_neuron" else F.mse_loss(q.float(), p.float())


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown calibration loss {loss!r}; choose one of {', '.join(LOSSES)}")


@dataclass
class CalibrationHistory:
    """Per epoch: the mean total loss, mean per-layer losses and kappa; the layer names."""

    layers: list[str]
    epochs: list[dict] = field(default_factory=list)


class _Maps:
    """Sums of every site's outputs over the steps of one inference (hooks on the sites)."""

    def __init__(self, model: nn.Module) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.order: list[str] = []
        self.hooks = [m.register_forward_hook(self._add) for m in model.modules() if isinstance(m, ActivationSite)]

    def _add(self, module: ActivationSite, _inp, out: torch.Tensor) -> None:
        name = module.site_name  # a copy: the model may change the site's output in place later
        self.sums[name] = self.sums[name] + out if name in self.sums else out.clone()
        if name not in self.order:
            self.order.append(name)

    def take(self) -> dict[str, torch.Tensor]:
        sums, self.sums = self.sums, {}
        return sums

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


def _neurons(snn: ConvertedModel) -> list[SignedIFNeuron]:
    neurons = list(snn.neurons.values())
    if not neurons or not all(isinstance(n, SignedIFNeuron) for n in neurons):
        raise ValueError("calibration through time needs a model converted with a signed-spike method "
                         "('signed', 'ibt', 'symmetric', 'unsigned' or 'augmented'); this one has "
                         f"{sorted({type(n).__name__ for n in neurons}) or 'no converted site'}")
    return neurons


def _check_data(x: torch.Tensor) -> None:
    if not torch.is_tensor(x) or not torch.is_floating_point(x) or len(x) == 0:
        raise ValueError("calibration data must be a non-empty float tensor of model inputs")
    if not torch.isfinite(x).all():
        raise ValueError(f"the calibration data hold {int((~torch.isfinite(x)).sum())} NaN or infinite values")


class _Calibrator:
    """One SNN, its reference ANN and the per-layer losses on a batch; restores the
    SNN's spike statistics and kappa when closed."""

    def __init__(self, snn: ConvertedModel, reference: Optional[nn.Module], loss: str = "kl_neuron") -> None:
        _check_loss(loss)
        self.loss = loss
        self.neurons = _neurons(snn)
        self.snn, self.twin = snn, reference if reference is not None else analog_twin(snn)
        self.snn_maps, self.ann_maps = _Maps(snn.model), _Maps(self.twin)
        self.saved = (snn.samples, [(copy.copy(n.stats), n.kappa) for n in self.neurons])
        self.mode = snn.model.training
        snn.model.eval()  # batch norms and dropout as at inference

    def losses(self, xb: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            ann_out = self.twin(xb)
        ann = self.ann_maps.take()
        out = self.snn(xb)
        rates = {k: v / self.snn.passes for k, v in self.snn_maps.take().items()}
        order = self.ann_maps.order
        return [site_loss(self.loss, self.snn.neurons[k], ann[k], rates[k]) for k in order] + \
            [layer_kl(ann_out, out)]

    def layers(self, x: torch.Tensor) -> list[str]:
        with torch.no_grad():
            self.twin(x[:1])
        self.ann_maps.take()
        return self.ann_maps.order + ["output"]

    def close(self) -> None:
        self.snn_maps.remove()
        self.ann_maps.remove()
        self.snn.samples = self.saved[0]
        for n, (stats, kappa) in zip(self.neurons, self.saved[1]):
            n.stats, n.kappa = stats, kappa
            n.reset_state()
        self.snn.model.train(self.mode)


@torch.no_grad()
def calibration_loss(snn: ConvertedModel, x: torch.Tensor, batch_size: int = 256,
                     reference: Optional[nn.Module] = None, loss: str = "kl_neuron") -> list[float]:
    """Mean per-layer losses (``loss``; sites in order, then the output) of ``snn`` on ``x``,
    against ``reference`` (default: the ANN with the SNN's current weights; after a
    calibration pass the ``analog_twin`` taken before it to compare with the original ANN)."""
    _check_data(x)
    positive_int("batch_size", batch_size)
    cal = _Calibrator(snn, reference, loss)
    try:
        totals = None
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            values = [float(v) * len(xb) for v in cal.losses(xb)]
            totals = values if totals is None else [a + b for a, b in zip(totals, values)]
        return [v / len(x) for v in totals]
    finally:
        cal.close()


def _layer_parameters(snn: ConvertedModel) -> list[list[nn.Parameter]]:
    """The weights feeding each layer, in the order of the traced graph: those of the
    modules called (and the parameters read) after the previous site and before this
    one; the output layer's after the last site."""
    gm = snn.model
    if not isinstance(gm, torch.fx.GraphModule):
        raise ValueError("layer-wise calibration needs a model that torch.fx traces (this one was converted "
                         "by swapping modules): use joint_calibration")
    groups: list[list[nn.Parameter]] = [[]]
    seen: set[int] = set()
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), ActivationSite):
            groups.append([])
            continue
        if node.op == "call_module":
            params = list(gm.get_submodule(node.target).parameters())
        elif node.op == "get_attr" and isinstance(getattr_path(gm, node.target), nn.Parameter):
            params = [getattr_path(gm, node.target)]
        else:
            continue
        for p in params:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                groups[-1].append(p)
    return groups


def getattr_path(module: nn.Module, target: str):
    """``module.a.b.c`` for the dotted ``target`` of a ``get_attr`` node."""
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _train(snn: ConvertedModel, x: torch.Tensor, epochs: int, batch_size: int, lr: float, seed: int,
           weights_at, params: list[nn.Parameter], kappa_schedule, progress: bool, desc: str,
           history: CalibrationHistory, reference: nn.Module, loss: str) -> None:
    cal = _Calibrator(snn, reference, loss)
    trained = {id(p) for p in params}
    frozen = [p for p in snn.model.parameters() if p.requires_grad and id(p) not in trained]
    for p in frozen:  # no gradient piles up on weights this pass does not train
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    per_epoch = (len(x) + batch_size - 1) // batch_size
    total_steps = max(epochs * per_epoch - 1, 1)
    bar = progress_bar(total=epochs * per_epoch, desc=desc, enabled=progress)
    try:
        for epoch in range(epochs):
            kappa = kappa_at(epoch, kappa_schedule)
            for n in cal.neurons:
                n.kappa = kappa
            order = torch.randperm(len(x), generator=gen)
            sums, count = None, 0
            for b, i in enumerate(range(0, len(x), batch_size)):
                xb = x[order[i:i + batch_size]]
                losses = cal.losses(xb)
                w = weights_at(len(losses), (epoch * per_epoch + b) / total_steps)
                loss = sum(wl * ll for wl, ll in zip(w, losses))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                values = [float(v.detach()) for v in [loss, *losses]]
                sums = values if sums is None else [a + v for a, v in zip(sums, values)]
                count += 1
                bar.update()
                bar.set_postfix(loss=f"{values[0]:.4f}", kappa=kappa)
            history.epochs.append({"epoch": len(history.epochs), "kappa": kappa, "loss": sums[0] / count,
                                   "layer_losses": [v / count for v in sums[1:]]})
    finally:
        bar.close()
        cal.close()
        for p in frozen:
            p.requires_grad_(True)
        for p in params:
            p.grad = None


def _prepare(snn: ConvertedModel, x: torch.Tensor, epochs: int, batch_size: int, lr: float,
             kappa_schedule, reference: Optional[nn.Module]) -> tuple[list[str], nn.Module]:
    """Check the arguments; the layer names and the frozen reference ANN."""
    _neurons(snn)
    _check_data(x)
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not kappa_schedule or kappa_schedule[0][0] != 0 or any(k <= 0 for _, k in kappa_schedule):
        raise ValueError(f"kappa_schedule is ((0, kappa), (epoch, kappa), ...) with kappa > 0, got {kappa_schedule!r}")
    cal = _Calibrator(snn, reference)
    try:
        return cal.layers(x), cal.twin
    finally:
        cal.close()


def joint_calibration(snn: ConvertedModel, x: torch.Tensor, *, epochs: int, weighting: str = "cosine",
                      batch_size: int = 64, lr: float = LR, seed: int = 0,
                      kappa_schedule: tuple[tuple[int, float], ...] = KAPPA_SCHEDULE,
                      reference: Optional[nn.Module] = None, progress: bool = True,
                      loss: str = "kl_neuron") -> CalibrationHistory:
    """Train ``snn`` (in place) through time on inputs ``x``, all layers jointly (Eqs. 25-33),
    towards ``reference`` (default: the ANN of its weights now), each layer by ``loss``."""
    layer_weights(weighting, 1, 0.0)  # an unknown weighting fails before any work
    _check_loss(loss)
    layers, reference = _prepare(snn, x, epochs, batch_size, lr, kappa_schedule, reference)
    history = CalibrationHistory(layers)
    params = [p for p in snn.model.parameters() if p.requires_grad]
    _train(snn, x, epochs, batch_size, lr, seed, lambda L, p: layer_weights(weighting, L, p), params,
           kappa_schedule, progress, f"joint calibration ({weighting})", history, reference, loss)
    return history


def layerwise_calibration(snn: ConvertedModel, x: torch.Tensor, *, epochs: int, batch_size: int = 64,
                          lr: float = LR, seed: int = 0,
                          kappa_schedule: tuple[tuple[int, float], ...] = KAPPA_SCHEDULE,
                          reference: Optional[nn.Module] = None, progress: bool = True,
                          layers: Optional[int] = None, loss: str = "kl_neuron") -> CalibrationHistory:
    """The two-stage baseline: layers 1..``layers`` (default all) in turn, ``epochs`` epochs
    each, only the layer's own weights against its own loss; layer l runs on the spikes of
    the layers before it as calibrated (not on the ANN's stored inputs)."""
    _check_loss(loss)
    names, reference = _prepare(snn, x, epochs, batch_size, lr, kappa_schedule, reference)
    if layers is not None:
        positive_int("layers", layers)
    history = CalibrationHistory(names)
    groups = _layer_parameters(snn)
    L = len(names)
    for l in range(L if layers is None else min(layers, L)):
        def one_hot(n: int, _p: float, l: int = l) -> list[float]:
            return [1.0 if i == l else 0.0 for i in range(n)]
        if not groups[l]:
            warnings.warn(f"layer {l + 1} ({names[l]}) has no weights of its own: not calibrated", stacklevel=2)
            continue
        _train(snn, x, epochs, batch_size, lr, seed + l, one_hot, groups[l], kappa_schedule, progress,
               f"layer-wise calibration, layer {l + 1}/{L}", history, reference, loss)
    return history
