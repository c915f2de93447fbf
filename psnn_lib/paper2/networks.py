"""Paper 2's trained and calibrated networks: recipes, the command that makes them, loaders.

Each name is one stage of the paper's pipeline on real Fashion-MNIST; a
stage starts from the committed file of the stage before it, so the chain is
the paper's (ANN -> threshold optimisation -> conversion -> calibration
through time):

- ``net4_ann``: Net4 with LeakyReLU (alpha = 0.1) and dropout 0.5 before the last layer,
  trained with Adam (Table 1's ANN); with or without per-image shifts, chosen on a
  validation split held out of the training set (``VALIDATION_IMAGES``).
- ``net4_thresholds``: threshold optimisation of ``net4_ann`` (Sect. 4.1):
  the variance penalty (Eq. 23, 31), then trainable clipping layers (Eq. 24), the
  weight of Eq. 24 chosen on the validation split (``CLIP_WEIGHTS``, ``CLIP_RULE_POINTS``).
- ``net4_strelu``: Net4 trained with the symmetric-threshold ReLU, clip(x, -theta, theta)
  with one trainable theta per layer, by the task loss alone and ``net4_ann``'s chosen
  training (the stReLU baseline of Table 1).
- ``net4_calibrated_{average,cosine,sigmoid}``: ``net4_thresholds`` converted with the
  signed neuron at T = 10 and calibrated jointly through time (Sect. 4.2, Table 5) on a
  1,024-image subset for the paper's 25 epochs (its kappa schedule needs 20) at learning
  rate 1e-5, each layer by Eq. 33 per neuron (``loss="kl_neuron"``); every layer's loss
  before and after, under each of ``LOSSES``, on 1,000 validation images goes to the manifest.
- ``{vgg16,resnet18}_{ann,thresholds,symmetric}`` and ``{...}_{proposed,twostage}_t{4,8}``:
  Tables 2 and 3 at a size a 2-core CPU trains (width 1/8, average pooling, 20k training
  images, 6 epochs; calibration on 1,024 images at lr 1e-3: 2 joint epochs, or for the
  two-stage baseline its two stages, the initial membranes (:mod:`psnn_lib.through_time.membranes`,
  stored per site and channel in the manifest) and then 2 epochs per layer; its ANN clips
  symmetrically with a threshold trained by the task loss alone, as Wang et al. 2025 do).

Weights are stored as float16 (``data/checkpoints/``, SHA-256 and the command
in ``data/paper2_networks.json``); every accuracy in the manifest is measured on
the stored (rounded) weights. Converted stages also store their per-site
intervals, so that the committed SNN is rebuilt exactly. An entry also records its recipe
(and, made from now on, the recipe's digest): a network made by another recipe than its
current one is not loaded (:class:`ChangedRecipe`; :func:`ensure` remakes it at the paper scale).
At the paper scale the trainings resume after a killed run (:func:`_resumable`).

Scales: ``committed`` (the files in ``data/``), ``paper`` (the paper's sizes, made on first
use in ``paths.paper_networks_dir()``), and the paper scale shrunk by a few overrides
(:func:`paper_scale`: fewer epochs and images), which runs the paper's whole pipeline in minutes
and keeps its networks in a folder of its own; :func:`is_paper` is true for both of the latter.

    python -m psnn_lib.paper2.networks net4_ann net4_thresholds ... [--device cuda]
        [--scale paper | --recipe '{"epochs": 1, "train_images": 256}']
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import paths
from ..converter.engine import ConvertedModel, analog_twin, convert
from ..file_lock import exclusive, lock_file_for
from ..through_time.membranes import membrane_calibration
from ..through_time.calibrate import LOSSES, calibration_loss, joint_calibration, layerwise_calibration
from ..models import cifar, datasets
from ..models.checkpoints import manifest_entries, save_state, verified_state
from ..models.clipping import ClippedLeakyReLU
from ..models.threshold_optimisation import VariancePenalty, add_clipping, clipping_loss
from ..models.training import accuracy, predict, recipe_digest, seed_everything, train
from .evaluation import SNN_BATCH, firing_rates

ALPHA = 0.1  # LeakyReLU slope: the paper's "10 times" (IBT threshold P_th / alpha)
CALIBRATION_IMAGES = 5000  # training images that set the converter's intervals
VALIDATION_IMAGES = 5000  # held out of Net4's training set (seeded) to choose recipes before the test set
VALIDATION_SEED = 2025
TRAINING_KEYS = ("epochs", "lr", "optimizer", "weight_decay", "augment", "per_image", "shift")
SMALL = {"width": 0.125}  # VGG-16 / ResNet-18 at 1/8 width for the CPU


def _ann(arch: str, pad_to: Optional[int], epochs: int, lr: float, train_images: Optional[int] = None,
         extra: Optional[dict] = None) -> dict:
    return {"stage": "ann", "arch": arch, "pad_to": pad_to, "epochs": epochs, "lr": lr,
            "train_images": train_images, "kwargs": {"in_channels": 1, "num_classes": 10, **(extra or {})}}


def _deep(arch: str) -> dict[str, dict]:
    base = {"arch": arch, "pad_to": 32, "pool": "avg",
            "kwargs": {"in_channels": 1, "num_classes": 10, "activation": f"leaky_relu:{ALPHA:g}", **SMALL}}
    out = {f"{arch}_ann": {**_ann(arch, 32, 6, 0.05, 20_000, {"activation": f"leaky_relu:{ALPHA:g}", **SMALL}),
                           "pool": "avg"},
           f"{arch}_thresholds": {**base, "stage": "thresholds", "from": f"{arch}_ann", "form": "bn",
                                  "clipping": "asymmetric", "penalty_epochs": 1, "lr": 0.005,
                                  "clip_epochs": 1, "clip_lr": 0.01, "clip_weights": (0.1,), "train_images": 20_000},
           f"{arch}_symmetric": {**base, "stage": "clip", "from": f"{arch}_ann", "clipping": "symmetric",
                                 "clip_epochs": 1, "clip_lr": 0.01, "clip_weights": (0.0,), "train_images": 20_000}}
    for T in (4, 8):
        out[f"{arch}_proposed_t{T}"] = {**base, "stage": "calibrate", "from": f"{arch}_thresholds",
                                        "method": "signed", "T": T, "schedule": "cosine", "epochs": 2,
                                        "images": 1024, "lr": 1e-3, "loss": "kl_map"}
        out[f"{arch}_twostage_t{T}"] = {**base, "stage": "calibrate", "from": f"{arch}_symmetric",
                                        "method": "ibt", "T": T, "membranes": True, "schedule": "layerwise",
                                        "epochs": 2, "images": 1024, "lr": 1e-3, "loss": "kl_map"}
    return out


_NET4 = {"arch": "net4", "pad_to": None, "validation": VALIDATION_IMAGES,
         "kwargs": {"in_channels": 1, "num_classes": 10, "activation": f"leaky_relu:{ALPHA:g}", "dropout": 0.5}}
# Net4's training, fixed before any test image was scored: Adam with dropout 0.5 before the
# last layer, one-cycle learning rate; whether per-image shifts help is chosen on the
# validation split (the candidate with the higher validation accuracy; ties: the first)
NET4_TRAINING = {"epochs": 15, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0}
NET4_CANDIDATES = {"no augmentation": {"augment": False},
                   "shift of up to 2 px per image": {"augment": True, "per_image": True, "shift": 2}}
# Eq. 24's weight, chosen on the validation split by a rule fixed before Table 4 was looked at:
# the largest weight whose network stays within CLIP_RULE_POINTS of net4_ann's validation accuracy
CLIP_WEIGHTS = (0.005, 0.01, 0.02, 0.05)
CLIP_RULE_POINTS = 0.3
RECIPES: dict[str, dict[str, Any]] = {
    "net4_ann": {**_NET4, "stage": "ann", **NET4_TRAINING, "candidates": NET4_CANDIDATES},
    "net4_thresholds": {**_NET4, "stage": "thresholds", "from": "net4_ann", "form": "activations",
                        "clipping": "asymmetric", "penalty_epochs": 3, "clip_epochs": 3, "lr": 0.005,
                        "clip_lr": 0.01, "clip_weights": CLIP_WEIGHTS},
    # Han et al.'s stReLU: the ANN trained with clip(x, -theta, theta), one trainable theta per
    # layer, by the task loss alone, on net4_ann's chosen training (same budget)
    "net4_strelu": {**_NET4, "stage": "strelu", "kwargs": {**_NET4["kwargs"], "activation": "leaky_relu:1"},
                    "settings_from": "net4_ann", "clipping": "symmetric"},
    **{f"net4_calibrated_{w}": {**_NET4, "stage": "calibrate", "from": "net4_thresholds", "method": "signed",
                                "T": 10, "schedule": w, "epochs": 25, "images": 1024, "lr": 1e-5,
                                "loss": "kl_neuron"}
       for w in ("average", "cosine", "sigmoid")},
    **_deep("vgg16"),
    **_deep("resnet18"),
}
for _r in RECIPES.values():
    _r.setdefault("seed", 0)


SCALES = ("committed", "paper")
# the keys a shrunk paper scale overrides, and the stages whose recipes read each (:func:`paper_scale`)
OVERRIDES: dict[str, tuple[str, ...]] = {
    "epochs": ("ann", "calibrate"),
    "penalty_epochs": ("thresholds",),
    "clip_epochs": ("thresholds", "clip"),
    "train_images": ("ann", "strelu", "thresholds", "clip"),
    "images": ("calibrate",),
    "eval_images": (),  # in no recipe: the images every stage scores (:func:`data`, :func:`calibration_images`)
    "width": ("ann", "thresholds", "clip", "calibrate"),  # of the deep nets' architecture (in ``kwargs``)
}
_SHRUNK: dict[str, dict[str, float]] = {}  # the shrunk scales paper_scale named in this process: their overrides


def paper_scale(overrides: Optional[Mapping[str, Any]] = None) -> str:
    """The paper scale, or (``overrides``) the paper scale shrunk by them, to run its whole
    pipeline in minutes: its name (``"paper-"`` and 12 hex digits of the sorted overrides' SHA-256;
    the same overrides, the same name), registered in this process for :func:`recipe`. Its
    networks and manifest are a folder of their own (:func:`networks_dir`). Each override is a
    whole number >= 1 in the recipes of the stages that read it:

    - ``epochs``: the ANN trainings (``net4_ann``, the deep ``*_ann``; ``net4_strelu`` takes
      ``net4_ann``'s training, this included) and the calibrations through time (``*_calibrated_*``,
      ``*_proposed_*``, ``*_twostage_*``: per layer for the two-stage one);
    - ``penalty_epochs``: the variance penalty of threshold optimisation (``*_thresholds``);
    - ``clip_epochs``: the clipping layers' training (``*_thresholds``, ``*_symmetric``);
    - ``train_images``: the training images of those trainings (``*_ann``, ``net4_strelu``,
      ``*_thresholds``, ``*_symmetric``): a seeded subset of the training split;
    - ``images``: the calibrations' training images (a seeded subset);
    - ``eval_images``: at most this many validation and test images (a seeded subset of each
      split, the same for every stage) and training images that set the converter's intervals;
    - ``width``: the deep nets' width (a number in (0, 1]; the paper's is 1), Net4 has none.

    What no key names stays the paper's (the architectures, CIFAR-10, the learning rates)."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"the recipe overrides are a mapping of {', '.join(OVERRIDES)} to whole numbers, "
                         f"got {overrides!r}")
    if not overrides:
        return "paper"
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown recipe override {', '.join(map(repr, unknown))}; allowed: {', '.join(OVERRIDES)}")
    for key, value in overrides.items():
        if key == "width":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"recipe override 'width' must be a number in (0, 1], got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"recipe override {key!r} must be a whole number >= 1, got {value!r}")
    shrunk = {k: overrides[k] for k in sorted(overrides)}
    name = "paper-" + hashlib.sha256(json.dumps(shrunk).encode()).hexdigest()[:12]
    _SHRUNK[name] = shrunk
    return name


