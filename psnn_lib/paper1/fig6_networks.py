"""Fig. 6's networks: a ResNet-20 trained with each activation, one snapshot after every epoch.

Float32 training does not give the same bits on every CPU (vectorised ``erf``/``exp``, the order
of batch-norm and loss reductions), and a network one ulp apart can change a test prediction, so
the MAE of Fig. 6 moved by an image from one machine to another. The snapshots of the
``default`` profile's recipe (:data:`RECIPE`: the first 4,000 Fashion-MNIST training images,
3 epochs, seed 0) are therefore trained once, on this project's 2-core CPU, and committed as
float16 under ``data/checkpoints/`` (entries ``fig6_<activation>_epoch<e>`` of
``data/checkpoints.json``, with their test accuracy measured on the stored weights); every
machine then converts the same networks. Any other recipe (another dataset, subset, number of
epochs or seed: the ``smoke`` and ``paper`` profiles, a reader's own) is trained in the run.

    python -m psnn_lib.paper1.fig6_networks            # all activations of RECIPE
"""
from __future__ import annotations

import argparse
import copy
import sys
from typing import Optional, Sequence

import torch
from torch import nn

from ..models import cifar, datasets
from ..models.checkpoints import save_state, verified_state
from ..models.training import accuracy, predict, seed_everything, train

ACTIVATIONS = ("gelu", "silu", "mish", "hardswish", "selu", "elu")
# what the committed snapshots were trained with (beside the activation)
RECIPE = {"dataset": "fashion_mnist", "train_samples": 4000, "epochs": 3, "seed": 0}
COMMAND = "python -m psnn_lib.paper1.fig6_networks"
COMMITTED = "committed float16 snapshot"
TRAINED = "trained in this run"


def name(activation: str, epoch: int) -> str:
    return f"fig6_{activation}_epoch{epoch}"


def entry_recipe(activation: str, epoch: int) -> dict:
    """What a committed snapshot's manifest entry must say it is."""
    return {**RECIPE, "arch": "resnet20", "activation": activation, "epoch": epoch}


def _network(activation: str, classes: int, in_channels: int) -> nn.Module:
    return cifar.ResNet20(classes, in_channels=in_channels, activation=activation)


def trained(activation: str, x: torch.Tensor, y: torch.Tensor, epochs: int, classes: int, seed: int = 0,
            device: str = "cpu") -> list[nn.Module]:
    """ResNet-20 with ``activation`` trained on (x, y) for ``epochs`` epochs (shifted images,
    the training defaults of :func:`~psnn_lib.models.training.train`); a copy after every epoch,
    on the CPU, in eval mode."""
    copies: list[nn.Module] = []
    seed_everything(seed)  # the initial weights too, not only the data order
    model = _network(activation, classes, x.shape[1])
    train(model, x, y, epochs=epochs, augment=True, seed=seed, device=device,
          on_epoch=lambda epoch, m: copies.append(copy.deepcopy(m).cpu().eval()))
    return copies


def snapshots(activation: str, dataset: str, train_samples: int, epochs: int, seed: int = 0,
              device: str = "cpu") -> tuple[list[nn.Module], str]:
    """The networks after epochs 1..``epochs`` and where they come from (:data:`COMMITTED` when
    the recipe is :data:`RECIPE`, else :data:`TRAINED`: trained on ``device``)."""
    recipe = {"dataset": dataset, "train_samples": train_samples, "epochs": epochs, "seed": seed}
    classes = datasets.dataset(dataset).classes
    if recipe == RECIPE and activation in ACTIVATIONS:
        nets = []
        for epoch in range(1, epochs + 1):
            state, entry = verified_state(name(activation, epoch), f"{COMMAND} {activation}")
            if entry.get("recipe") != entry_recipe(activation, epoch) or entry.get("device") != "cpu":
                raise ValueError(f"the manifest entry {name(activation, epoch)} is not this recipe's snapshot "
                                 f"(it says {entry.get('recipe')} on {entry.get('device')!r}): remake it with "
                                 f"`{COMMAND} {activation}`")
            model = _network(activation, classes, in_channels=1)
            model.load_state_dict(state)
            nets.append(model.eval())
        return nets, COMMITTED
    x, y = datasets.load(dataset, "train")
    return trained(activation, x[:train_samples], y[:train_samples], epochs, classes, seed, device), TRAINED


def make(activation: str, device: str = "cpu") -> list[dict]:
    """Train :data:`RECIPE` with ``activation`` on ``device`` and write its snapshots (float16;
    the test accuracy in each entry is measured on the stored weights, on the whole test set).
    The notebook loads only snapshots made on the CPU (the committed ones); others are for
    comparison."""
    x, y = datasets.load(RECIPE["dataset"], "train")
    x_test, y_test = datasets.load(RECIPE["dataset"], "test")
    n = RECIPE["train_samples"]
    nets = trained(activation, x[:n], y[:n], RECIPE["epochs"], datasets.dataset(RECIPE["dataset"]).classes,
                   RECIPE["seed"], device)
    entries = []
    for epoch, model in enumerate(nets, start=1):
        state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        entries.append(save_state(name(activation, epoch), state, {
            "recipe": entry_recipe(activation, epoch),
            "stored": "float16", "device": str(device), "test_accuracy": accuracy(predict(model, x_test), y_test),
            "command": f"{COMMAND} {activation}"}))
    return entries


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description="train and commit Fig. 6's per-epoch ResNet-20 snapshots")
    p.add_argument("activations", nargs="*", help=f"some of {', '.join(ACTIVATIONS)} (default: all)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(list(argv) if argv is not None else sys.argv[1:])
    unknown = sorted(set(a.activations) - set(ACTIVATIONS))
    if unknown:
        p.error(f"unknown activation(s) {', '.join(unknown)}; choose from {', '.join(ACTIVATIONS)}")
    for act in a.activations or ACTIVATIONS:
        for entry in make(act, a.device):
            print(f"{entry['file']}: test accuracy {entry['test_accuracy']:.2f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
