"""The conversion chapter's experiments and the paper's numbers (paper 1,
Tables 1, 2, 4, Fig. 6). Notebooks call these and plot; nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import cifar_models, datasets, pretrained
from .convert import ConversionReport, convert
from .ps_cache import default_cache_dir
from .training import accuracy, predict, seed_everything, train  # noqa: F401  (predict: for the notebooks)

# Paper 1, Table 1 ("This work" rows): (ANN acc, SNN acc, loss, K)
TABLE1 = {
    ("CIFAR10", "VGG16"): (94.15, 94.14, -0.01, 16),
    ("CIFAR10", "ResNet20"): (92.59, 92.54, -0.05, 16),
    ("CIFAR100", "VGG16"): (74.00, 73.96, -0.04, 16),
    ("CIFAR100", "ResNet20"): (68.81, 68.74, -0.07, 16),
}
# Paper 1, Table 2 ("This work" rows, ImageNet)
TABLE2 = {"VGG16": (71.52, 71.23, -0.29, 17), "ResNet-34": (73.29, 73.29, 0.00, 13),
          "EfficientNet-B7": (84.04, 83.64, -0.40, 13)}
# Paper 1, Table 4: (Neurons (M), Spikes (M), K, FireRate)
TABLE4 = {
    ("CIFAR10", "VGG16"): (0.28, 0.56, 16, 0.18), ("CIFAR10", "ResNet18"): (0.05, 0.11, 16, 0.21),
    ("CIFAR10", "ResNet20"): (0.19, 0.40, 16, 0.19), ("CIFAR10", "ResNet56"): (0.53, 2.17, 16, 0.32),
    ("CIFAR100", "VGG16"): (0.28, 0.52, 16, 0.18), ("CIFAR100", "ResNet18"): (0.05, 0.11, 16, 0.21),
    ("CIFAR100", "ResNet20"): (0.19, 0.51, 16, 0.23),
    ("ImageNet", "VGG16"): (13.56, 24.66, 16, 0.18), ("ImageNet", "ResNet34"): (3.56, 10.80, 16, 0.25),
    ("ImageNet", "EfficientNetb0"): (6.16, 24.32, 16, 0.31),
    ("ImageNet", "EfficientNetb7"): (35.80, 145.38, 16, 0.32),
}
# Table 4 architectures whose neuron count depends on the architecture alone:
# (builder, input shape) -- torchvision's ImageNet models, our CIFAR ones at full width
ARCH_ONLY: dict[tuple[str, str], tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    ("CIFAR10", "VGG16"): (lambda: cifar_models.VGG16(10), (1, 3, 32, 32)),
    ("CIFAR10", "ResNet20"): (lambda: cifar_models.ResNet20(10), (1, 3, 32, 32)),
}


def _torchvision_arch(name: str, size: int) -> tuple[Callable[[], nn.Module], tuple[int, ...]]:
    import torchvision

    return (lambda: torchvision.models.get_model(name, weights=None)), (1, 3, size, size)


ARCH_ONLY[("ImageNet", "VGG16")] = _torchvision_arch("vgg16", 224)
ARCH_ONLY[("ImageNet", "ResNet34")] = _torchvision_arch("resnet34", 224)
ARCH_ONLY[("ImageNet", "EfficientNetb0")] = _torchvision_arch("efficientnet_b0", 224)
# B7 at 224 x 224: its native 600 x 600 gives 259M neurons; 224 gives the 35.8M of Table 4
ARCH_ONLY[("ImageNet", "EfficientNetb7")] = _torchvision_arch("efficientnet_b7", 224)

OFFLINE_CHECKPOINTS = {  # our default-profile stand-ins: (dataset, architecture) -> checkpoint
    ("Fashion-MNIST", "ResNet20"): "resnet20_fashion_mnist", ("MNIST", "ResNet20"): "resnet20_mnist",
    ("Fashion-MNIST", "VGG16 (width 1/4)"): "vgg16_fashion_mnist", ("MNIST", "VGG16 (width 1/4)"): "vgg16_mnist",
}
DATASET_LOADERS = {"Fashion-MNIST": datasets.fashion_mnist, "MNIST": datasets.mnist}


@dataclass
class Outcome:
    """One conversion, evaluated: accuracies (percent), logit errors, spikes."""

    method: str
    steps: int
    ann_acc: float
    snn_acc: float
    agreement: float
    max_logit_error: float
    mean_logit_error: float
    stats: dict
    report: ConversionReport

    @property
    def loss(self) -> float:
        """Paper's "Loss": ACC_SNN - ACC_ANN (percentage points)."""
        return self.snn_acc - self.ann_acc

    @property
    def clipped_fraction(self) -> float:
        """Fraction of the evaluated neuron inputs outside their calibrated intervals."""
        return self.stats["clipped_fraction"]

    def row(self) -> dict[str, Any]:
        return {"method": self.method, "K or T": self.steps, "ANN acc": self.ann_acc, "SNN acc": self.snn_acc,
                "loss": self.loss, "agreement": self.agreement, "max |logit error|": self.max_logit_error,
                "mean |logit error|": self.mean_logit_error, "neurons": self.stats["neurons"],
                "spikes": self.stats["spikes"], "FireRate": self.stats["fire_rate"]}