def scale_overrides(scale: str) -> dict[str, float]:
    """What a scale overrides of the paper's recipes: none for ``committed`` and ``paper``, a
    shrunk scale's overrides (:func:`paper_scale`)."""
    _check_scale(scale)
    return dict(_SHRUNK.get(scale, {}))


def is_paper(scale: str) -> bool:
    """Whether ``scale`` runs the paper's pipeline (CIFAR-10 for the deep nets, made on first use
    by :func:`ensure`, on the GPU): ``paper`` and every shrunk paper scale."""
    _check_scale(scale)
    return scale != "committed"


def _check_scale(scale: str) -> None:
    if scale not in SCALES and scale not in _SHRUNK:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}, or a shrunk paper scale "
                         "that paper_scale(overrides) named in this process")


def recipe(name: str, scale: str = "committed") -> dict[str, Any]:
    """The recipe of ``name`` at a scale: ``committed`` (the files in ``data/``) or ``paper``:
    Net4 calibrated on the whole training set; VGG-16 and ResNet-18 at full width on CIFAR-10
    (200 epochs, the threshold and calibration stages on all training images; the deep nets'
    calibration at learning rate 1e-4, where the committed ones take fewer, larger steps);
    or a shrunk paper scale: the paper's, with its overrides (:func:`paper_scale`)."""
    if name not in RECIPES:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(RECIPES)}")
    _check_scale(scale)
    r = dict(RECIPES[name])
    if scale == "committed":
        return r
    if r["arch"] == "net4":
        r = {**r, "images": None} if r["stage"] == "calibrate" else r
    else:
        r.update(dataset="cifar10", pad_to=None, train_images=None,
                 kwargs={**r["kwargs"], "in_channels": 3, "width": 1.0})
        if r["stage"] == "ann":
            r.update(epochs=200, lr=0.1, flip=True)
        elif r["stage"] in ("thresholds", "clip"):
            r.update(penalty_epochs=10, clip_epochs=10)
        else:
            r.update(images=None, epochs=25 if r["schedule"] != "layerwise" else 2, lr=1e-4)
    shrunk = {k: v for k, v in scale_overrides(scale).items() if r["stage"] in OVERRIDES[k]}
    if "width" in shrunk:
        width = shrunk.pop("width")
        if r["arch"] != "net4":
            r["kwargs"] = {**r["kwargs"], "width": width}
    r.update(shrunk)
    return r


def command(name: str, scale: str = "committed") -> str:
    """The command that makes ``name`` at ``scale`` (a shrunk scale: ``--recipe`` and its overrides)."""
    shrunk = scale_overrides(scale)
    if shrunk:
        return f"python -m psnn_lib.paper2.networks {name} --recipe {shlex.quote(json.dumps(shrunk))}"
    return f"python -m psnn_lib.paper2.networks {name}" + (" --scale paper" if scale == "paper" else "")


MANIFEST = "paper2_networks.json"  # apart from paper 1's checkpoints.json: its records do not read it


def networks_dir(scale: str) -> Path:
    """Where a scale's networks and manifest are: ``data/`` (committed), ``paths.paper_networks_dir()``
    (paper), or a folder of its own in it, named by the scale (a shrunk paper scale)."""
    _check_scale(scale)
    if scale == "committed":
        return paths.data_dir()
    root = paths.paper_networks_dir()
    return root if scale == "paper" else root / scale


def manifest_path(scale: str) -> Path:
    """The manifest of a scale, in :func:`networks_dir`."""
    return networks_dir(scale) / MANIFEST


def data(name: str, split: str, scale: str = "committed") -> tuple[torch.Tensor, torch.Tensor]:
    """The split a recipe uses: real Fashion-MNIST (28x28 for Net4, padded to 32 for the
    deep nets), or CIFAR-10 for the deep nets at the paper's scale (torchvision download).
    Net4's recipes hold ``VALIDATION_IMAGES`` seeded training images out as ``"validation"``:
    its ``"train"`` is the rest."""
    r = recipe(name, scale)
    if split not in ("train", "validation", "test"):
        raise ValueError(f"unknown split {split!r}; choose train, validation or test")
    if split == "validation" and not r.get("validation"):
        raise ValueError(f"{name} holds no validation split out of its training set")
    source = "test" if split == "test" else "train"
    x, y = datasets.load("cifar10", source) if r.get("dataset") == "cifar10" else \
        datasets.fashion_mnist(source, pad_to=r["pad_to"])
    if split == "train" and not r.get("validation"):
        return x, y
    if split != "test":
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(VALIDATION_SEED))
        keep = order[:r["validation"]] if split == "validation" else order[r["validation"]:].sort().values
        x, y = x[keep], y[keep]
    evaluated = scale_overrides(scale).get("eval_images")
    return datasets.subset(x, y, evaluated) if evaluated and split != "train" else (x, y)