def convert_and_evaluate(model: nn.Module, method: str, calibration: Any, x: torch.Tensor, y: torch.Tensor,
                         ann_logits: Optional[torch.Tensor] = None, batch_size: int = 250,
                         **options: Any) -> Outcome:
    """Convert ``model`` with ``method`` on ``calibration`` and evaluate on (x, y)."""
    if ann_logits is None:
        ann_logits = predict(model, x, batch_size)
    snn, report = convert(model, method, calibration=calibration, progress=False, **options)
    logits = predict(snn, x, batch_size, progress=True, desc=f"{method} {options}")
    err = (logits - ann_logits).abs()
    steps = report.rows[0]["K"] if report.rows else 0
    return Outcome(method, steps, accuracy(ann_logits, y), accuracy(logits, y),
                   100.0 * float((logits.argmax(-1) == ann_logits.argmax(-1)).double().mean()),
                   float(err.max()), float(err.mean()), snn.spike_stats().as_dict(), report)


def offline_split(dataset: str, n_calibration: int, n_test: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Calibration images from the training set, the first ``n_test`` test images and labels."""
    load = DATASET_LOADERS[dataset]
    x_train, _ = load("train")
    x_test, y_test = load("test")
    return x_train[:n_calibration], x_test[:n_test], y_test[:n_test]


def architecture_neurons(key: tuple[str, str]) -> float:
    """Neurons per sample (millions) of a Table 4 architecture, counted by converting it
    (random weights, a global interval: the count does not depend on either)."""
    make, shape = ARCH_ONLY[key]
    torch.manual_seed(0)
    snn, _ = convert(make().eval(), interval=(-1.0, 1.0), progress=False, K=4, step=0.01)
    with torch.no_grad():
        snn(torch.randn(shape))
    return snn.spike_stats().neurons / 1e6


def imagenet_offline(name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An offline ImageNet model, the 20 real images preprocessed for it, and labels."""
    model, preprocess = pretrained.OFFLINE_IMAGENET[name]()
    images, labels = datasets.foolbox_images("imagenet")
    return model, preprocess(images), labels


def imagenet_paper(name: str, folder: Optional[str], n_images: int, seed: int = 0
                   ) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A torchvision ImageNet model and ``n_images`` random validation images (``paper`` profile)."""
    data = datasets.imagenet_folder(folder)
    model, preprocess = pretrained.torchvision_imagenet(name)
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n_images].tolist()
    images, labels = zip(*(data[i] for i in tqdm(idx, desc="reading ImageNet")))
    return model, preprocess([np.asarray(im.convert("RGB")) for im in images]), torch.tensor(labels)


def cross_calibrated(model: nn.Module, method: str, x: torch.Tensor, y: torch.Tensor, **options: Any
                     ) -> list[Outcome]:
    """Two-fold: calibrate on one half of a small image set, evaluate on the other, and swap,
    so no image is in its own calibration set."""
    half = len(x) // 2
    folds = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    return [convert_and_evaluate(model, method, x[cal], x[test], y[test], **options) for cal, test in folds]


def fig6_run(activation: str, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
             epochs: int, K: int, n_calibration: int, seed: int = 0, device: str = "cpu",
             in_channels: int = 1) -> list[dict[str, float]]:
    """Fig. 6: train ResNet-20 with ``activation``; after each epoch convert with
    PS (K steps) and record ANN and SNN test accuracy."""
    rows: list[dict[str, float]] = []

    def after_epoch(epoch: int, model: nn.Module) -> None:
        cpu = model.to("cpu")
        out = convert_and_evaluate(cpu, "ps", x[:n_calibration], x_test, y_test, K=K)
        rows.append({"epoch": epoch, "ann": out.ann_acc, "snn": out.snn_acc})
        model.to(device)

    seed_everything(seed)  # the initial weights too, not only the data order
    model = cifar_models.ResNet20(10, in_channels=in_channels, activation=activation)
    train(model, x, y, epochs=epochs, augment=True, seed=seed, device=device, on_epoch=after_epoch)
    return rows


CIFAR_MEAN_STD = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                  "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}


def cifar_tensors(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    data = datasets.cifar(name, split)
    mean, std = (torch.tensor(v)[:, None, None] for v in CIFAR_MEAN_STD[name])
    x = (torch.tensor(np.asarray(data.data)).permute(0, 3, 1, 2).float() / 255 - mean) / std
    return x, torch.tensor(data.targets)


def cifar_paper_model(arch: str, name: str, epochs: int, device: str, cache_dir: Optional[str] = None
                      ) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``paper`` profile: a full-width CIFAR ResNet-20 / VGG-16 trained here on CIFAR-10/100
    (torchvision download; the trained weights are cached), with calibration
    images and the test set: (model, x_calibration, x_test, y_test)."""
    x, y = cifar_tensors(name, "train")
    x_test, y_test = cifar_tensors(name, "test")
    classes = 10 if name == "cifar10" else 100
    seed_everything(0)
    model = cifar_models.build(arch, num_classes=classes)
    path = Path(cache_dir or default_cache_dir()) / "checkpoints" / f"{arch}_{name}_{epochs}ep.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        train(model, x, y, epochs=epochs, augment=True, flip=True, device=device)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.cpu().state_dict(), path)
    return model.cpu().eval(), x[:1024], x_test, y_test