def _clipping(name: str) -> Optional[str]:
    """Which clipping layers the stored module tree of ``name`` has: None, "asymmetric", "symmetric"."""
    r = RECIPES[name]
    return _clipping(r["from"]) if r["stage"] == "calibrate" else r.get("clipping")


def _build(r: dict[str, Any]) -> nn.Module:
    """The recipe's architecture; ``pool="avg"``: average pooling in place of max pooling
    (the max of signed spike maps is not the max of their rates)."""
    model = cifar.build(r["arch"], **r["kwargs"])
    if r.get("pool") == "avg":
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, nn.MaxPool2d):
                    setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride))
    return model


def _architecture(name: str, scale: str) -> nn.Module:
    """The recipe's network, with the clipping layers its stored weights include."""
    r = recipe(name, scale)
    model = _build(r)
    clipping = _clipping(name)
    if clipping is not None:
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, nn.LeakyReLU):
                    setattr(parent, child_name, ClippedLeakyReLU(child.negative_slope, 1.0, -1.0,
                                                                 clipping == "symmetric"))
    return model


class StaleNetwork(RuntimeError):
    """A stage was made from another version of the stage before it (remake it)."""


class ChangedRecipe(RuntimeError):
    """A stage was made by another recipe than its current one (remake it)."""


def _recipe_differences(made: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The fields of the recipe ``now`` (as JSON holds it) that the recipe a stage stored,
    ``made``, does not match. ``made`` is the recipe as the stage resolved it: it holds the
    chosen candidate's settings for ``candidates`` (which must be those of one of them), and
    (the entries made before sweeps stored ``clip_weights``) may hold only the chosen
    ``clip_weight`` (which must be one of them)."""
    out = []
    for key, value in now.items():
        shown: Any = made.get(key, "none")
        if key == "candidates":
            same = any(all(made.get(k) == v for k, v in settings.items()) for settings in value.values())
            shown = {k: made.get(k, "none") for settings in value.values() for k in settings}
        elif key == "clip_weights" and key not in made:
            same = made.get("clip_weight") in value
            shown = f"clip_weight {made.get('clip_weight', 'none')!r}"
        else:
            same = key in made and made[key] == value
        if not same:
            out.append(f"{key}: made with {shown!r}, now {value!r}")
    return out


def _recipe_change(name: str, scale: str, entry: dict[str, Any]) -> Optional[str]:
    """How the recipe of a manifest entry differs from ``recipe(name, scale)``, or None. An
    entry :func:`make` writes holds the digest of its recipe, which must be the current one's;
    one without (made before digests were recorded: the committed networks) is judged by the
    recipe it stores (:func:`_recipe_differences`)."""
    now = json.loads(json.dumps(recipe(name, scale)))
    differences = _recipe_differences(entry.get("recipe", {}), now)
    changed = entry["recipe digest"] != recipe_digest(now) if "recipe digest" in entry else bool(differences)
    if not changed:
        return None
    return "; ".join(differences) or "its recipe digest differs from the current recipe's"


def _sources(name: str, scale: str) -> dict[str, str]:
    """The SHA-256 of the stages a recipe starts from (``from``, ``settings_from``), as their
    manifest entries record them (each file is checked when that stage itself is loaded)."""
    r = RECIPES[name]
    entries = manifest_entries(manifest_path(scale))
    names = [r[k] for k in ("from", "settings_from") if r.get(k)]
    missing = [n for n in names if n not in entries]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not made yet: `{command(missing[0], scale)}`")
    return {n: entries[n]["sha256"] for n in names}


def _verified(name: str, scale: str) -> tuple[dict, dict]:
    """A stage's weights and entry, checked against its file, its current recipe
    (:class:`ChangedRecipe`) and the stages it was made from (:class:`StaleNetwork`; entries
    older than that record name none)."""
    state, entry = verified_state(name, command(name, scale), manifest_path(scale))
    change = _recipe_change(name, scale, entry)
    if change is not None:
        raise ChangedRecipe(f"{name} was made by another recipe than its current one ({change}): "
                            f"remake it with `{command(name, scale)}`")
    made_from = entry.get("made from")
    if made_from is not None and made_from != _sources(name, scale):
        raise StaleNetwork(f"{name} was made from another version of {', '.join(made_from)}: "
                           f"remake it with `{command(name, scale)}`")
    return state, entry


def load_ann(name: str, scale: str = "committed") -> tuple[nn.Module, dict]:
    """An ANN stage (eval mode, float32) and its manifest entry."""
    if recipe(name, scale)["stage"] == "calibrate":
        raise ValueError(f"{name} is a calibrated SNN: load it with load_snn")
    state, entry = _verified(name, scale)
    model = _architecture(name, scale)
    model.load_state_dict(state)
    return model.eval(), entry


def load_snn(name: str, T: Optional[int] = None, scale: str = "committed") -> tuple[ConvertedModel, dict]:
    """A calibrated SNN, rebuilt with its stored intervals (``T`` other than the
    calibration's for an accuracy-against-T curve)."""
    r = recipe(name, scale)
    if r["stage"] != "calibrate":
        raise ValueError(f"{name} is an ANN stage: load it with load_ann")
    state, entry = _verified(name, scale)
    model = _architecture(r["from"], scale)
    model.load_state_dict(state)
    return rebuilt(model.eval(), r["method"], entry, T or r["T"]), entry


def rebuilt(model: nn.Module, method: str, entry: dict, T: int) -> ConvertedModel:
    """The SNN of a calibrated stage: its intervals, and its initial-membrane shifts if any."""
    intervals = {k: tuple(v) for k, v in entry["intervals"].items()}
    snn, _ = convert(model, method, interval=intervals, T=T, progress=False)
    for site, shift in entry.get("membrane shifts", {}).items():
        snn.neurons[site].shift_membranes(torch.tensor(shift, dtype=torch.float64))
    return snn


def calibration_images(name: str, scale: str = "committed") -> torch.Tensor:
    """The training images that set the converter's intervals (the first ``CALIBRATION_IMAGES``, or
    a shrunk scale's ``eval_images``)."""
    return data(name, "train", scale)[0][:scale_overrides(scale).get("eval_images", CALIBRATION_IMAGES)]


def ensure(names: list[str], scale: str, device: str) -> None:
    """Make every network of ``names`` (and the stages before it) that is not there yet or was
    made from another version of its source: the ``paper`` profile runs the whole pipeline
    itself. One made by another recipe is made again, said in a printed line, at the ``paper``
    scale (or a shrunk one, :func:`is_paper`); at the committed scale it is a :class:`ChangedRecipe`
    error naming the command that remakes it (the files in ``data/`` are remade on purpose, and
    committed)."""
    for name in names:
        ensure([RECIPES[name][k] for k in ("from", "settings_from") if RECIPES[name].get(k)], scale, device)
        # two notebooks that need one network at once: one makes it, the other then finds it
        with exclusive(lock_file_for(manifest_path(scale).with_name(name))):
            try:
                _verified(name, scale)
            except (FileNotFoundError, StaleNetwork):
                make(name, device, scale)
            except ChangedRecipe as exc:
                if not is_paper(scale):
                    raise
                print(f"remaking {name} at the {scale} scale: {exc}", flush=True)
                make(name, device, scale)


def _rounded(model: nn.Module) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def _with_rounded(model: nn.Module) -> dict:
    """Round the model's weights to float16 in place (what is stored is what is measured)."""
    state = _rounded(model)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return state


def _subset(x: torch.Tensor, y: torch.Tensor, n: Optional[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # not models.datasets.subset: the committed networks were made from this draw, unsorted
    if n is None or n >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


def _training(r: dict) -> dict:
    """The keyword arguments of :func:`train` a recipe sets (paper 1's defaults otherwise:
    SGD, weight decay 5e-4, one 4-pixel shift per batch)."""
    return {"epochs": r["epochs"], "lr": r["lr"], "optimizer": r.get("optimizer", "sgd"),
            "weight_decay": r.get("weight_decay", 5e-4), "augment": r.get("augment", True),
            "per_image": r.get("per_image", False), "shift": r.get("shift", 4), "flip": r.get("flip", False)}


def _resumable(name: str, part: str, r: dict[str, Any], scale: str) -> dict[str, Any]:
    """The checkpoint arguments of one :func:`train` call of a stage (``part`` tells its
    trainings apart): at the ``paper`` scale (hours on a GPU) and a shrunk one a file in
    ``networks_dir(scale) / "training"``, so that a make killed midway resumes that training
    where it stopped (the file is removed once it completes; a finished training of the same
    stage is run again); none at the committed scale (minutes on a CPU)."""
    if not is_paper(scale):
        return {}
    return {"checkpoint": networks_dir(scale) / "training" / f"{name}.{part}.pt",
            "recipe": f"{name} {part} {recipe_digest(r)} from {json.dumps(_sources(name, scale), sort_keys=True)}"}


def _validation_accuracy(name: str, model: nn.Module, scale: str) -> float:
    xv, yv = data(name, "validation", scale)
    return accuracy(predict(model.eval(), xv), yv)


def _make_ann(name: str, r: dict, device: str, scale: str) -> tuple[nn.Module, dict]:
    """Train the recipe's ANN; with ``candidates``, one per candidate, kept: the best on the
    validation split (the test set is scored for the chosen one only)."""
    if r.get("settings_from"):  # a baseline trained as the network it is compared with
        chosen = verified_state(r["settings_from"], command(r["settings_from"], scale), manifest_path(scale))[1]
        r.update({k: chosen["recipe"][k] for k in TRAINING_KEYS if k in chosen["recipe"]})
    x, y = _subset(*data(name, "train", scale), r.get("train_images"), r["seed"])
    candidates = r.pop("candidates", None) or {"": {}}
    best: Optional[tuple[float, str, nn.Module]] = None
    scores: dict[str, float] = {}
    for i, (label, settings) in enumerate(candidates.items()):
        seed_everything(r["seed"])
        model = _build(r)
        loss = F.cross_entropy
        if r["stage"] == "strelu":
            add_clipping(model, x[:2000], symmetric=True)
            loss = clipping_loss(model, r.get("clip_weight", 0.0))
        train(model, x, y, **_training({**r, **settings}), seed=r["seed"], device=device, loss_fn=loss,
              **_resumable(name, f"candidate{i}", r, scale))
        model = model.cpu().eval()
        score = _validation_accuracy(name, model, scale) if r.get("validation") else float("nan")
        scores[label] = score
        if best is None or score > best[0]:
            best = (score, label, model)
    score, label, model = best
    r.update(candidates[label])
    info: dict[str, Any] = {"validation_accuracy": score} if r.get("validation") else {}
    if len(candidates) > 1:
        info["selection"] = {"rule": "the candidate with the highest validation accuracy", "validation": scores,
                             "chosen": label}
    return model, info


def _make_tuned(name: str, r: dict, device: str, scale: str) -> tuple[nn.Module, dict]:
    """Threshold optimisation: the variance penalty (``thresholds`` only), then clipping
    layers trained with each weight of ``clip_weights``; with several, the largest whose
    network keeps within ``CLIP_RULE_POINTS`` of the source ANN on the validation split."""
    model, source = load_ann(r["from"], scale)
    tuning = {k: v for k, v in _training(source["recipe"]).items() if k in ("augment", "per_image", "shift")}
    x, y = _subset(*data(name, "train", scale), r.get("train_images"), r["seed"])
    info: dict[str, Any] = {}
    if r["stage"] == "thresholds":
        penalty = VariancePenalty(model, r["form"])
        train(model, x, y, epochs=r["penalty_epochs"], lr=r["lr"], seed=r["seed"], device=device,
              loss_fn=penalty, **tuning, **_resumable(name, "penalty", r, scale))
        penalty.remove()
        info["last_eta"] = penalty.last[1]
    tuned = model.cpu()
    sweep, kept = [], {}
    for weight in r["clip_weights"]:
        model = copy.deepcopy(tuned)
        add_clipping(model, x[:2000], symmetric=r["clipping"] == "symmetric")
        train(model, x, y, epochs=r["clip_epochs"], lr=r["clip_lr"], weight_decay=0.0, seed=r["seed"] + 1,
              device=device, loss_fn=clipping_loss(model, weight), **tuning,
              **_resumable(name, f"clip{weight:g}", r, scale))
        model = model.cpu().eval()
        kept[weight] = model
        if len(r["clip_weights"]) > 1:
            sweep.append({"clip weight": weight, **_sweep_point(name, model, scale)})
    if not sweep:
        return kept[r["clip_weights"][0]], info
    chosen, passed = chosen_clip_weight(sweep, source["validation_accuracy"] - CLIP_RULE_POINTS)
    r["clip_weight"] = chosen
    info["selection"] = {"rule": f"the largest clip weight within {CLIP_RULE_POINTS} points of "
                                 f"{r['from']}'s validation accuracy ({source['validation_accuracy']:.2f} %)"
                                 + ("" if passed else "; none is: the smallest"),
                         "sweep": sweep, "chosen": chosen}
    info["validation_accuracy"] = next(p["validation accuracy"] for p in sweep if p["clip weight"] == chosen)
    return kept[chosen], info


def chosen_clip_weight(sweep: list[dict[str, Any]], floor: float) -> tuple[float, bool]:
    """The rule of the clip-weight sweep: the largest weight whose validation accuracy is at
    least ``floor`` (and True), or the smallest weight when none is (and False)."""
    passing = [p["clip weight"] for p in sweep if p["validation accuracy"] >= floor - 1e-9]
    if passing:
        return max(passing), True
    return min(p["clip weight"] for p in sweep), False


CONTROL_IMAGES = 1000  # images of the calibration's before/after losses
SWEEP_T = 10  # Table 4's T, for the firing rates of the clip-weight sweep
SWEEP_IMAGES = 1000  # validation images the sweep's firing rates are measured on


def _sweep_point(name: str, model: nn.Module, scale: str) -> dict[str, Any]:
    """A clip weight's network on the validation split: its accuracy and (signed neuron,
    ``SWEEP_T`` steps, ``SWEEP_IMAGES`` images) each layer's firing rate."""
    xv, _ = data(name, "validation", scale)
    snn, _ = convert(model, "signed", calibration=calibration_images(name, scale), T=SWEEP_T, progress=False)
    return {"validation accuracy": _validation_accuracy(name, model, scale),
            "firing rates": [r["firing rate"] for r in firing_rates(snn, xv[:SWEEP_IMAGES])]}


def _make_calibrated(name: str, r: dict, device: str, scale: str) -> tuple[nn.Module, dict]:
    model, _ = load_ann(r["from"], scale)
    snn, report = convert(model, r["method"], calibration=calibration_images(name, scale), T=r["T"],
                          progress=False)
    x, _ = _subset(*data(name, "train", scale), r["images"], r["seed"])
    snn.to(device)
    reference = analog_twin(snn)
    # every layer's loss before and after, under each loss, on images the calibration does not see
    # (the validation split where the recipe holds one out)
    held = (data(name, "validation", scale)[0] if r.get("validation") else x)[:CONTROL_IMAGES].to(device)
    control = {"losses": LOSSES, "images": "validation" if r.get("validation") else "calibration",
               "before": {k: calibration_loss(snn, held, reference=reference, loss=k) for k in LOSSES}}
    shifts = {}
    if r.get("membranes"):
        membranes = membrane_calibration(snn, x.to(device), reference=reference, progress=False)
        control["membrane errors"] = membranes.epochs[0]
        shifts = {k: snn.neurons[k].v_shift.tolist() for k in membranes.layers}
    if r["schedule"] == "layerwise":
        history = layerwise_calibration(snn, x.to(device), epochs=r["epochs"], lr=r["lr"], seed=r["seed"],
                                        reference=reference, loss=r["loss"])
    else:
        history = joint_calibration(snn, x.to(device), epochs=r["epochs"], weighting=r["schedule"], lr=r["lr"],
                                    seed=r["seed"], reference=reference, loss=r["loss"])
    control["after"] = {k: calibration_loss(snn, held, reference=reference, loss=k) for k in LOSSES}
    snn.cpu()
    # the calibrated weights back into the ANN's own module tree (same parameter names)
    trained = dict(snn.model.named_parameters())
    model.load_state_dict({k: trained.get(k, v) for k, v in model.state_dict().items()})
    return model, {"intervals": {row.site: [row.l, row.r] for row in report.rows},
                   **({"membrane shifts": shifts} if shifts else {}), "history": history.epochs,
                   "layers": history.layers, "layer losses": control}


_STAGES = {"ann": _make_ann, "strelu": _make_ann, "thresholds": _make_tuned, "clip": _make_tuned,
           "calibrate": _make_calibrated}


def make(name: str, device: str = "cpu", scale: str = "committed") -> dict:
    """Run the recipe ``name`` (from the stage before it) and write its file and manifest
    entry in :func:`networks_dir` (``committed``: ``data/``; ``paper`` and a shrunk one: the cache, its
    trainings resumable: :func:`_resumable`). The entry holds the recipe as the stage resolved it
    and the digest of the recipe as asked, which loading checks (:func:`_recipe_change`)."""
    r = recipe(name, scale)
    digest = recipe_digest(r)  # of the recipe as asked, before its stage resolves it (candidates, sweeps)
    start = time.perf_counter()
    model, info = _STAGES[r["stage"]](name, r, device, scale)
    info["wall_s"] = round(time.perf_counter() - start, 1)  # the stage's own work (a sweep: all of it)
    model = model.cpu().eval()
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise RuntimeError(f"{name}: training diverged (non-finite weights); nothing was written")
    state = _with_rounded(model)
    xt, yt = data(name, "test", scale)
    entry = {"recipe": r, "recipe digest": digest, "device": device,
             "command": command(name, scale) + (f" --device {device}" if device != "cpu" else ""),
             "made from": _sources(name, scale), **info}
    if r["stage"] == "calibrate":
        snn = rebuilt(model, r["method"], info, r["T"])
        entry["snn_test_accuracy"] = accuracy(predict(snn, xt, SNN_BATCH), yt)
    else:
        entry["test_accuracy"] = accuracy(predict(model, xt), yt)
    return save_state(name, state, entry, manifest_path(scale))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description="make paper 2's networks (each from the stage before it)")
    p.add_argument("names", nargs="+", choices=list(RECIPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--scale", choices=SCALES, help="committed (the default) or paper")
    p.add_argument("--recipe", metavar="JSON", help="the paper scale shrunk by these overrides, e.g. "
                   f"'{{\"epochs\": 1}}' (keys: {', '.join(OVERRIDES)}); implies --scale paper")
    a = p.parse_args(argv if argv is not None else sys.argv[1:])
    scale = a.scale or "committed"
    if a.recipe is not None:
        if a.scale == "committed":
            p.error("--recipe shrinks the paper scale: it cannot go with --scale committed")
        try:
            scale = paper_scale(json.loads(a.recipe))
        except ValueError as exc:  # not JSON, or not the allowed overrides
            p.error(f"--recipe {a.recipe}: {exc}")
    for name in a.names:
        entry = make(name, a.device, scale)
        acc = entry.get("test_accuracy", entry.get("snn_test_accuracy"))
        print(f"{name}: test accuracy {acc:.2f}%, {entry['bytes'] / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
